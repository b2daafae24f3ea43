// The UI's copy of the upload queue, kept current by the manager's events, plus speed and ETA
// estimates. Pure logic: no DOM, no IPC, so it is tested on its own.
import type { ManagerEvent } from "./bindings/ManagerEvent";
import type { Phase } from "./bindings/Phase";
import type { UploadRow } from "./bindings/UploadRow";

/** How far back speed is measured. */
export const SPEED_WINDOW_MS = 5000;

interface Sample {
  at: number;
  sent: number;
}

export type Action = "pause" | "resume" | "cancel" | "retry" | "dismiss" | "show";

const RUNNING: Phase[] = ["queued", "signing", "uploading", "verifying"];

/** The buttons a row offers in each phase. */
export function actionsFor(phase: Phase): Action[] {
  if (RUNNING.includes(phase)) return ["pause", "cancel"];
  if (phase === "paused") return ["resume", "cancel"];
  if (phase === "failed" || phase === "cancelled") return ["retry", "show", "dismiss"];
  return ["show", "dismiss"];
}

export function isActive(phase: Phase): boolean {
  return RUNNING.includes(phase) || phase === "paused";
}

export class QueueModel {
  private rows = new Map<number, UploadRow>();
  private samples = new Map<number, Sample[]>();
  /** The ids in list order, in two sorted runs kept up to date row by row (a folder of
   * 100,000 files is never sorted again as its files finish): unfinished ones ascending, then
   * finished ones descending. */
  private unfinished: number[] = [];
  private finished: number[] = [];

  constructor(private now: () => number = () => performance.now()) {}

  reset(rows: UploadRow[]): void {
    this.rows = new Map(rows.map((r) => [r.id, r]));
    this.samples.clear();
    this.unfinished = rows.filter((r) => isActive(r.phase)).map((r) => r.id).sort((a, b) => a - b);
    this.finished = rows.filter((r) => !isActive(r.phase)).map((r) => r.id).sort((a, b) => b - a);
  }

  /** Moves `id` to the run its row belongs in now (`before` is its row until now). */
  private place(id: number, before: UploadRow | undefined, now: UploadRow | undefined): void {
    const was = before === undefined ? null : isActive(before.phase);
    const is = now === undefined ? null : isActive(now.phase);
    if (was === is) return;
    if (was !== null) removeSorted(was ? this.unfinished : this.finished, id, was);
    if (is !== null) insertSorted(is ? this.unfinished : this.finished, id, is);
  }

  /** Applies one event; returns the row it touched, if any. */
  apply(event: ManagerEvent): UploadRow | undefined {
    switch (event.event) {
      case "changed": {
        // The queue shows no digest or address (History does): not kept for 100,000 rows.
        const row = { ...event.row, sha256: null, location: null };
        const before = this.rows.get(row.id);
        this.rows.set(row.id, row);
        this.place(row.id, before, row);
        if (!RUNNING.includes(row.phase)) this.samples.delete(row.id);
        else this.sample(row.id, row.sent);
        return row;
      }
      case "progress": {
        const row = this.rows.get(event.id);
        if (!row) return undefined;
        const next = { ...row, sent: event.sent, size: event.total };
        this.rows.set(row.id, next);
        this.sample(row.id, event.sent);
        return next;
      }
      case "batchFinished":
        return undefined;
    }
  }

  remove(id: number): void {
    this.place(id, this.rows.get(id), undefined);
    this.rows.delete(id);
    this.samples.delete(id);
  }

  /** How many rows there are. */
  size(): number {
    return this.unfinished.length + this.finished.length;
  }

  /** The id of the row at `index` in [`list`](#list)'s order. */
  idAt(index: number): number | undefined {
    const u = this.unfinished.length;
    return index < u ? this.unfinished[index] : this.finished[index - u];
  }

  /** Uploads still to finish first, oldest first (the order they run in); then finished ones,
   * newest first: a new drop is at the top, not below the day's finished cards. */
  list(): UploadRow[] {
    return [...this.rows.values()].sort((a, b) => {
      const [activeA, activeB] = [isActive(a.phase), isActive(b.phase)];
      if (activeA !== activeB) return activeA ? -1 : 1;
      return activeA ? a.id - b.id : b.id - a.id;
    });
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
    const list = this.samples.get(id) ?? [];
    if (list.length < 2) return 0;
    const first = list[0];
    const last = list[list.length - 1];
    const ms = last.at - first.at;
    return ms > 0 ? ((last.sent - first.sent) * 1000) / ms : 0;
  }

  /** Seconds left at the current speed, or null when unknown. */
  eta(id: number): number | null {
    const row = this.rows.get(id);
    const speed = this.speed(id);
    if (!row || speed <= 0) return null;
    return Math.max(0, (row.size - row.sent) / speed);
  }

  /** Totals over uploads that are not finished, for the overall bar. */
  overall(): { sent: number; total: number; active: number; speed: number } {
    let sent = 0;
    let total = 0;
    let active = 0;
    let speed = 0;
    for (const r of this.rows.values()) {
      if (!isActive(r.phase)) continue;
      active += 1;
      sent += r.sent;
      total += r.size;
      speed += this.speed(r.id);
    }
    return { sent, total, active, speed };
  }
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

/** Where `id` goes in `ids`, sorted ascending (or descending). */
function positionOf(ids: number[], id: number, ascending: boolean): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ascending ? ids[mid] < id : ids[mid] > id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function insertSorted(ids: number[], id: number, ascending: boolean): void {
  const at = positionOf(ids, id, ascending);
  if (ids[at] !== id) ids.splice(at, 0, id);
}

function removeSorted(ids: number[], id: number, ascending: boolean): void {
  const at = positionOf(ids, id, ascending);
  if (ids[at] === id) ids.splice(at, 1);
}
