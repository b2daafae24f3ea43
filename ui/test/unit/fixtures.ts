import type { QueueQuery } from "../../src/bindings/QueueQuery";
import type { QueueWindow } from "../../src/bindings/QueueWindow";
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

const UNFINISHED = ["queued", "signing", "uploading", "verifying", "paused"];
const FILTERED: Record<string, (phase: string) => boolean> = {
  all: () => true,
  unfinished: (p) => UNFINISHED.includes(p),
  failed: (p) => p === "failed" || p === "cancelled",
  done: (p) => p === "done",
};

/** The core's queue as the window command shows it: unfinished rows oldest first, then
 * finished ones newest first, filtered, a window at a time. */
export class FakeQueue {
  readonly rows = new Map<number, UploadRow>();

  set(r: UploadRow): UploadRow {
    this.rows.set(r.id, r);
    return r;
  }

  window(query: QueueQuery): QueueWindow {
    const all = [...this.rows.values()];
    const unfinished = all.filter((r) => UNFINISHED.includes(r.phase)).sort((a, b) => a.id - b.id);
    const finished = all.filter((r) => !UNFINISHED.includes(r.phase)).sort((a, b) => b.id - a.id);
    const listed = [...unfinished, ...finished].filter((r) => FILTERED[query.filter](r.phase));
    return {
      offset: query.offset,
      rows: listed.slice(query.offset, query.offset + query.limit),
      matching: listed.length,
      all: all.length,
      overall: {
        unfinished: unfinished.length,
        size: unfinished.reduce((n, r) => n + r.size, 0),
        sent: unfinished.reduce((n, r) => n + r.sent, 0),
        sentEver: 0,
      },
    };
  }
}
