// The window: queue, history and profiles. It renders what the core reports and forwards what
// the user does; no upload logic lives here.
import { getCurrentWebview } from "@tauri-apps/api/webview";
import { open, save } from "@tauri-apps/plugin-dialog";
import type { HealthReport } from "./bindings/HealthReport";
import type { HistoryEntry } from "./bindings/HistoryEntry";
import type { ManagerEvent } from "./bindings/ManagerEvent";
import type { Profile } from "./bindings/Profile";
import type { ProfileEntry } from "./bindings/ProfileEntry";
import type { Rejection } from "./bindings/Rejection";
import type { SecretInput } from "./bindings/SecretInput";
import type { SecretKind } from "./bindings/SecretKind";
import type { UploadRow } from "./bindings/UploadRow";
import { byId, h } from "./dom";
import { errorKind, errorMessage, ipc } from "./ipc";
import {
  type Action,
  actionsFor,
  formatBytes,
  formatDuration,
  formatSpeed,
  isProfileFile,
  percent,
  QueueModel,
} from "./model";

export const model = new QueueModel();
const rowEls = new Map<number, HTMLLIElement>();
let renderQueued = false;
let profiles: ProfileEntry[] = [];

const ACTION_LABEL: Record<Action, string> = {
  pause: "Pause",
  resume: "Resume",
  cancel: "Cancel",
  retry: "Retry",
  dismiss: "Dismiss",
};

const SECRET_LABEL: Record<SecretKind, string> = {
  "secret-access-key": "Secret access key",
  "session-token": "Session token",
  "bearer-token": "Bearer token",
};

export function say(message: string, tone: "info" | "error" = "info"): void {
  const s = byId("status");
  s.textContent = message;
  s.dataset.tone = tone;
}

async function attempt<T>(what: string, f: () => Promise<T>): Promise<T | undefined> {
  try {
    return await f();
  } catch (e) {
    if (errorKind(e) === "missing-secret") {
      say(`${errorMessage(e)} — open Profiles and enter it.`, "error");
      showTab("profiles");
    } else {
      say(`${what}: ${errorMessage(e)}`, "error");
    }
    return undefined;
  }
}

// ---------- queue ----------

function scheduleRender(): void {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderQueue();
  });
}

function rowElement(row: UploadRow): HTMLLIElement {
  let li = rowEls.get(row.id);
  if (li) return li;
  li = h(
    "li",
    { class: "row", "data-id": row.id, "data-testid": "upload-row" },
    h(
      "div",
      { class: "row-head" },
      h("span", { class: "name" }),
      h("span", { class: "badge", "data-testid": "phase" }),
    ),
    h("div", { class: "key" }),
    h("progress", { max: 100, value: 0 }),
    h("div", { class: "meta" }),
    h("div", { class: "error", "data-testid": "error" }),
    h("div", { class: "actions" }),
  );
  rowEls.set(row.id, li);
  return li;
}

function updateRow(li: HTMLLIElement, row: UploadRow): void {
  const q = <T extends Element>(sel: string) => li.querySelector(sel) as T;
  li.className = `row phase-${row.phase}`;
  q<HTMLElement>(".name").textContent = row.name;
  q<HTMLElement>(".name").title = row.path;
  q<HTMLElement>(".badge").textContent = row.phase;
  q<HTMLElement>(".key").textContent = `→ ${row.key}`;
  const bar = q<HTMLProgressElement>("progress");
  bar.value = percent(row.sent, row.size);
  bar.setAttribute("aria-label", `${row.name}: ${bar.value}%`);
  const parts = [`${formatBytes(row.sent)} of ${formatBytes(row.size)}`];
  if (row.phase === "uploading") {
    const speed = formatSpeed(model.speed(row.id));
    const eta = formatDuration(model.eta(row.id));
    if (speed) parts.push(speed);
    if (eta) parts.push(`${eta} left`);
  }
  q<HTMLElement>(".meta").textContent = parts.join(" · ");
  q<HTMLElement>(".error").textContent = row.error ?? "";
  const actions = q<HTMLElement>(".actions");
  const wanted = actionsFor(row.phase);
  const have = [...actions.querySelectorAll("button")].map((b) => b.dataset.action);
  if (have.join() !== wanted.join()) {
    actions.replaceChildren(
      ...wanted.map((a) =>
        h("button", { "data-action": a, "aria-label": `${ACTION_LABEL[a]} ${row.name}` }, ACTION_LABEL[a]),
      ),
    );
  }
}

