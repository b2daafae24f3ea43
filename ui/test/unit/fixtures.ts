import type { UploadRow } from "../../src/bindings/UploadRow";

/** An upload row as the shell sends it, with the fields a test cares about overridden. */
export function row(over: Partial<UploadRow> = {}): UploadRow {
  return {
    id: 1,
    profile: "local",
    path: "/home/ann/a.txt",
    name: "a.txt",
    key: "uploads/a.txt",
    size: 100,
    phase: "queued",
    sent: 0,
    error: null,
    sha256: null,
    location: null,
    verified: false,
    ...over,
  };
}
