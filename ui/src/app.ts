// The window: wiring only. The queue, history and profiles tabs are views (src/views/); this
// file creates them, switches tabs, takes dropped and picked paths, and boots. No upload logic
// lives here.
import { getCurrentWebview } from "@tauri-apps/api/webview";
import { open } from "@tauri-apps/plugin-dialog";
import { byId } from "./dom";
import { ipc } from "./ipc";
import { count, isProfileFile } from "./model";
import { context, type Tab, TABS } from "./views/context";
import { HistoryView } from "./views/history";
import { ProfilesView } from "./views/profiles";
import { QueueView } from "./views/queue";

const ctx = context(showTab);
const queue = new QueueView(ctx);
const history = new HistoryView(ctx);
const profiles = new ProfilesView(ctx);

export function showTab(tab: Tab): void {
  for (const t of TABS) {
    const button = byId(`tab-${t}`);
    button.setAttribute("aria-selected", String(t === tab));
    button.tabIndex = t === tab ? 0 : -1;
    byId(`${t}-view`).hidden = t !== tab;
  }
  if (tab === "history") void history.refresh();
  if (tab === "profiles") void profiles.refresh();
}

/**
 * Dropped or picked paths: profile files are imported, everything else is queued. A drop that
 * mixes both is refused whole: files must never go to a profile that arrived with them.
 */
export async function handlePaths(paths: string[]): Promise<void> {
  const profileFiles = paths.filter(isProfileFile);
  const files = paths.filter((p) => !isProfileFile(p));
  if (profileFiles.length > 0 && files.length > 0) {
    ctx.say(
      `Nothing was added: this drop mixes profile files with ${count(files.length, "other file")}. Drop profile files on their own.`,
      "error",
    );
    return;
  }
  for (const p of profileFiles) await profiles.importFile(p);
  if (files.length === 0) return;
  const report = await ctx.attempt("Add", () => ipc.addPaths(files));
  if (report) {
    // Dropped on another tab: the queue is where the files and any refusals show.
    showTab("queue");
    queue.added(report);
  }
}

/** Shows the form for a new profile (no entry) or for editing one. */
export const editProfile = profiles.edit.bind(profiles);
/** Reads the profile form into a profile and the secrets typed. */
export const readProfileForm = profiles.readForm.bind(profiles);

async function pick(directory: boolean): Promise<void> {
  const picked = await open({ multiple: true, directory });
  if (!picked) return;
  await handlePaths(Array.isArray(picked) ? picked : [picked]);
}

function wire(): void {
  for (const t of TABS) byId(`tab-${t}`).addEventListener("click", () => showTab(t));
  document.querySelector(".tabs")?.addEventListener("keydown", (e) => {
    const ev = e as KeyboardEvent;
    if (ev.key !== "ArrowRight" && ev.key !== "ArrowLeft") return;
    const current = TABS.findIndex((t) => byId(`tab-${t}`).getAttribute("aria-selected") === "true");
    const next = TABS[(current + (ev.key === "ArrowRight" ? 1 : TABS.length - 1)) % TABS.length];
    showTab(next);
    byId(`tab-${next}`).focus();
  });
  byId("add-files").addEventListener("click", () => void pick(false));
  byId("add-folder").addEventListener("click", () => void pick(true));
  document.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "o") {
      e.preventDefault();
      void pick(false);
    }
  });
  queue.wire();
  history.wire();
  profiles.wire();
}

async function listenForDrops(): Promise<void> {
  const overlay = byId("drop-overlay");
  await getCurrentWebview().onDragDropEvent((event) => {
    const p = event.payload;
    overlay.hidden = !(p.type === "enter" || p.type === "over");
    if (p.type === "drop") void handlePaths(p.paths);
  });
}

export async function boot(): Promise<void> {
  wire();
  await ctx.attempt("Queue", () =>
    ipc.subscribe((event) => {
      queue.onEvent(event);
      // Files handed to the app from outside (Open with Hoist, Send to, a script).
      if (event.event === "added") queue.added(event.summary);
      if (event.event === "batchFinished" && !byId("history-view").hidden) void history.refresh();
    }),
  );
  await queue.refresh();
  await profiles.refresh();
  await profiles.refreshHeader();
  await listenForDrops();
  document.body.dataset.ready = "1";
}