export function renderQueue(): void {
  const list = byId("queue");
  const rows = model.list();
  const seen = new Set<number>();
  rows.forEach((row, i) => {
    const li = rowElement(row);
    updateRow(li, row);
    seen.add(row.id);
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] ?? null);
  });
  for (const [id, li] of rowEls) {
    if (!seen.has(id)) {
      li.remove();
      rowEls.delete(id);
    }
  }
  byId("queue-empty").hidden = rows.length > 0;
  const o = model.overall();
  byId("overall").hidden = o.active === 0;
  (byId("overall-bar") as HTMLProgressElement).value = percent(o.sent, o.total);
  const eta = o.speed > 0 ? formatDuration((o.total - o.sent) / o.speed) : "";
  byId("overall-text").textContent = [
    `${o.active} unfinished`,
    `${formatBytes(o.sent)} of ${formatBytes(o.total)}`,
    formatSpeed(o.speed),
    eta && `${eta} left`,
  ]
    .filter(Boolean)
    .join(" · ");
}

export function onManagerEvent(event: ManagerEvent): void {
  model.apply(event);
  if (event.event === "batchFinished") {
    const { done, failed } = event;
    say(
      failed > 0 ? `${done} uploaded, ${failed} failed: see the reasons below.` : `${done} uploaded.`,
      failed > 0 ? "error" : "info",
    );
    if (!byId("history-view").hidden) void refreshHistory();
  }
  scheduleRender();
}

function renderRejections(rejected: Rejection[]): void {
  byId("rejections").replaceChildren(
    ...rejected.map((r) =>
      h(
        "li",
        { "data-testid": "rejection" },
        h("b", {}, r.path.split(/[\\/]/).pop() ?? r.path),
        `: ${r.reason}`,
      ),
    ),
  );
}

/** Dropped or picked paths: profile files are imported, everything else is queued. */
export async function handlePaths(paths: string[]): Promise<void> {
  const profileFiles = paths.filter(isProfileFile);
  const files = paths.filter((p) => !isProfileFile(p));
  for (const p of profileFiles) await importProfileFile(p);
  if (files.length === 0) return;
  const report = await attempt("Add", () => ipc.addPaths(files));
  if (!report) return;
  for (const row of report.queued) model.apply({ event: "changed", row });
  renderRejections(report.rejected);
  const n = report.queued.length;
  say(
    report.rejected.length > 0
      ? `${n} queued; ${report.rejected.length} not queued: see why above the queue.`
      : `${n} file(s) queued.`,
    report.rejected.length > 0 ? "error" : "info",
  );
  scheduleRender();
}

/** Imports a profile file; when it needs a secret, opens its form to enter it. */
export async function importProfileFile(path: string): Promise<void> {
  const entry = await attempt("Import", () => ipc.importProfile(path));
  if (!entry) return;
  say(`Imported profile ${entry.name}; it is now active.`);
  await refreshProfiles();
  await refreshOverview();
  if (entry.secrets.some((s) => s.required && !s.stored)) {
    showTab("profiles");
    editProfile(entry);
  }
}

async function onRowAction(id: number, action: Action): Promise<void> {
  const row = model.get(id);
  await attempt(`${ACTION_LABEL[action]} ${row?.name ?? ""}`.trim(), async () => {
    await ipc[action](id);
    if (action === "dismiss") {
      model.remove(id);
      scheduleRender();
    }
  });
}

// ---------- header ----------

export async function refreshOverview(): Promise<void> {
  const o = await attempt("Profile", () => ipc.overview());
  if (!o) return;
  byId("destination").textContent = o.destination;
  byId("destination").title = o.local
    ? "The embedded store on this machine: a folder you can open"
    : o.destination;
  const select = byId<HTMLSelectElement>("profile-select");
  select.replaceChildren(
    ...profiles.map((p) => h("option", { value: p.name, selected: p.name === o.activeProfile }, p.name)),
  );
  if (!profiles.length) select.append(h("option", { value: o.activeProfile, selected: true }, o.activeProfile));
}

