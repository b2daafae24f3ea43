// The UI's copy of the upload queue, kept current by the manager's events, plus speed and ETA
// estimates. Pure logic: no DOM, no IPC, so it is tested on its own.
import type { ManagerEvent } from "./bindings/ManagerEvent";
import type { Phase } from "./bindings/Phase";
import type { QueueWindow } from "./bindings/QueueWindow";
import type { UploadRow } from "./bindings/UploadRow";

/** How far back speed is measured. */
export const SPEED_WINDOW_MS = 5000;

interface Sample {
  at: number;
  sent: number;
}

export type Action = "pause" | "resume" | "cancel" | "retry" | "dismiss" | "show" | "details";

const RUNNING: Phase[] = ["queued", "signing", "uploading", "verifying"];

/** The buttons a row offers in each phase. */
export function actionsFor(phase: Phase): Action[] {
  if (RUNNING.includes(phase)) return ["pause", "cancel"];
  if (phase === "paused") return ["resume", "cancel"];
  // A failure's whole reason is a click (or Tab and Enter) away: the row shows its first line.
  if (phase === "failed") return ["details", "retry", "show", "dismiss"];
  if (phase === "cancelled") return ["retry", "show", "dismiss"];
  return ["show", "dismiss"];
}

export function isActive(phase: Phase): boolean {
  return RUNNING.includes(phase) || phase === "paused";
}

/** An empty window: nothing listed, nothing unfinished. */
export const EMPTY_WINDOW: QueueWindow = {
  offset: 0,
  rows: [],
  matching: 0,
  all: 0,
  overall: { unfinished: 0, size: 0, sent: 0, sentEver: 0 },
};

/**
 * The UI's window onto the core's queue: the rows in view and a few around them, fetched a
 * window at a time (so 100,000 uploads cost what a screenful does), kept current between
 * fetches by the manager's events, with the counts and totals the list and the overall bar
 * need, and speed and time-left estimates.
 */
export class QueueModel {
  private window: QueueWindow = EMPTY_WINDOW;
  private rows = new Map<number, UploadRow>();
  private samples = new Map<number, Sample[]>();
  private overallSamples: Sample[] = [];
  /** Each row's bytes when the window came: progress since then adds to the overall bar. */
  private sentAtLoad = new Map<number, number>();
  /** Bytes sent ever, as of the last window plus the progress heard since: sampled at every
   * event, so the overall speed is as current as the rows' (it was sampled at window fetches
   * only, and read 3.5 MiB/s beside a row's 15 MiB/s). */
  private sentEver = 0;

  constructor(private now: () => number = () => performance.now()) {}

  /** Takes a window the core sent. */
  load(window: QueueWindow): void {
    this.window = window;
    this.rows = new Map(window.rows.map((r) => [r.id, r]));
    this.sentAtLoad = new Map(window.rows.map((r) => [r.id, r.sent]));
    for (const id of this.samples.keys()) if (!this.rows.has(id)) this.samples.delete(id);
    for (const r of window.rows) if (RUNNING.includes(r.phase)) this.sample(r.id, r.sent);
    this.sentEver = window.overall.sentEver;
    this.sampleOverall();
  }

  private sampleOverall(): void {
    const at = this.now();
    const kept = this.overallSamples.filter((s) => at - s.at <= SPEED_WINDOW_MS);
    this.overallSamples = [...kept, { at, sent: this.sentEver }];
  }

  /**
   * Applies one event to the rows in the window. Answers whether the window is out of date
   * (a row came, moved between unfinished and finished, or changed out of view): then it
   * should be fetched again.
   */
  apply(event: ManagerEvent): boolean {
    switch (event.event) {
      case "changed": {
        const before = this.rows.get(event.row.id);
        if (!before) return true;
        // The queue shows no digest or address (History does).
        const row = { ...event.row, sha256: null, location: null };
        this.rows.set(row.id, row);
        if (!RUNNING.includes(row.phase)) this.samples.delete(row.id);
        else this.sample(row.id, row.sent);
        return isActive(before.phase) !== isActive(row.phase);
      }
      case "progress": {
        const row = this.rows.get(event.id);
        if (!row) return true;
        // A restart (sent going down) sent nothing new.
        this.sentEver += Math.max(0, event.sent - row.sent);
        this.rows.set(row.id, { ...row, sent: event.sent, size: event.total });
        this.sample(row.id, event.sent);
        this.sampleOverall();
        return false;
      }
      case "batchFinished":
      case "queueChanged":
        return true;
      case "added":
        // Its rows come as their own events; the summary is the status line's.
        return false;
    }
  }

