import { describe, expect, it } from "vitest";
import type { QueueWindow } from "../../src/bindings/QueueWindow";
import type { UploadRow } from "../../src/bindings/UploadRow";
import { row as baseRow } from "./fixtures";
import {
  actionsFor,
  count,
  formatBytes,
  formatDuration,
  isProfileFile,
  percent,
  QueueModel,
} from "../../src/model";

const row: typeof baseRow = (over = {}) => baseRow({ size: 10_000_000, ...over });

/** A window as the core sends it: `rows` from `offset`, `matching` listed in all. */
function windowOf(rows: UploadRow[], over: Partial<QueueWindow> = {}): QueueWindow {
  return {
    offset: 0,
    rows,
    matching: rows.length,
    all: rows.length,
    overall: { unfinished: 0, size: 0, sent: 0, sentEver: 0 },
    ...over,
  };
}

describe("QueueModel", () => {
  it("applies progress to rows in view, and measures speed and time left", () => {
    let now = 0;
    const m = new QueueModel(() => now);
    m.load(windowOf([row({ phase: "uploading" })]));
    now = 1000;
    expect(m.apply({ event: "progress", id: 1, sent: 2_000_000, total: 10_000_000 })).toBe(false);
    now = 2000;
    m.apply({ event: "progress", id: 1, sent: 4_000_000, total: 10_000_000 });
    expect(m.get(1)?.sent).toBe(4_000_000);
    expect(m.speed(1)).toBe(2_000_000);
    expect(m.eta(1)).toBe(3);
  });

  it("starts the speed over when an upload restarts from fewer bytes", () => {
    let now = 0;
    const m = new QueueModel(() => now);
    m.load(windowOf([row({ phase: "uploading" })]));
    now = 1000;
    m.apply({ event: "progress", id: 1, sent: 5_000_000, total: 10_000_000 });
    now = 1500;
    m.apply({ event: "progress", id: 1, sent: 1_000, total: 10_000_000 });
    expect(m.speed(1)).toBe(0);
    expect(m.eta(1)).toBeNull();
  });

  it("takes the overall totals from the core, and the overall speed from bytes sent ever", () => {
    let now = 0;
    const m = new QueueModel(() => now);
    const overall = (sent: number, sentEver: number) => ({ unfinished: 3, size: 9_000_000, sent, sentEver });
    m.load(windowOf([], { overall: overall(0, 0) }));
    now = 1000;
    // A file finished meanwhile: its bytes left `sent`, not `sentEver`.
    m.load(windowOf([], { overall: overall(1_000_000, 3_000_000) }));
    expect(m.overall()).toEqual({ sent: 1_000_000, total: 9_000_000, active: 3, speed: 3_000_000 });
  });

  it("adds the progress of rows in view since the window came to the overall bar", () => {
    let now = 0;
    const m = new QueueModel(() => now);
    m.load(windowOf([row({ id: 1, phase: "uploading", sent: 100, size: 1000 })], {
      overall: { unfinished: 1, size: 1000, sent: 100, sentEver: 100 },
    }));
    now = 1000;
    m.apply({ event: "progress", id: 1, sent: 600, total: 1000 });
    expect(m.overall()).toEqual({ sent: 600, total: 1000, active: 1, speed: 500 });
  });

  // Regression (#31, defect 5): the overall speed was sampled at window fetches only, so a
  // 60 MB file read "15 MiB/s" on its row and "3.5 MiB/s" overall at the same moment.
  it("keeps the overall speed as current as the rows' between window fetches", () => {
    let now = 0;
    const m = new QueueModel(() => now);
    const big = (sent: number) => row({ id: 1, phase: "uploading", sent, size: 60_000_000 });
    const overall = (sent: number, sentEver: number) => ({ unfinished: 1, size: 60_000_000, sent, sentEver });
    m.load(windowOf([big(0)], { overall: overall(0, 0) }));
    now = 500;
    // A fetch early on, while the upload was slow to start.
    m.load(windowOf([big(500_000)], { overall: overall(500_000, 500_000) }));
    for (let t = 1; t <= 6; t++) {
      now = 500 + t * 500;
      m.apply({ event: "progress", id: 1, sent: 500_000 + t * 7_500_000, total: 60_000_000 });
    }
    expect(m.speed(1)).toBe(13_000_000);
    expect(m.overall().speed).toBe(m.speed(1));
    expect(m.overall().sent).toBe(m.get(1)?.sent);
  });

  it("says when the window is out of date: a new row, a row out of view, a row changing sides", () => {
    const m = new QueueModel(() => 0);
    m.load(windowOf([row({ id: 1, phase: "queued" }), row({ id: 2, phase: "done" })]));
    expect(m.apply({ event: "changed", row: row({ id: 1, phase: "uploading" }) })).toBe(false);
    expect(m.get(1)?.phase).toBe("uploading");
    expect(m.apply({ event: "changed", row: row({ id: 9, phase: "queued" }) })).toBe(true);
    expect(m.apply({ event: "progress", id: 9, sent: 1, total: 2 })).toBe(true);
    expect(m.apply({ event: "changed", row: row({ id: 1, phase: "done" }) })).toBe(true);
    expect(m.apply({ event: "changed", row: row({ id: 2, phase: "failed" }) })).toBe(false);
    expect(m.apply({ event: "batchFinished", done: 1, failed: 1 })).toBe(true);
  });

  it("maps the list's indexes to the window's rows and knows what it covers", () => {
    const m = new QueueModel(() => 0);
    const rows = [row({ id: 41 }), row({ id: 42 }), row({ id: 43 })];
    m.load(windowOf(rows, { offset: 40, matching: 100_000, all: 100_000 }));
    expect(m.size()).toBe(100_000);
    expect(m.at(39)).toBeUndefined();
    expect(m.at(41)?.id).toBe(42);
    expect(m.covers(40, 43)).toBe(true);
    expect(m.covers(39, 42)).toBe(false);
    expect(m.covers(41, 44)).toBe(false);
    m.remove(42);
    expect(m.at(41)).toBeUndefined();
    // At the end of the list, a window shorter than asked still covers it.
    m.load(windowOf(rows, { offset: 99_997, matching: 100_000 }));
    expect(m.covers(99_997, 100_010)).toBe(true);
  });
});

describe("actions", () => {
  it("offers what each phase allows", () => {
    expect(actionsFor("uploading")).toEqual(["pause", "cancel"]);
    expect(actionsFor("paused")).toEqual(["resume", "cancel"]);
    expect(actionsFor("failed")).toEqual(["details", "retry", "show", "dismiss"]);
    expect(actionsFor("cancelled")).toEqual(["retry", "show", "dismiss"]);
    expect(actionsFor("done")).toEqual(["show", "dismiss"]);
  });
});

describe("formatting", () => {
  it("formats sizes, durations and percentages", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(40 * 1024 * 1024)).toBe("40 MiB");
    expect(formatDuration(42.2)).toBe("43 s");
    expect(formatDuration(3725)).toBe("1 h 2 min");
    expect(formatDuration(null)).toBe("");
    expect(percent(0, 0)).toBe(0);
    expect(percent(5, 10)).toBe(50);
    expect(percent(11, 10)).toBe(100);
  });

  it("recognises exported profile files", () => {
    expect(isProfileFile("/tmp/staff.hoist-profile.toml")).toBe(true);
    expect(isProfileFile("/tmp/Cargo.toml")).toBe(false);
  });

  it("counts in the singular or plural, never 'file(s)'", () => {
    expect([count(1, "file"), count(0, "file"), count(2, "upload")]).toEqual(["1 file", "0 files", "2 uploads"]);
  });
});
