// The profiles tab and the header: profiles with their mode and missing secrets; use, test,
// edit, export, import and remove; the form for a new or edited profile; the header's active
// profile and destination.
import { ask, open, save } from "@tauri-apps/plugin-dialog";
import type { HealthReport } from "../bindings/HealthReport";
import type { Profile } from "../bindings/Profile";
import type { ProfileEntry } from "../bindings/ProfileEntry";
import type { ProfileTemplate } from "../bindings/ProfileTemplate";
import type { SecretInput } from "../bindings/SecretInput";
import type { SecretKind } from "../bindings/SecretKind";
import { byId, h } from "../dom";
import { ipc } from "../ipc";
import { formatRate } from "../model";
import type { Context } from "./context";

const SECRET_LABEL: Record<SecretKind, string> = {
  "secret-access-key": "Secret access key",
  "session-token": "Session token",
  "bearer-token": "Bearer token",
  "proxy-password": "Proxy password",
  "sign-in": "Signed in",
};

function field(label: string, input: HTMLElement, hint?: string): HTMLElement {
  return h("label", { class: "field" }, h("span", {}, label), input, hint ? h("small", {}, hint) : null);
}

function input(name: string, value = "", attrs: Record<string, string | boolean> = {}): HTMLInputElement {
  return h("input", { name, value, ...attrs }) as HTMLInputElement;
}

/** Fields of a profile's mode; the rest are its rules, which every mode shares. */
const MODE_FIELDS = ["mode", "url", "protocol", "token", "bucket", "region", "endpoint", "path_style", "access_key_id"];

function rulesOf(p: Profile | undefined): Record<string, unknown> {
  const rules: Record<string, unknown> = { ...(p ?? {}) };
  for (const k of MODE_FIELDS) delete rules[k];
  return rules;
}

/** Where a profile sends files, in a few words: its backend's host, or its bucket and endpoint. */
export function destinationOf(p: Profile): string {
  const host = (u: string) => {
    try {
      return new URL(u).host;
    } catch {
      return u;
    }
  };
  switch (p.mode) {
    case "backend":
      return `the backend at ${host(p.url)}`;
    case "self-sign":
      return `bucket ${p.bucket}${p.endpoint ? ` at ${host(p.endpoint)}` : " on AWS"}`;
    default:
      return "the embedded store on this machine";
  }
}

/**
 * Everything in a profile that decides where bytes and credentials go, one line each: the full
 * address files are sent to, and any sign-in provider, proxy, extra CA certificates, endpoint or
 * access key. An imported profile is confirmed with all of them (#29: a confirmation naming
 * the host only let an imported proxy, CA file or issuer pass unseen).
 */
export function routeOf(p: Profile): string[] {
  const lines: string[] = [];
  switch (p.mode) {
    case "backend":
      lines.push(`files go to the backend ${p.url} (${p.protocol} protocol)`);
      break;
    case "self-sign":
      lines.push(
        `files go to bucket ${p.bucket} in ${p.region}${p.endpoint ? ` at ${p.endpoint}` : " on AWS"}, signed with access key ${p.access_key_id}`,
      );
      break;
    default:
      lines.push("files go to the embedded store on this machine");
  }
  if (p.sign_in) lines.push(`staff sign in at ${p.sign_in.issuer} (client ${p.sign_in.client_id})`);
  if (p.proxy) lines.push(`every request goes through the proxy ${p.proxy}`);
  if (p.ca_file) lines.push(`certificates signed by the CA in ${p.ca_file} are trusted too`);
  return lines;
}

export class ProfilesView {
  /** The profiles as the core last listed them (the built-in one first). */
  entries: ProfileEntry[] = [];
  /**
   * The profile a form starts from: the one edited, or the core's defaults (the built-in
   * profile's rules) for a new one. Fields the form does not show keep its values.
   */
  private readonly formBase = new WeakMap<HTMLFormElement, Record<string, unknown>>();
  /** The core's defaults for a new profile and the secrets each mode keeps. */
  private template: ProfileTemplate | undefined;
  /** The profile new files go to, as the header last showed it. */
  private active = "";

