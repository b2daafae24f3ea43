import { defineConfig } from "vitest/config";

export default defineConfig({
  // Relative asset paths: the same build runs inside Tauri and from a plain static server.
  base: "./",
  clearScreen: false,
  build: { outDir: "dist", emptyOutDir: true, target: "es2021" },
  test: {
    environment: "happy-dom",
    include: ["test/unit/**/*.test.ts"],
  },
});