  /** Forgets a row dismissed here (the next window will not have it). */
  remove(id: number): void {
    this.rows.delete(id);
    this.samples.delete(id);
  }

  /** How many rows the list has (those the filter lists). */
  size(): number {
    return this.window.matching;
  }

  /** How many uploads the queue has, whatever the filter. */
  all(): number {
    return this.window.all;
  }

  /** The rows in the window: the list's rows from `first()` on. */
  first(): number {
    return this.window.offset;
  }

  /** The row at `index` of the list, when it is in the window. */
  at(index: number): UploadRow | undefined {
    const r = this.window.rows[index - this.window.offset];
    return r === undefined ? undefined : this.rows.get(r.id);
  }

  /** Whether the window holds the list's rows from `first` to `last` (exclusive). */
  covers(first: number, last: number): boolean {
    const w = this.window;
    const end = Math.min(w.matching, w.offset + w.rows.length);
    return first >= w.offset && Math.min(last, w.matching) <= end;
  }

  get(id: number): UploadRow | undefined {
    return this.rows.get(id);
  }

  private sample(id: number, sent: number): void {
    const at = this.now();
    const list = (this.samples.get(id) ?? []).filter((s) => at - s.at <= SPEED_WINDOW_MS);
    // A restart (sent going down) starts the measurement over.
    const last = list[list.length - 1];
    this.samples.set(id, last && sent < last.sent ? [{ at, sent }] : [...list, { at, sent }]);
  }

  /** Bytes per second over the last few seconds, or 0 when unknown. */
  speed(id: number): number {
    return rate(this.samples.get(id) ?? []);
  }

  /** Seconds left at the current speed, or null when unknown. */
  eta(id: number): number | null {
    const row = this.rows.get(id);
    const speed = this.speed(id);
    if (!row || speed <= 0) return null;
    return Math.max(0, (row.size - row.sent) / speed);
  }

  /** Totals over uploads that are not finished, for the overall bar: the core's as of the
   * window, plus what the rows in view sent since. The speed is that of all bytes sent over
   * the last few seconds, or of the rows in view when nothing recent tells. */
  overall(): { sent: number; total: number; active: number; speed: number } {
    const o = this.window.overall;
    let since = 0;
    let inView = 0;
    for (const [id, r] of this.rows) {
      if (!isActive(r.phase)) continue;
      since += r.sent - (this.sentAtLoad.get(id) ?? r.sent);
      inView += this.speed(id);
    }
    const at = this.now();
    const recent = this.overallSamples.filter((s) => at - s.at <= SPEED_WINDOW_MS);
    const speed = recent.length >= 2 ? rate(recent) : inView;
    return { sent: Math.min(o.size, o.sent + Math.max(0, since)), total: o.size, active: o.unfinished, speed };
  }
}

/** Bytes per second between the first and last of `samples`, or 0. */
function rate(samples: Sample[]): number {
  if (samples.length < 2) return 0;
  const first = samples[0];
  const last = samples[samples.length - 1];
  const ms = last.at - first.at;
  return ms > 0 ? ((last.sent - first.sent) * 1000) / ms : 0;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u += 1;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${UNITS[u]}`;
}

/** `n` and a regular noun in the singular or plural: "1 file", "3 files" (never "file(s)"). */
export function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/** A rate as staff type it back ("5MB", "512KiB", "1500"): exact, so it parses again. */
export function formatRate(bytesPerSecond: number | null): string {
  if (bytesPerSecond == null) return "";
  for (const [unit, size] of [["GB", 1e9], ["MB", 1e6], ["KB", 1e3], ["MiB", 1 << 20], ["KiB", 1 << 10]] as const) {
    if (bytesPerSecond % size === 0) return `${bytesPerSecond / size}${unit}`;
  }
  return String(bytesPerSecond);
}

export function formatSpeed(bytesPerSecond: number): string {
  return bytesPerSecond > 0 ? `${formatBytes(Math.round(bytesPerSecond))}/s` : "";
}

export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return "";
  const s = Math.ceil(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function percent(sent: number, total: number): number {
  if (total <= 0) return sent > 0 ? 100 : 0;
  return Math.min(100, Math.floor((sent * 100) / total));
}

/** Profile files dropped or opened are imported, not uploaded. */
export function isProfileFile(path: string): boolean {
  return path.toLowerCase().endsWith(".hoist-profile.toml");
}