  constructor(private readonly ctx: Context) {}

  async refresh(): Promise<void> {
    this.template ??= await this.ctx.attempt("Profiles", () => ipc.profileTemplate());
    this.entries = (await this.ctx.attempt("Profiles", () => ipc.profiles())) ?? this.entries;
    byId("profile-list").replaceChildren(
      ...this.entries.map((p) => {
        const missing = p.secrets.filter((s) => s.required && !s.stored && s.kind !== "sign-in");
        const signIn = p.secrets.find((s) => s.kind === "sign-in");
        return h(
          "li",
          { "data-testid": "profile", "data-name": p.name, class: p.active ? "active" : "" },
          h(
            "div",
            { class: "row-head" },
            h("b", {}, p.name),
            h("span", { class: "badge" }, destinationOf(p.profile)),
            p.active ? h("span", { class: "badge ok" }, "active") : null,
            p.managedBy
              ? h("span", { class: "badge", title: `Set by your organisation in ${p.managedBy}` }, "managed by your organisation")
              : null,
            signIn ? h("span", { class: signIn.stored ? "badge ok" : "badge" }, signIn.stored ? "signed in" : "not signed in") : null,
          ),
          missing.length
            ? h("div", { class: "error" }, `Missing in the keychain: ${missing.map((s) => SECRET_LABEL[s.kind]).join(", ")}`)
            : null,
          h(
            "div",
            { class: "actions" },
            // Every row has the same buttons in the same places, whichever profile is active
            // (#31: a row's buttons moved, and Export was clicked instead of Edit).
            h(
              "button",
              { "data-profile-action": "use", "data-name": p.name, disabled: p.active, "aria-label": p.active ? `${p.name} is in use` : `Use ${p.name}` },
              p.active ? "In use" : "Use",
            ),
            h("button", { "data-profile-action": "test", "data-name": p.name }, "Test"),
            // A managed profile is the organisation's: staff enter its secrets, nothing more.
            p.builtin ? null : h("button", { "data-profile-action": "edit", "data-name": p.name }, p.managedBy ? "Secrets…" : "Edit"),
            p.builtin ? null : h("button", { "data-profile-action": "export", "data-name": p.name }, "Export…"),
            p.builtin || p.managedBy ? null : h("button", { "data-profile-action": "remove", "data-name": p.name }, "Remove"),
          ),
        );
      }),
    );
  }

  async refreshHeader(): Promise<void> {
    const o = await this.ctx.attempt("Profile", () => ipc.overview());
    if (!o) return;
    byId("destination").textContent = o.destination;
    byId<HTMLInputElement>("limit-rate").value = formatRate(o.limitRate);
    byId("destination").title = o.local
      ? "The embedded store on this machine: a folder you can open"
      : o.destination;
    const select = byId<HTMLSelectElement>("profile-select");
    select.replaceChildren(
      ...this.entries.map((p) => h("option", { value: p.name, selected: p.name === o.activeProfile }, p.name)),
    );
    if (!this.entries.length) select.append(h("option", { value: o.activeProfile, selected: true }, o.activeProfile));
    // A profile whose staff sign in with the company's identity provider: who is signed in.
    byId("sign-in").hidden = !o.signsIn;
    byId("signed-in-as").textContent = o.signedInAs ? `Signed in as ${o.signedInAs}` : "Not signed in";
    byId("sign-in-button").hidden = Boolean(o.signedInAs);
    byId("sign-out-button").hidden = !o.signedInAs;
    this.active = o.activeProfile;
  }

  /** Signs the active profile in (the browser opens the company's page) or out. */
  private async signIn(): Promise<void> {
    this.ctx.say("Signing in: finish in the browser window that opened…");
    const user = await this.ctx.attempt("Sign in", () => ipc.signIn(this.active));
    if (user) this.ctx.say(`Signed in as ${user}.`);
    await this.refreshHeader();
  }

