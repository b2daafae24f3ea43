import { boot } from "./app";

void boot();