// ---------- history ----------

let historyRows: HistoryEntry[] = [];

export async function refreshHistory(): Promise<void> {
  historyRows = (await attempt("History", () => ipc.history())) ?? [];
  const body = byId("history-body");
  body.replaceChildren(
    ...historyRows.map((e) =>
      h(
        "tr",
        { "data-testid": "history-row" },
        h("td", { title: e.name }, e.name),
        h("td", { class: "mono", title: e.key }, e.key),
        h("td", {}, formatBytes(e.size)),
        h("td", { class: "mono", title: e.sha256 }, e.sha256.slice(0, 12) + "…"),
        h("td", {}, e.finishedAt.replace("T", " ").replace(/\.\d+Z$/, " UTC")),
        h("td", {}, e.profile),
        h(
          "td",
          { class: "copy" },
          h("button", { "data-copy": e.key, "aria-label": `Copy key of ${e.name}` }, "Copy key"),
          e.url ? h("button", { "data-copy": e.url, "aria-label": `Copy URL of ${e.name}` }, "Copy URL") : null,
        ),
      ),
    ),
  );
  byId("history-empty").hidden = historyRows.length > 0;
}

async function exportHistory(format: "csv" | "json"): Promise<void> {
  const path = await save({
    defaultPath: `hoist-history.${format}`,
    filters: [{ name: format.toUpperCase(), extensions: [format] }],
  });
  if (!path) return;
  const n = await attempt("Export", () => ipc.exportHistory(format, path));
  if (n !== undefined) say(`Exported ${n} upload(s) to ${path}.`);
}

async function copy(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
    say(`Copied ${text}`);
  } catch {
    say(`Copy this by hand: ${text}`);
  }
}

// ---------- profiles ----------

export async function refreshProfiles(): Promise<void> {
  profiles = (await attempt("Profiles", () => ipc.profiles())) ?? profiles;
  byId("profile-list").replaceChildren(
    ...profiles.map((p) => {
      const missing = p.secrets.filter((s) => s.required && !s.stored);
      return h(
        "li",
        { "data-testid": "profile", "data-name": p.name, class: p.active ? "active" : "" },
        h(
          "div",
          { class: "row-head" },
          h("b", {}, p.name),
          h("span", { class: "badge" }, describeMode(p.profile)),
          p.active ? h("span", { class: "badge ok" }, "active") : null,
        ),
        missing.length
          ? h("div", { class: "error" }, `Missing in the keychain: ${missing.map((s) => SECRET_LABEL[s.kind]).join(", ")}`)
          : null,
        h(
          "div",
          { class: "actions" },
          p.active ? null : h("button", { "data-profile-action": "use", "data-name": p.name }, "Use"),
          h("button", { "data-profile-action": "test", "data-name": p.name }, "Test"),
          p.builtin ? null : h("button", { "data-profile-action": "edit", "data-name": p.name }, "Edit"),
          p.builtin ? null : h("button", { "data-profile-action": "export", "data-name": p.name }, "Export…"),
          p.builtin ? null : h("button", { "data-profile-action": "remove", "data-name": p.name }, "Remove"),
        ),
      );
    }),
  );
}

function describeMode(p: Profile): string {
  switch (p.mode) {
    case "backend":
      return `backend · ${p.url}`;
    case "self-sign":
      return `self-sign · ${p.bucket}`;
    default:
      return "embedded store on this machine";
  }
}

function field(label: string, input: HTMLElement, hint?: string): HTMLElement {
  return h("label", { class: "field" }, h("span", {}, label), input, hint ? h("small", {}, hint) : null);
}

function input(name: string, value = "", attrs: Record<string, string | boolean> = {}): HTMLInputElement {
  return h("input", { name, value, ...attrs }) as HTMLInputElement;
}