  private async signOut(): Promise<void> {
    if ((await this.ctx.attempt("Sign out", () => ipc.signOut(this.active))) !== undefined) {
      this.ctx.say("Signed out.");
    }
    await this.refreshHeader();
  }

  /** Shows the form for a new profile (no entry) or for editing one. */
  edit(entry?: ProfileEntry): void {
    const form = byId<HTMLFormElement>("profile-form");
    const p = entry?.profile;
    this.formBase.set(form, rulesOf(p ?? this.template?.defaults));
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
      h("option", { value: "backend", selected: mode === "backend" }, "Staff (the company's server signs)"),
      h("option", { value: "self-sign", selected: mode === "self-sign" }, "Admin (signed here, keys in the keychain)"),
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
      field(
        "Sign in with (issuer)",
        input("issuer", p?.sign_in?.issuer ?? "", { type: "url", placeholder: "https://login.example.com/realms/staff" }),
        "Staff sign in with the company's identity provider instead of a stored token.",
      ),
      field("Client id", input("client_id", p?.sign_in?.client_id ?? "", { placeholder: "hoist" })),
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
        field(
          "Largest file",
          input("max_size", p?.max_size != null ? formatRate(p.max_size) : "", { placeholder: "S3's limit; e.g. 100MB or 5GiB" }),
        ),
        field("Allowed types", input("allowed_types", (p?.allowed_types ?? []).join(", "), { placeholder: "image/*, application/pdf" })),
        field("Uploads at once", input("concurrency", String(p?.concurrency ?? 16), { type: "number", min: "1", max: "64" })),
      ),
      h(
        "fieldset",
        {},
        h("legend", {}, "Network"),
        field(
          "Proxy",
          input("proxy", p?.proxy ?? "", { placeholder: "the system's; or http://user@proxy.corp:3128" }),
          "Empty: HTTPS_PROXY, HTTP_PROXY and the system's proxy settings.",
        ),
        field("Proxy password", input("proxy-password", "", { type: "password" }), secretHint("proxy-password")),
        field(
          "Company CA file",
          h(
            "span",
            { class: "with-button" },
            input("ca_file", p?.ca_file ?? "", { placeholder: "PEM file; the system's trust store is always used" }),
            h("button", { type: "button", "data-form": "browse-ca" }, "Browse…"),
          ),
        ),
        field(
          "Bandwidth limit per second",
          input("limit_rate", formatRate(p?.limit_rate ?? null), { placeholder: "none; e.g. 5MB" }),
        ),
      ),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "submit", class: "primary" }, "Save"),
        h("button", { type: "button", "data-form": "cancel" }, "Close"),
      ),
    );
    if (entry?.managedBy) {
      form.querySelector("h2")?.after(
        h("p", { class: "note" }, `Managed by your organisation (${entry.managedBy}): only its secrets can be entered here.`),
      );
      for (const el of form.querySelectorAll<HTMLInputElement | HTMLSelectElement | HTMLButtonElement>(
        "input:not([type=password]), select, button[data-form=browse-ca]",
      ))
        el.disabled = true;
    }
    form.dataset.create = entry ? "" : "1";
    form.hidden = false;
    showMode();
    (form.querySelector(entry ? "select:enabled, input:not([readonly]):enabled" : "input") as HTMLElement | null)?.focus();
  }

  /** Reads the form into a profile and the secrets typed (empty ones are left out). */
  readForm(form: HTMLFormElement): {
    name: string;
    profile: Profile;
    secrets: SecretInput[];
    sizes: Record<"max_size" | "limit_rate", string>;
  } {
    const v = (n: string) => (form.elements.namedItem(n) as HTMLInputElement | null)?.value.trim() ?? "";
    const checked = (n: string) => Boolean((form.elements.namedItem(n) as HTMLInputElement | null)?.checked);
    const mode = v("mode");
    const {
      max_size: _size,
      proxy: _proxy,
      ca_file: _ca,
      limit_rate: _rate,
      sign_in: _signIn,
      ...base
    } = this.formBase.get(form) ?? {};
    const rules = {
      key_template: "",
      ...base,
      prefix: v("prefix"),
      allowed_types: v("allowed_types")
        .split(",")
        .map((t) => t.trim())
        .filter(Boolean),
      concurrency: Number(v("concurrency")) || 16,
      ...(v("proxy") ? { proxy: v("proxy") } : {}),
      ...(v("ca_file") ? { ca_file: v("ca_file") } : {}),
    };
    const kinds: SecretKind[] = [
      ...((mode === "backend" ? this.template?.backendSecrets : this.template?.selfSignSecrets) ?? []),
      ...(v("proxy") ? (this.template?.networkSecrets ?? []) : []),
    ];
    const secrets = kinds.map((kind) => ({ kind, value: v(kind) })).filter((s) => s.value !== "");
    const profile: Profile =
      mode === "backend"
        ? {
            ...rules,
            mode: "backend",
            url: v("url"),
            protocol: v("protocol") === "companion" ? "companion" : "simple",
            // A token typed is a token to send: it was refused unless the box was ticked too.
            token: checked("token") || v("bearer-token") !== "",
            ...(v("issuer") ? { sign_in: { issuer: v("issuer"), client_id: v("client_id") } } : {}),
          }
        : {
            ...rules,
            mode: "self-sign",
            bucket: v("bucket"),
            region: v("region"),
            ...(v("endpoint") ? { endpoint: v("endpoint") } : {}),
            path_style: checked("path_style"),
            access_key_id: v("access_key_id"),
          };
    return { name: v("name"), profile, secrets, sizes: { max_size: v("max_size"), limit_rate: v("limit_rate") } };
  }

  private async save(form: HTMLFormElement): Promise<void> {
    const { name, profile, secrets, sizes } = this.readForm(form);
    // Sizes are read by the core, as the CLI reads them ("100MB", "5GiB"): a typo is refused
    // with its reason instead of being dropped.
    const entry = await this.ctx.attempt("Save", async () => {
      for (const [field, text] of Object.entries(sizes)) {
        if (text) (profile as Record<string, unknown>)[field] = await ipc.parseSize(text.replace(/\/s$/, ""));
      }
      return ipc.saveProfile(name, profile, secrets, form.dataset.create === "1");
    });
    // Typed secrets leave the page once stored; after a refusal they stay, to be corrected.
    if (!entry) return;
    for (const el of form.querySelectorAll<HTMLInputElement>("input[type=password]")) el.value = "";
    form.hidden = true;
    // A report on the profile as it was no longer says anything (#31): test it again.
    const health = byId("health");
    if (health.dataset.profile === entry.name) {
      health.hidden = true;
      health.replaceChildren();
    }
    this.ctx.say(entry.managedBy ? `Stored ${entry.name}'s secrets in the keychain.` : `Saved profile ${entry.name}.`);
    await this.refresh();
    await this.refreshHeader();
  }

  private renderHealth(report: HealthReport): void {
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
    box.dataset.profile = report.profile;
    box.hidden = false;
  }

  async onAction(action: string, name: string): Promise<void> {
    const entry = this.entries.find((p) => p.name === name);
    switch (action) {
      case "use": {
        // Refused when the organisation set the default: the reason stays on the status line.
        const used = await this.ctx.attempt("Use profile", async () => {
          await ipc.setActive(name);
          return true;
        });
        await this.refresh();
        await this.refreshHeader();
        if (used) this.ctx.say(`New files go to ${name}.`);
        break;
      }
      case "test": {
        this.ctx.say(`Testing ${name}…`);
        const report = await this.ctx.attempt("Test", () => ipc.healthCheck(name));
        if (report) {
          this.renderHealth(report);
          this.ctx.say(report.ok ? `${name} works.` : `${name} has problems: see the checks.`, report.ok ? "info" : "error");
        }
        break;
      }
      case "edit":
        if (entry) this.edit(entry);
        break;
      case "export": {
        const path = await save({
          defaultPath: `${name}.hoist-profile.toml`,
          filters: [{ name: "Hoist profile", extensions: ["toml"] }],
        });
        if (path && (await this.ctx.attempt("Export", () => ipc.exportProfile(name, path))) !== undefined)
          this.ctx.say(`Exported ${name} (no secrets) to ${path}.`);
        break;
      }
      case "remove":
        // A native dialog: WebKitGTK shows nothing for window.confirm, which then says no.
        if (
          !(await ask(`Remove profile ${name} and its keychain secrets? This cannot be undone.`, {
            title: "Remove profile",
            kind: "warning",
            okLabel: "Remove",
            cancelLabel: "Keep",
          }))
        )
          return;
        await this.ctx.attempt("Remove", () => ipc.removeProfile(name));
        await this.refresh();
        await this.refreshHeader();
        break;
    }
  }

  /** Imports a profile file; when it needs a secret, opens its form to enter it. */
  /**
   * Imports a profile file. It never takes over by itself: the user is asked whether new files
   * should go where it sends them; when it needs a secret, its form opens to enter it.
   */
  async importFile(path: string): Promise<void> {
    const entry = await this.ctx.attempt("Import", () => ipc.importProfile(path));
    if (!entry) return;
    const where = destinationOf(entry.profile);
    const route = routeOf(entry.profile)
      .map((l) => `• ${l}`)
      .join("\n");
    const use = await ask(`Imported profile ${entry.name}:\n${route}\n\nUse it for new files?`, {
      title: "Imported profile",
      okLabel: "Use it",
      cancelLabel: "Not now",
    });
    if (use) await this.ctx.attempt("Use profile", () => ipc.setActive(entry.name));
    this.ctx.say(
      use
        ? `Imported profile ${entry.name}; new files go to ${where}.`
        : `Imported profile ${entry.name} (${where}); new files still go where they went.`,
    );
    await this.refresh();
    await this.refreshHeader();
    if (entry.secrets.some((s) => s.required && !s.stored)) {
      this.ctx.showTab("profiles");
      this.edit(this.entries.find((e) => e.name === entry.name) ?? entry);
    }
  }

  wire(): void {
    byId("new-profile").addEventListener("click", () => this.edit());
    byId("import-profile").addEventListener("click", async () => {
      const picked = await open({ multiple: false, filters: [{ name: "Hoist profile", extensions: ["toml"] }] });
      if (typeof picked === "string") await this.importFile(picked);
    });
    byId("profile-list").addEventListener("click", (e) => {
      const b = (e.target as HTMLElement).closest<HTMLButtonElement>("button[data-profile-action]");
      if (b) void this.onAction(b.dataset.profileAction ?? "", b.dataset.name ?? "");
    });
    const form = byId<HTMLFormElement>("profile-form");
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.save(form);
    });
    form.addEventListener("click", async (e) => {
      const action = (e.target as HTMLElement).dataset.form;
      if (action === "cancel") form.hidden = true;
      if (action === "browse-ca") {
        const path = await open({
          multiple: false,
          directory: false,
          filters: [{ name: "Certificates (PEM)", extensions: ["pem", "crt", "cer"] }],
        });
        if (typeof path === "string") (form.elements.namedItem("ca_file") as HTMLInputElement).value = path;
      }
    });
    byId("sign-in-button").addEventListener("click", () => void this.signIn());
    byId("sign-out-button").addEventListener("click", () => void this.signOut());
    byId<HTMLSelectElement>("profile-select").addEventListener("change", (e) =>
      void this.onAction("use", (e.target as HTMLSelectElement).value),
    );
  }
}
