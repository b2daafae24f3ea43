// What every view may ask of the window: say something in the status line, run an IPC call
// that reports its own failure, and switch tabs.
import { byId } from "../dom";
import { adviceFor, errorHint, errorKind, errorMessage } from "../ipc";

export const TABS = ["queue", "history", "profiles"] as const;
export type Tab = (typeof TABS)[number];

export interface Context {
  say(message: string, tone?: "info" | "error"): void;
  /** Runs `f`; on failure says why (a missing secret sends the user to Profiles). */
  attempt<T>(what: string, f: () => Promise<T>): Promise<T | undefined>;
  showTab(tab: Tab): void;
}

export function say(message: string, tone: "info" | "error" = "info"): void {
  const s = byId("status");
  s.textContent = message;
  s.dataset.tone = tone;
}

/** A context whose `showTab` is the window's. */
export function context(showTab: (tab: Tab) => void): Context {
  return {
    say,
    showTab,
    async attempt<T>(what: string, f: () => Promise<T>): Promise<T | undefined> {
      try {
        return await f();
      } catch (e) {
        const hint = errorHint(e);
        const advice = hint ? ` — ${adviceFor(hint)}.` : "";
        if (errorKind(e) === "missing-secret" || hint?.hint === "check-token") {
          say(`${errorMessage(e)}${advice || " — open Profiles and enter it."}`, "error");
          showTab("profiles");
        } else {
          say(`${what}: ${errorMessage(e)}${advice}`, "error");
        }
        return undefined;
      }
    },
  };
}
