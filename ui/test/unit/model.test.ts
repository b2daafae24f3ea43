import { describe, expect, it } from "vitest";
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

describe("QueueModel", () => {
  it("applies changes and progress, and measures speed and time left", () => {
    let now = 0;
    const m = new QueueModel(() => now);
    m.apply({ event: "changed", row: row({ phase: "uploading" }) });
    now = 1000;
    m.apply({ event: "progress", id: 1, sent: 2_000_000, total: 10_000_000 });
    now = 2000;
    m.apply({ event: "progress", id: 1, sent: 4_000_000, total: 10_000_000 });
    expect(m.get(1)?.sent).toBe(4_000_000);
    expect(m.speed(1)).toBe(2_000_000);
    expect(m.eta(1)).toBe(3);
    expect(m.overall()).toEqual({ sent: 4_000_000, total: 10_000_000, active: 1, speed: 2_000_000 });
  });

  it("starts the speed over when an upload restarts from fewer bytes", () => {
    let now = 0;
    const m = new QueueModel(() => now);
    m.apply({ event: "changed", row: row({ phase: "uploading" }) });
    now = 1000;
    m.apply({ event: "progress", id: 1, sent: 5_000_000, total: 10_000_000 });
    now = 1500;
    m.apply({ event: "progress", id: 1, sent: 1_000, total: 10_000_000 });
    expect(m.speed(1)).toBe(0);
    expect(m.eta(1)).toBeNull();
  });

  it("ignores progress for rows it does not know and leaves finished rows out of the total", () => {
    const m = new QueueModel(() => 0);
    expect(m.apply({ event: "progress", id: 9, sent: 1, total: 2 })).toBeUndefined();
    m.apply({ event: "changed", row: row({ phase: "done", sent: 10_000_000 }) });
    m.apply({ event: "changed", row: row({ id: 2, phase: "paused", sent: 5, size: 10 }) });
    expect(m.overall()).toMatchObject({ sent: 5, total: 10, active: 1 });
    expect(m.list().map((r) => r.id)).toEqual([2, 1]);
  });

  it("lists uploads still to finish first, in the order they run, then finished ones newest first", () => {
    const m = new QueueModel(() => 0);
    const phases = ["done", "failed", "uploading", "queued", "done", "paused"] as const;
    phases.forEach((phase, i) => m.apply({ event: "changed", row: row({ id: i + 1, phase }) }));
    expect(m.list().map((r) => r.id)).toEqual([3, 4, 6, 5, 2, 1]);
  });

  it("keeps that order row by row as rows come, finish, restart and go", () => {
    const m = new QueueModel(() => 0);
    const phases = ["queued", "uploading", "done", "failed", "paused", "cancelled"] as const;
    let seed = 7;
    const next = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let step = 0; step < 2000; step++) {
      const id = next(200) + 1;
      if (next(10) === 0) m.remove(id);
      else m.apply({ event: "changed", row: row({ id, phase: phases[next(phases.length)] }) });
      if (step % 100 === 0 || step === 1999) {
        const kept = Array.from({ length: m.size() }, (_, i) => m.idAt(i));
        expect(kept).toEqual(m.list().map((r) => r.id));
      }
    }
  });
});

describe("actions", () => {
  it("offers what each phase allows", () => {
    expect(actionsFor("uploading")).toEqual(["pause", "cancel"]);
    expect(actionsFor("paused")).toEqual(["resume", "cancel"]);
    expect(actionsFor("failed")).toEqual(["retry", "show", "dismiss"]);
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