/** Fields of a profile's mode; the rest are its rules, which every mode shares. */
const MODE_FIELDS = ["mode", "url", "protocol", "token", "bucket", "region", "endpoint", "path_style", "access_key_id"];

/**
 * The profile a form starts from: the one edited, or the core's defaults (the built-in profile's
 * rules) for a new one. Fields the form does not show (key template, empty files) keep its values.
 */
const formBase = new WeakMap<HTMLFormElement, Record<string, unknown>>();

function rulesOf(p: Profile | undefined): Record<string, unknown> {
  const rules: Record<string, unknown> = { ...(p ?? {}) };
  for (const k of MODE_FIELDS) delete rules[k];
  return rules;
}

/** Shows the form for a new profile (no entry) or for editing one. */
export function editProfile(entry?: ProfileEntry): void {
  const form = byId<HTMLFormElement>("profile-form");
  const p = entry?.profile;
  const defaults = profiles.find((e) => e.builtin)?.profile;
  formBase.set(form, rulesOf(p ?? (defaults && { ...defaults, prefix: "" })));
  const mode = p?.mode ?? "backend";
  const str = (k: string) => (p && k in p ? String((p as Record<string, unknown>)[k] ?? "") : "");
  const bool = (k: string) => Boolean(p && k in p && (p as Record<string, unknown>)[k]);
  const secretHint = (kind: SecretKind) => {
    const stored = entry?.secrets.find((s) => s.kind === kind)?.stored;
    return stored ? "Stored in the keychain. Leave empty to keep it." : "Goes straight to the OS keychain.";
  };
  const modeSelect = h(
    "select",
    { name: "mode" },
    h("option", { value: "backend", selected: mode === "backend" }, "Backend (staff: a server signs)"),
    h("option", { value: "self-sign", selected: mode === "self-sign" }, "Self-sign (admin: keys in the keychain)"),
  );
  const backend = h(
    "fieldset",
    { "data-mode": "backend" },
    h("legend", {}, "Backend"),
    field("Presign URL", input("url", str("url"), { type: "url", placeholder: "https://uploads.example.com/api/upload" })),
    field(
      "Protocol",
      h(
        "select",
        { name: "protocol" },
        h("option", { value: "simple", selected: str("protocol") !== "companion" }, "simple"),
        h("option", { value: "companion", selected: str("protocol") === "companion" }, "companion (multipart)"),
      ),
    ),
    field("Send a bearer token", input("token", "", { type: "checkbox", checked: bool("token") })),
    field("Bearer token", input("bearer-token", "", { type: "password" }), secretHint("bearer-token")),
  );
  const selfSign = h(
    "fieldset",
    { "data-mode": "self-sign" },
    h("legend", {}, "Self-sign"),
    field("Bucket", input("bucket", str("bucket"))),
    field("Region", input("region", str("region") || "us-east-1")),
    field("Endpoint", input("endpoint", str("endpoint"), { placeholder: "empty for AWS" })),
    field("Path-style addresses", input("path_style", "", { type: "checkbox", checked: bool("path_style") })),
    field("Access key id", input("access_key_id", str("access_key_id"))),
    field("Secret access key", input("secret-access-key", "", { type: "password" }), secretHint("secret-access-key")),
    field("Session token", input("session-token", "", { type: "password" }), "Optional. " + secretHint("session-token")),
  );
  const showMode = () => {
    backend.hidden = modeSelect.value !== "backend";
    selfSign.hidden = modeSelect.value !== "self-sign";
  };
  modeSelect.addEventListener("change", showMode);
  form.replaceChildren(
    h("h2", {}, entry ? `Edit ${entry.name}` : "New profile"),
    field("Name", input("name", entry?.name ?? "", { required: true, readonly: Boolean(entry) })),
    field("Mode", modeSelect),
    backend,
    selfSign,
    h(
      "fieldset",
      {},
      h("legend", {}, "Rules"),
      field("Key prefix", input("prefix", p?.prefix ?? "")),
      field("Largest file (bytes)", input("max_size", p?.max_size != null ? String(p.max_size) : "", { inputmode: "numeric" })),
      field("Allowed types", input("allowed_types", (p?.allowed_types ?? []).join(", "), { placeholder: "image/*, application/pdf" })),
      field("Uploads at once", input("concurrency", String(p?.concurrency ?? 4), { type: "number", min: "1", max: "64" })),
    ),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "primary" }, "Save"),
      h("button", { type: "button", "data-form": "cancel" }, "Close"),
    ),
  );
  form.dataset.create = entry ? "" : "1";
  form.hidden = false;
  showMode();
  (form.querySelector(entry ? "select, input:not([readonly])" : "input") as HTMLElement | null)?.focus();
}

