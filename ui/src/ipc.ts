// Typed calls into the desktop shell. Every type here is generated from the Rust types
// (src/bindings, written by ts-rs); nothing is copied by hand.
import { Channel, invoke } from "@tauri-apps/api/core";
import type { AddSummary } from "./bindings/AddSummary";
import type { ErrorKind } from "./bindings/ErrorKind";
import type { ExportFormat } from "./bindings/ExportFormat";
import type { HealthReport } from "./bindings/HealthReport";
import type { Hint } from "./bindings/Hint";
import type { HistoryPage } from "./bindings/HistoryPage";
import type { HistoryQuery } from "./bindings/HistoryQuery";
import type { IpcError } from "./bindings/IpcError";
import type { ManagerEvent } from "./bindings/ManagerEvent";
import type { Overview } from "./bindings/Overview";
import type { Profile } from "./bindings/Profile";
import type { ProfileEntry } from "./bindings/ProfileEntry";
import type { ProfileTemplate } from "./bindings/ProfileTemplate";
import type { SecretInput } from "./bindings/SecretInput";
import type { QueueQuery } from "./bindings/QueueQuery";
import type { QueueWindow } from "./bindings/QueueWindow";

export function isIpcError(e: unknown): e is IpcError {
  return typeof e === "object" && e !== null && "kind" in e && "message" in e;
}

/** The message to show for anything a command threw. */
export function errorMessage(e: unknown): string {
  if (isIpcError(e)) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}

export function errorKind(e: unknown): ErrorKind {
  return isIpcError(e) ? e.kind : "local";
}

/** What would fix what a command threw, when the core knows: its hint. */
export function errorHint(e: unknown): Hint | null {
  return isIpcError(e) ? (e.hint ?? null) : null;
}

/** The window's words for a hint: what to do, with the window's own controls. */
export function adviceFor(hint: Hint): string {
  switch (hint.hint) {
    case "store-secret":
      return `open Profiles and enter the ${hint.kind} of ${hint.profile}`;
    case "check-token":
      return "open Profiles and enter the token your company gave you";
    case "add-profile":
      return "create a profile in Profiles";
    case "remove-profile":
      return `a profile named ${hint.profile} exists: edit it, or choose another name`;
    case "choose-profile":
      return "choose the active profile in Profiles";
    case "sweep":
      return "its unfinished parts stay on the store until they expire or are swept";
    case "sign-in":
      return "press Sign in at the top of the window";
  }
}

export const ipc = {
  /** Events come coalesced, several in one message; `onEvent` hears each in order. The rows
   * themselves come from `queueWindow`. */
  subscribe(onEvent: (e: ManagerEvent) => void): Promise<void> {
    const channel = new Channel<ManagerEvent[] | ManagerEvent>();
    channel.onmessage = (message) => {
      for (const e of Array.isArray(message) ? message : [message]) onEvent(e);
    };
    return invoke("subscribe", { onEvent: channel });
  },
  overview: (): Promise<Overview> => invoke("overview"),
  /** The rows of the queue view from `query.offset` on, with the counts and totals around them. */
  queueWindow: (query: QueueQuery): Promise<QueueWindow> => invoke("queue_window", { query }),
  addPaths: (paths: string[]): Promise<AddSummary> => invoke("add_paths", { paths }),
  pause: (id: number): Promise<void> => invoke("pause", { id }),
  resume: (id: number): Promise<void> => invoke("resume", { id }),
  cancel: (id: number): Promise<void> => invoke("cancel", { id }),
  retry: (id: number): Promise<void> => invoke("retry", { id }),
  dismiss: (id: number): Promise<void> => invoke("dismiss", { id }),
  /** Shows the file of upload `id` in the system's file manager. */
  show: (id: number): Promise<void> => invoke("show_in_folder", { id }),
  /** A small picture of upload `id`'s file (a data: URL), or null when it is no image. */
  thumbnail: (id: number): Promise<string | null> => invoke("thumbnail", { id }),
  pauseAll: (): Promise<void> => invoke("pause_all"),
  resumeAll: (): Promise<void> => invoke("resume_all"),
  cancelAll: (): Promise<void> => invoke("cancel_all"),
  retryAll: (): Promise<void> => invoke("retry_all"),
  clearFinished: (): Promise<void> => invoke("clear_finished"),
  historyPage: (query: HistoryQuery): Promise<HistoryPage> => invoke("history_page", { query }),
  exportHistory: (format: ExportFormat, path: string): Promise<number> =>
    invoke("export_history", { format, path }),
  profiles: (): Promise<ProfileEntry[]> => invoke("profiles"),
  profileTemplate: (): Promise<ProfileTemplate> => invoke("profile_template"),
  saveProfile: (
    name: string,
    profile: Profile,
    secrets: SecretInput[],
    create: boolean,
  ): Promise<ProfileEntry> => invoke("save_profile", { name, profile, secrets, create }),
  removeProfile: (name: string): Promise<void> => invoke("remove_profile", { name }),
  setActive: (name: string): Promise<void> => invoke("set_active", { name }),
  exportProfile: (name: string, path: string): Promise<void> =>
    invoke("export_profile", { name, path }),
  importProfile: (path: string): Promise<ProfileEntry> => invoke("import_profile", { path }),
  healthCheck: (name: string): Promise<HealthReport> => invoke("health_check", { name }),
  /** Sets the bandwidth limit over all uploads ("5MB", "" for none); answers bytes per second. */
  setLimitRate: (rate: string): Promise<number | null> => invoke("set_limit_rate", { rate }),
  /** A presigned link that downloads finished upload `id` until `expiresSecs` from now. */
  shareLink: (id: number, expiresSecs: number): Promise<string> => invoke("share_link", { id, expiresSecs }),
  /** Signs profile `name` in through the system browser; answers who signed in. */
  signIn: (name: string): Promise<string> => invoke("sign_in", { name }),
  signOut: (name: string): Promise<void> => invoke("sign_out", { name }),
  /** A size as typed ("100MB", "5GiB") in bytes, parsed by the core as the CLI parses it. */
  parseSize: (text: string): Promise<number> => invoke("parse_size", { text }),
};