/** Reads the form into a profile and the secrets typed (empty ones are left out). */
export function readProfileForm(form: HTMLFormElement): { name: string; profile: Profile; secrets: SecretInput[] } {
  const v = (n: string) => (form.elements.namedItem(n) as HTMLInputElement | null)?.value.trim() ?? "";
  const checked = (n: string) => Boolean((form.elements.namedItem(n) as HTMLInputElement | null)?.checked);
  const mode = v("mode");
  const { max_size: _shownBelow, ...base } = formBase.get(form) ?? {};
  const rules = {
    key_template: "",
    ...base,
    prefix: v("prefix"),
    allowed_types: v("allowed_types")
      .split(",")
      .map((t) => t.trim())
      .filter(Boolean),
    concurrency: Number(v("concurrency")) || 4,
    ...(v("max_size") ? { max_size: Number(v("max_size")) } : {}),
  };
  const kinds: SecretKind[] =
    mode === "backend" ? ["bearer-token"] : ["secret-access-key", "session-token"];
  const secrets = kinds.map((kind) => ({ kind, value: v(kind) })).filter((s) => s.value !== "");
  const profile: Profile =
    mode === "backend"
      ? { ...rules, mode: "backend", url: v("url"), protocol: v("protocol") === "companion" ? "companion" : "simple", token: checked("token") }
      : {
          ...rules,
          mode: "self-sign",
          bucket: v("bucket"),
          region: v("region"),
          ...(v("endpoint") ? { endpoint: v("endpoint") } : {}),
          path_style: checked("path_style"),
          access_key_id: v("access_key_id"),
        };
  return { name: v("name"), profile, secrets };
}

async function saveProfileForm(form: HTMLFormElement): Promise<void> {
  const { name, profile, secrets } = readProfileForm(form);
  const entry = await attempt("Save", () => ipc.saveProfile(name, profile, secrets, form.dataset.create === "1"));
  // Typed secrets never stay in the page.
  for (const el of form.querySelectorAll<HTMLInputElement>("input[type=password]")) el.value = "";
  if (!entry) return;
  form.hidden = true;
  say(`Saved profile ${entry.name}.`);
  await refreshProfiles();
  await refreshOverview();
}

function renderHealth(report: HealthReport): void {
  const box = byId("health");
  const icon = { pass: "✔", fail: "✖", skipped: "–" } as const;
  box.replaceChildren(
    h("h2", {}, `Health of ${report.profile}: ${report.ok ? "OK" : "problems found"}`),
    h(
      "ul",
      {},
      ...report.checks.map((c) =>
        h("li", { class: `check ${c.status}`, "data-testid": "check" }, `${icon[c.status]} ${c.name}: `, c.detail),
      ),
    ),
  );
  box.hidden = false;
}

async function onProfileAction(action: string, name: string): Promise<void> {
  const entry = profiles.find((p) => p.name === name);
  switch (action) {
    case "use":
      await attempt("Use profile", () => ipc.setActive(name));
      await refreshProfiles();
      await refreshOverview();
      say(`New files go to ${name}.`);
      break;
    case "test": {
      say(`Testing ${name}…`);
      const report = await attempt("Test", () => ipc.healthCheck(name));
      if (report) {
        renderHealth(report);
        say(report.ok ? `${name} works.` : `${name} has problems: see the checks.`, report.ok ? "info" : "error");
      }
      break;
    }
    case "edit":
      if (entry) editProfile(entry);
      break;
    case "export": {
      const path = await save({
        defaultPath: `${name}.hoist-profile.toml`,
        filters: [{ name: "Hoist profile", extensions: ["toml"] }],
      });
      if (path && (await attempt("Export", () => ipc.exportProfile(name, path))) !== undefined)
        say(`Exported ${name} (no secrets) to ${path}.`);
      break;
    }
    case "remove":
      if (!window.confirm(`Remove profile ${name} and its keychain secrets?`)) return;
      await attempt("Remove", () => ipc.removeProfile(name));
      await refreshProfiles();
      await refreshOverview();
      break;
  }
}

// ---------- tabs and wiring ----------

const TABS = ["queue", "history", "profiles"] as const;
type Tab = (typeof TABS)[number];

export function showTab(tab: Tab): void {
  for (const t of TABS) {
    const button = byId(`tab-${t}`);
    button.setAttribute("aria-selected", String(t === tab));
    button.tabIndex = t === tab ? 0 : -1;
    byId(`${t}-view`).hidden = t !== tab;
  }
  if (tab === "history") void refreshHistory();
  if (tab === "profiles") void refreshProfiles();
}

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
  byId("pause-all").addEventListener("click", () => void attempt("Pause all", () => ipc.pauseAll()));
  byId("resume-all").addEventListener("click", () => void attempt("Resume all", () => ipc.resumeAll()));
  byId("retry-all").addEventListener("click", () => void attempt("Retry", () => ipc.retryAll()));
  byId("cancel-all").addEventListener("click", () => void attempt("Cancel all", () => ipc.cancelAll()));
  byId("clear-finished").addEventListener("click", async () => {
    const rows = await attempt("Clear", () => ipc.clearFinished());
    if (rows) {
      model.reset(rows);
      scheduleRender();
    }
  });
  byId("queue").addEventListener("click", (e) => {
    const button = (e.target as HTMLElement).closest<HTMLButtonElement>("button[data-action]");
    const li = button?.closest<HTMLElement>("li[data-id]");
    if (button && li) void onRowAction(Number(li.dataset.id), button.dataset.action as Action);
  });
  byId("export-csv").addEventListener("click", () => void exportHistory("csv"));
  byId("export-json").addEventListener("click", () => void exportHistory("json"));
  byId("history-body").addEventListener("click", (e) => {
    const b = (e.target as HTMLElement).closest<HTMLButtonElement>("button[data-copy]");
    if (b?.dataset.copy) void copy(b.dataset.copy);
  });
  byId("new-profile").addEventListener("click", () => editProfile());
  byId("import-profile").addEventListener("click", async () => {
    const picked = await open({ multiple: false, filters: [{ name: "Hoist profile", extensions: ["toml"] }] });
    if (typeof picked === "string") await importProfileFile(picked);
  });
  byId("profile-list").addEventListener("click", (e) => {
    const b = (e.target as HTMLElement).closest<HTMLButtonElement>("button[data-profile-action]");
    if (b) void onProfileAction(b.dataset.profileAction ?? "", b.dataset.name ?? "");
  });
  const form = byId<HTMLFormElement>("profile-form");
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void saveProfileForm(form);
  });
  form.addEventListener("click", (e) => {
    if ((e.target as HTMLElement).dataset.form === "cancel") form.hidden = true;
  });
  byId<HTMLSelectElement>("profile-select").addEventListener("change", (e) =>
    void onProfileAction("use", (e.target as HTMLSelectElement).value),
  );
  document.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "o") {
      e.preventDefault();
      void pick(false);
    }
  });
}

async function listenForDrops(): Promise<void> {
  const overlay = byId("drop-overlay");
  await getCurrentWebview().onDragDropEvent((event) => {
    const p = event.payload;
    if (p.type === "enter" || p.type === "over") overlay.hidden = false;
    else overlay.hidden = true;
    if (p.type === "drop") void handlePaths(p.paths);
  });
}

export async function boot(): Promise<void> {
  wire();
  const rows = await attempt("Queue", () => ipc.subscribe(onManagerEvent));
  model.reset(rows ?? []);
  renderQueue();
  await refreshProfiles();
  await refreshOverview();
  await listenForDrops();
  document.body.dataset.ready = "1";
}
