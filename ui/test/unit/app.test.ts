// The window's logic against mocked IPC: what it sends to the shell and what it shows.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { clearMocks, mockIPC, mockWindows } from "@tauri-apps/api/mocks";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { HistoryEntry } from "../../src/bindings/HistoryEntry";
import type { HistoryPage } from "../../src/bindings/HistoryPage";
import type { HistoryQuery } from "../../src/bindings/HistoryQuery";
import type { ManagerEvent } from "../../src/bindings/ManagerEvent";
import type { ProfileEntry } from "../../src/bindings/ProfileEntry";
import { ROW_HEIGHT } from "../../src/views/queue";
import type { QueueQuery } from "../../src/bindings/QueueQuery";
import type { UploadRow } from "../../src/bindings/UploadRow";
import { FakeQueue, row } from "./fixtures";

const html = readFileSync(resolve(__dirname, "../../index.html"), "utf8");
const body = html.slice(html.indexOf("<body>") + 6, html.indexOf("</body>"));

type Calls = { cmd: string; args: Record<string, unknown> }[];
let calls: Calls;
let handlers: Record<string, (args: Record<string, unknown>) => unknown>;
let channel: { onmessage: (e: ManagerEvent | ManagerEvent[]) => void } | undefined;
let queue: FakeQueue;

/** What the core does for each change: the row in its queue, then the event. */
function changed(...changes: UploadRow[]) {
  channel!.onmessage(changes.map((r) => ({ event: "changed", row: queue.set(r) })));
}

const local: ProfileEntry = {
  name: "local",
  active: true,
  builtin: true,
  profile: { mode: "local", prefix: "uploads/", key_template: "{name}", concurrency: 4 },
  secrets: [],
};


const template = {
  defaults: { mode: "local", prefix: "", key_template: "{yyyy}/{mm}/{dd}/{uuid}-{name}", concurrency: 4 },
  backendSecrets: ["bearer-token"],
  selfSignSecrets: ["secret-access-key", "session-token"],
  networkSecrets: ["proxy-password"],
};

/** Lets the window do what it has to (IPC answers, renders, the queue's throttled fetches):
 * timers are fake, so this takes no real time. */
const settle = () => vi.advanceTimersByTimeAsync(400);

async function start() {
  const app = await import("../../src/app");
  await app.boot();
  await settle();
  return app;
}

beforeEach(() => {
  vi.resetModules();
  vi.useFakeTimers();
  document.body.innerHTML = body;
  calls = [];
  channel = undefined;
  queue = new FakeQueue();
  handlers = {
    subscribe: (a) => {
      channel = a.onEvent as typeof channel;
    },
    queue_window: (a) => queue.window(a.query as QueueQuery),
    overview: () => ({ activeProfile: "local", destination: "/home/ann/.local/share/hoist/store/hoist-local", local: true }),
    profiles: () => [local],
    profile_template: () => template,
    "plugin:event|listen": () => 1,
  };
  mockWindows("main");
  mockIPC((cmd, args) => {
    calls.push({ cmd, args: (args ?? {}) as Record<string, unknown> });
    const h = handlers[cmd];
    return h ? h((args ?? {}) as Record<string, unknown>) : undefined;
  });
});

afterEach(() => {
  clearMocks();
  vi.useRealTimers();
});

const text = (sel: string) => document.querySelector(sel)?.textContent ?? "";
const rows = () => [...document.querySelectorAll<HTMLElement>("[data-testid=upload-row]")];

describe("the queue", () => {
  it("shows where files land on the embedded default", async () => {
    await start();
    expect(text("#destination")).toBe("/home/ann/.local/share/hoist/store/hoist-local");
    expect(document.querySelector<HTMLSelectElement>("#profile-select")?.value).toBe("local");
  });

  it("queues dropped files and shows each refused one with its reason", async () => {
    handlers.add_paths = () => {
      // The rows come as (coalesced) events; the answer only counts them.
      changed(row());
      return { queued: 1, rejected: [{ path: "/home/ann/empty.txt", reason: "the file is empty" }] };
    };
    const app = await start();
    await app.handlePaths(["/home/ann/a.txt", "/home/ann/empty.txt"]);
    await settle();
    expect(calls.find((c) => c.cmd === "add_paths")?.args).toEqual({
      paths: ["/home/ann/a.txt", "/home/ann/empty.txt"],
    });
    expect(rows()).toHaveLength(1);
    expect(text("[data-testid=rejection]")).toBe("empty.txt: the file is empty");
    expect(text("#status")).toContain("1 not queued");
    // The list of refusals can be closed.
    document.querySelector<HTMLButtonElement>("#rejections button")!.click();
    expect(document.querySelectorAll("#rejections li")).toHaveLength(0);
  });

  // Regression (#31, defect 6): a drop on the Profiles tab ended in "2 uploaded." and never
  // mentioned the two files it refused.
  it("shows a drop's queue and still names the refused files when the batch ends", async () => {
    handlers.add_paths = () => {
      changed(row());
      return { queued: 1, rejected: [{ path: "/home/ann/empty.txt", reason: "the file is empty" }] };
    };
    const app = await start();
    app.showTab("profiles");
    await app.handlePaths(["/home/ann/a.txt", "/home/ann/empty.txt"]);
    await settle();
    expect(document.querySelector<HTMLElement>("#queue-view")?.hidden).toBe(false);
    changed(row({ phase: "done", sent: 100 }));
    channel!.onmessage({ event: "batchFinished", done: 1, failed: 0 });
    await settle();
    expect(text("#status")).toBe("1 uploaded. 1 not queued: see why above the queue.");
  });

  it("follows the manager's events to done and reports the batch", async () => {
    await start();
    changed(row({ phase: "uploading" }));
    await settle();
    channel!.onmessage({ event: "progress", id: 1, sent: 50, total: 100 });
    await settle();
    expect(text("[data-testid=phase]")).toBe("uploading");
    expect(document.querySelector<HTMLProgressElement>(".row progress")?.value).toBe(50);
    expect(text(".row .meta")).toContain("50 B of 100 B");
    changed(row({ phase: "done", sent: 100 }));
    channel!.onmessage({ event: "batchFinished", done: 1, failed: 0 });
    await settle();
    expect(text("[data-testid=phase]")).toBe("done");
    expect(text("#status")).toBe("1 uploaded.");
    expect(document.querySelector<HTMLElement>("#overall")?.hidden).toBe(true);
    expect(document.querySelector<HTMLElement>("[data-testid=verified]")?.hidden).toBe(true);
    // An upload the company's server checked says so.
    changed(row({ phase: "done", sent: 100, verified: true }));
    await settle();
    expect(document.querySelector<HTMLElement>("[data-testid=verified]")?.hidden).toBe(false);
  });

  it("keeps only the rows in view in the page, however many there are", async () => {
    await start();
    changed(...Array.from({ length: 5000 }, (_, i) => row({ id: i + 1, name: `f${i + 1}.txt` })));
    await settle();
    const shown = rows();
    expect(shown.length).toBeGreaterThan(5);
    expect(shown.length).toBeLessThan(40);
    expect(shown[0].getAttribute("aria-setsize")).toBe("5000");
    expect(shown[0].querySelector(".name")!.textContent).toBe("f1.txt");
    const list = document.querySelector<HTMLElement>("#queue")!;
    // The rows out of view are space of their height, so the scroll bar covers all 5,000.
    const spacers = [...list.querySelectorAll<HTMLElement>(".spacer")].map((s) => parseInt(s.style.height || "0"));
    expect(spacers).toHaveLength(2);
    expect(spacers[0] + spacers[1] + shown.length * ROW_HEIGHT).toBe(5000 * ROW_HEIGHT);
    list.scrollTop = 4000 * ROW_HEIGHT;
    list.dispatchEvent(new Event("scroll"));
    await settle();
    const names = rows().map((r) => r.querySelector(".name")!.textContent);
    expect(names).toContain("f4001.txt");
    expect(names).not.toContain("f1.txt");
    expect(rows().length).toBeLessThan(40);
  });

  it("filters the list by what is left to do", async () => {
    await start();
    changed(
      row({ id: 1, name: "a.txt", phase: "done" }),
      row({ id: 2, name: "b.txt", phase: "failed", error: "refused" }),
      row({ id: 3, name: "c.txt", phase: "uploading" }),
      row({ id: 4, name: "d.txt", phase: "cancelled" }),
    );
    await settle();
    const names = () => rows().map((r) => r.querySelector(".name")!.textContent);
    expect(names()).toEqual(["c.txt", "d.txt", "b.txt", "a.txt"]);
    const filter = document.querySelector<HTMLSelectElement>("#queue-filter")!;
    for (const [value, want] of [
      ["failed", ["d.txt", "b.txt"]],
      ["unfinished", ["c.txt"]],
      ["done", ["a.txt"]],
      ["all", ["c.txt", "d.txt", "b.txt", "a.txt"]],
    ] as const) {
      filter.value = value;
      filter.dispatchEvent(new Event("change"));
      await settle();
      expect(names(), value).toEqual(want);
    }
    filter.value = "failed";
    filter.dispatchEvent(new Event("change"));
    await settle();
    expect(text("#queue-count")).toBe("2 of 4 uploads");
  });

  it("keeps a failed upload's reason and retries it by id", async () => {
    await start();
    changed(row({ id: 7, phase: "failed", error: "cannot reach the backend: connection refused" }));
    await settle();
    expect(text("[data-testid=error]")).toBe("cannot reach the backend: connection refused");
    const buttons = [...rows()[0].querySelectorAll("button")].map((b) => b.textContent);
    expect(buttons).toEqual(["Details", "Retry", "Show in folder", "Dismiss"]);
    rows()[0].querySelector<HTMLButtonElement>("[data-action=retry]")!.click();
    await settle();
    expect(calls.find((c) => c.cmd === "retry")?.args).toEqual({ id: 7 });
  });

  // Regression (#31, defect 3): the reason was cut to one line, the rest only on mouse hover,
  // so keyboard and screen-reader users could not read it.
  it("shows a failure's whole reason in a dialog that takes the focus, and copies it for the help desk", async () => {
    await start();
    const reason =
      "cannot reach the store: the name s3.example.net does not resolve (DNS). Check the profile's endpoint, or the network; Hoist tries again by itself once it can reach the store.";
    changed(row({ id: 8, name: "q3.pdf", phase: "failed", error: reason }));
    await settle();
    const written: string[] = [];
    Object.defineProperty(navigator, "clipboard", {
      configurable: true,
      value: { writeText: async (t: string) => void written.push(t) },
    });
    const details = rows()[0].querySelector<HTMLButtonElement>("[data-action=details]")!;
    expect(details.getAttribute("aria-label")).toBe("Details q3.pdf");
    details.click();
    await settle();
    const dialog = document.querySelector<HTMLDialogElement>("#error-details")!;
    expect(dialog.open).toBe(true);
    expect(text("[data-testid=error-details]")).toBe(reason);
    expect(text("#error-details-title")).toBe("q3.pdf did not upload");
    expect(document.activeElement?.id).toBe("error-details-close");
    expect(calls.some((c) => c.cmd === "details")).toBe(false);
    document.querySelector<HTMLButtonElement>("#error-details-copy")!.click();
    await settle();
    expect(written[0]).toContain(`q3.pdf did not upload: ${reason}`);
    expect(written[0]).toContain("Profile: ");
    expect(text("#status")).toContain("copied");
    document.querySelector<HTMLButtonElement>("#error-details-close")!.click();
    expect(dialog.open).toBe(false);
  });

  it("sends the user to Profiles when a secret is missing, saying which from the core's hint", async () => {
    handlers.add_paths = () => {
      throw {
        kind: "missing-secret",
        hint: { hint: "store-secret", profile: "staff", kind: "bearer-token" },
        message: "no bearer-token for profile staff",
      };
    };
    const app = await start();
    await app.handlePaths(["/home/ann/a.txt"]);
    await settle();
    expect(text("#status")).toBe("no bearer-token for profile staff — open Profiles and enter the bearer-token of staff.");
    expect(document.querySelector<HTMLElement>("#profiles-view")?.hidden).toBe(false);
  });

  it("words an error's hint in the window's terms, never a CLI command", async () => {
    handlers.add_paths = () => {
      throw { kind: "remote-permanent", hint: { hint: "check-token" }, message: "the backend refused the token (HTTP 401)" };
    };
    const app = await start();
    await app.handlePaths(["/home/ann/a.txt"]);
    await settle();
    expect(text("#status")).toBe(
      "the backend refused the token (HTTP 401) — open Profiles and enter the token your company gave you.",
    );
    expect(text("#status")).not.toMatch(/hoist /);

    handlers.add_paths = () => {
      throw { kind: "signed-out", hint: { hint: "sign-in" }, message: "nobody is signed in for profile 'staff'" };
    };
    await app.handlePaths(["/home/ann/b.txt"]);
    await settle();
    expect(text("#status")).toBe("Add: nobody is signed in for profile 'staff' — press Sign in at the top of the window.");
  });
});

describe("profiles", () => {
  it("imports a dropped profile file instead of uploading it, and asks for its token", async () => {
    const staff: ProfileEntry = {
      name: "staff",
      active: true,
      builtin: false,
      profile: { mode: "backend", url: "https://u.example/api", protocol: "simple", token: true, prefix: "", key_template: "{name}", concurrency: 4 },
      secrets: [{ kind: "bearer-token", required: true, stored: false }],
    };
    handlers.import_profile = () => ({ ...staff, active: false });
    const asked: string[] = [];
    handlers["plugin:dialog|message"] = (a) => {
      asked.push(String(a.message));
      return "Use it";
    };
    const app = await start();
    await app.handlePaths(["/home/ann/staff.hoist-profile.toml"]);
    await settle();
    expect(calls.some((c) => c.cmd === "add_paths")).toBe(false);
    expect(calls.find((c) => c.cmd === "import_profile")?.args).toEqual({
      path: "/home/ann/staff.hoist-profile.toml",
    });
    // It is used only because the user said so, having seen where it sends files.
    expect(asked[0]).toContain("files go to the backend https://u.example/api");
    expect(calls.find((c) => c.cmd === "set_active")?.args).toEqual({ name: "staff" });
    expect(document.querySelector<HTMLFormElement>("#profile-form")?.hidden).toBe(false);
    expect(text("#profile-form h2")).toBe("Edit staff");
  });

  // Regression (#29, finding 11): the confirmation named the host only, so a proxy, a CA file or
  // a sign-in provider the imported profile carried went unseen.
  it("confirms an imported profile with every setting that decides where bytes and credentials go", async () => {
    handlers.import_profile = () => ({
      name: "corp",
      active: false,
      builtin: false,
      profile: {
        mode: "backend",
        url: "https://uploads.example.com/api/upload",
        protocol: "simple",
        token: false,
        prefix: "",
        key_template: "{name}",
        concurrency: 4,
        sign_in: { issuer: "https://login.evil.example", client_id: "hoist" },
        proxy: "http://mitm.evil.example:8080",
        ca_file: "/tmp/evil-ca.pem",
      },
      secrets: [],
    });
    const asked: string[] = [];
    handlers["plugin:dialog|message"] = (a) => {
      asked.push(String(a.message));
      return "Not now";
    };
    const app = await start();
    await app.handlePaths(["/home/ann/corp.hoist-profile.toml"]);
    await settle();
    for (const seen of [
      "https://uploads.example.com/api/upload",
      "sign in at https://login.evil.example",
      "proxy http://mitm.evil.example:8080",
      "CA in /tmp/evil-ca.pem",
    ]) {
      expect(asked[0]).toContain(seen);
    }
    expect(calls.some((c) => c.cmd === "set_active")).toBe(false);
  });

  // Regression (security review): a dropped profile was imported and made active before the
  // other files of the same drop were queued, so they went to whatever backend it named.
  it("never activates an imported profile by itself, and refuses a drop that mixes", async () => {
    handlers.import_profile = () => ({ ...local, name: "staff", builtin: false, active: false });
    handlers["plugin:dialog|message"] = () => "Not now";
    const app = await start();
    await app.handlePaths(["/home/ann/staff.hoist-profile.toml"]);
    await settle();
    expect(calls.some((c) => c.cmd === "set_active")).toBe(false);
    calls.length = 0;
    await app.handlePaths(["/home/ann/evil.hoist-profile.toml", "/home/ann/payroll.xlsx"]);
    await settle();
    expect(calls.some((c) => c.cmd === "import_profile" || c.cmd === "add_paths")).toBe(false);
    expect(text("#status")).toContain("mixes profile files");
  });

  it("sends a typed secret once, to be stored, and clears the field", async () => {
    handlers.save_profile = (a) => ({ ...local, name: a.name as string, builtin: false, active: false });
    const app = await start();
    app.showTab("profiles");
    app.editProfile();
    const form = document.querySelector<HTMLFormElement>("#profile-form")!;
    const set = (n: string, v: string) => ((form.elements.namedItem(n) as HTMLInputElement).value = v);
    set("name", "admin");
    set("mode", "self-sign");
    set("bucket", "company-uploads");
    set("region", "eu-west-1");
    set("access_key_id", "AKIDEXAMPLE");
    set("secret-access-key", "wJalrXUtnFEMI/K7MDENG");
    form.requestSubmit();
    await settle();
    const save = calls.find((c) => c.cmd === "save_profile")!.args;
    expect(save.name).toBe("admin");
    expect(save.create).toBe(true);
    expect(save.profile).toMatchObject({ mode: "self-sign", bucket: "company-uploads", access_key_id: "AKIDEXAMPLE" });
    expect(save.secrets).toEqual([{ kind: "secret-access-key", value: "wJalrXUtnFEMI/K7MDENG" }]);
    expect(JSON.stringify(save.profile)).not.toContain("wJalrXUtnFEMI");
    expect((form.elements.namedItem("secret-access-key") as HTMLInputElement).value).toBe("");
  });

  // Regression: the form wrote a fixed key template and allow_empty = false, so editing a
  // profile in the app wiped a template (or empty-file permission) set with the CLI.
  // Regression (#31, defect 6): a health report stayed on screen after the profile it judged
  // was edited.
  it("takes down a profile's health report once the profile is saved again", async () => {
    handlers.profiles = () => [local];
    handlers.health_check = () => ({
      profile: "local",
      ok: false,
      checks: [{ name: "can sign", status: "fail", detail: "no such host" }],
    });
    handlers.save_profile = () => local;
    const app = await start();
    app.showTab("profiles");
    await settle();
    document.querySelector<HTMLButtonElement>("[data-name=local] button[data-profile-action=test]")!.click();
    await settle();
    const health = document.querySelector<HTMLElement>("#health")!;
    expect(health.hidden).toBe(false);
    app.editProfile(local);
    document.querySelector<HTMLFormElement>("#profile-form")!.requestSubmit();
    await settle();
    expect(health.hidden).toBe(true);
  });

  // Regression (#31, defect 7): the active profile's row lacked "Use", so its buttons sat one
  // place to the left of the other rows' (Export was clicked instead of Edit).
  it("gives every profile row the same buttons in the same places", async () => {
    const mine = (name: string, active: boolean): ProfileEntry => ({
      name,
      active,
      builtin: false,
      profile: { mode: "backend", url: `https://${name}.example.com/api/upload`, protocol: "simple", token: false, prefix: "", key_template: "{name}", concurrency: 4 },
      secrets: [],
    });
    handlers.profiles = () => [mine("design", true), mine("finance", false)];
    const app = await start();
    app.showTab("profiles");
    await settle();
    const actions = (name: string) =>
      [...document.querySelectorAll<HTMLButtonElement>(`[data-testid=profile][data-name=${name}] .actions button`)].map(
        (b) => b.dataset.profileAction,
      );
    expect(actions("design")).toEqual(actions("finance"));
    const use = document.querySelector<HTMLButtonElement>("[data-name=design] button[data-profile-action=use]")!;
    expect(use.disabled).toBe(true);
    expect(use.textContent).toBe("In use");
  });

  // #30: a profile the organisation manages is shown as such; staff enter its secrets and
  // nothing else, cannot remove it, and learn why when its default cannot be changed.
  it("shows a managed profile as the organisation's: its secrets only, no removal", async () => {
    const company: ProfileEntry = {
      name: "company",
      active: true,
      builtin: false,
      managedBy: "/etc/hoist/profiles.d/company.toml",
      profile: { mode: "backend", url: "https://uploads.example.com/api/upload", protocol: "simple", token: true, prefix: "", key_template: "{name}", concurrency: 4 },
      secrets: [{ kind: "bearer-token", required: true, stored: false }],
    };
    handlers.profiles = () => [{ ...local, active: false }, company];
    handlers.set_active = () => {
      throw { kind: "invalid-input", message: "your organisation made 'company' the default profile, so it cannot be changed here" };
    };
    const app = await start();
    app.showTab("profiles");
    await settle();
    const row = document.querySelector<HTMLElement>("[data-testid=profile][data-name=company]")!;
    expect(row.textContent).toContain("managed by your organisation");
    const actions = [...row.querySelectorAll<HTMLButtonElement>(".actions button")].map((b) => b.dataset.profileAction);
    expect(actions).toEqual(["use", "test", "edit", "export"]);

    row.querySelector<HTMLButtonElement>("button[data-profile-action=edit]")!.click();
    await settle();
    const form = document.querySelector<HTMLFormElement>("#profile-form")!;
    expect(form.textContent).toContain("Managed by your organisation (/etc/hoist/profiles.d/company.toml)");
    const enabled = [...form.querySelectorAll<HTMLInputElement>("input, select")].filter((e) => !e.disabled).map((e) => e.name);
    expect(enabled.sort()).toEqual(["bearer-token", "proxy-password", "secret-access-key", "session-token"]);

    document.querySelector<HTMLButtonElement>("[data-name=local] button[data-profile-action=use]")!.click();
    await settle();
    expect(text("#status")).toBe("Use profile: your organisation made 'company' the default profile, so it cannot be changed here");
  });

  it("keeps the fields it does not show when a profile is edited", async () => {
    const staff: ProfileEntry = {
      name: "staff",
      active: false,
      builtin: false,
      profile: {
        mode: "backend",
        url: "https://uploads.example.com/api/upload",
        protocol: "simple",
        token: false,
        prefix: "",
        key_template: "{date}/{name}",
        allow_empty: true,
        concurrency: 4,
      },
      secrets: [],
    };
    handlers.profiles = () => [local, staff];
    handlers.save_profile = () => staff;
    const app = await start();
    app.showTab("profiles");
    app.editProfile(staff);
    const form = document.querySelector<HTMLFormElement>("#profile-form")!;
    (form.elements.namedItem("concurrency") as HTMLInputElement).value = "2";
    form.requestSubmit();
    await settle();
    const save = calls.find((c) => c.cmd === "save_profile")!.args;
    expect(save.profile).toMatchObject({ key_template: "{date}/{name}", allow_empty: true, concurrency: 2 });
    // A new profile starts from the core's defaults, not from a template written in the UI.
    app.editProfile();
    const created = app.readProfileForm(form).profile;
    expect(created.key_template).toBe(template.defaults.key_template);
    expect(created.prefix).toBe("");
  });

  it("reads sizes with units through the core, keeps the proxy password for the keychain, and refuses a typo", async () => {
    const sizes: Record<string, number> = { "100MB": 100_000_000, "5MB": 5_000_000 };
    handlers.parse_size = (a) => {
      const typed = String(a.text);
      if (typed in sizes) return sizes[typed];
      throw { kind: "invalid-input", hint: null, message: `'${typed}' is not a size such as 100MB or 5GiB` };
    };
    handlers.save_profile = (a) => ({ ...local, name: a.name, builtin: false, profile: a.profile });
    const app = await start();
    app.showTab("profiles");
    app.editProfile();
    const form = document.querySelector<HTMLFormElement>("#profile-form")!;
    const set = (name: string, value: string) => ((form.elements.namedItem(name) as HTMLInputElement).value = value);
    set("name", "corp");
    set("url", "https://uploads.example.com/api/upload");
    set("max_size", "100MB");
    set("limit_rate", "5MB/s");
    set("proxy", "http://alice@proxy.corp:3128");
    set("proxy-password", "pw");
    form.requestSubmit();
    await settle();
    const save = calls.find((c) => c.cmd === "save_profile")!.args;
    expect(save.profile).toMatchObject({ max_size: 100_000_000, limit_rate: 5_000_000, proxy: "http://alice@proxy.corp:3128" });
    expect(save.secrets).toEqual([{ kind: "proxy-password", value: "pw" }]);

    calls.length = 0;
    app.editProfile();
    set("name", "typo");
    set("url", "https://uploads.example.com/api/upload");
    set("max_size", "100 MBs");
    form.requestSubmit();
    await settle();
    expect(calls.some((c) => c.cmd === "save_profile")).toBe(false);
    expect(text("#status")).toContain("'100 MBs' is not a size");
  });

  it("sets the bandwidth limit over all uploads from the queue's toolbar", async () => {
    handlers.set_limit_rate = ({ rate }) => (rate === "2MB" ? 2_000_000 : null);
    await start();
    const limit = document.querySelector<HTMLInputElement>("#limit-rate")!;
    limit.value = "2MB";
    limit.dispatchEvent(new Event("change"));
    await settle();
    expect(calls.find((c) => c.cmd === "set_limit_rate")?.args).toEqual({ rate: "2MB" });
    expect(limit.value).toBe("2MB");
    expect(text("#status")).toContain("at most 2MB per second");
  });

  it("removes a profile only after the native dialog says so", async () => {
    const staff: ProfileEntry = { ...local, name: "staff", builtin: false, active: false };
    handlers.profiles = () => [local, staff];
    let answer = "Keep";
    const asked: Record<string, unknown>[] = [];
    handlers["plugin:dialog|message"] = (a) => {
      asked.push(a);
      return answer;
    };
    const app = await start();
    app.showTab("profiles");
    await settle();
    const remove = () =>
      document.querySelector<HTMLButtonElement>('[data-profile-action="remove"][data-name="staff"]')!.click();
    remove();
    await settle();
    expect(String(asked[0].message)).toContain("Remove profile staff and its keychain secrets?");
    expect(asked[0].kind).toBe("warning");
    expect(calls.some((c) => c.cmd === "remove_profile")).toBe(false);
    answer = "Remove";
    remove();
    await settle();
    expect(calls.find((c) => c.cmd === "remove_profile")?.args).toEqual({ name: "staff" });
  });

  // Regression: a typed bearer token was refused unless "Send a bearer token" was ticked too,
  // and the typed token was wiped with the refusal.
  it("sends a typed bearer token without the box ticked, and keeps typed secrets when saving fails", async () => {
    let refuse = true;
    handlers.save_profile = (a) => {
      if (refuse) throw { kind: "invalid-input", hint: null, message: "the backend URL must be https://" };
      return { ...local, name: a.name as string, builtin: false, active: false };
    };
    const app = await start();
    app.showTab("profiles");
    app.editProfile();
    const form = document.querySelector<HTMLFormElement>("#profile-form")!;
    const set = (n: string, v: string) => ((form.elements.namedItem(n) as HTMLInputElement).value = v);
    set("name", "staff");
    set("url", "http://uploads.example.com/api/upload");
    set("bearer-token", "tok-0123456789abcdef");
    form.requestSubmit();
    await settle();
    expect(calls.find((c) => c.cmd === "save_profile")!.args.profile).toMatchObject({ token: true });
    expect(text("#status")).toContain("must be https://");
    expect((form.elements.namedItem("bearer-token") as HTMLInputElement).value).toBe("tok-0123456789abcdef");
    refuse = false;
    set("url", "https://uploads.example.com/api/upload");
    form.requestSubmit();
    await settle();
    expect((form.elements.namedItem("bearer-token") as HTMLInputElement).value).toBe("");
  });
});

describe("history", () => {
  const entry = (over: Partial<HistoryEntry>): HistoryEntry => ({
    id: 1,
    profile: "local",
    name: "beach.jpg",
    key: "uploads/2026/11/30/6f1c0f8e-1c5e-4a57-9a43-5e8f0d1d2c3b-Photos/2026/beach.jpg",
    size: 1000,
    sha256: "ab".repeat(32),
    etag: null,
    integrity: null,
    url: null,
    finishedAt: "2026-11-30T09:15:00Z",
    verified: false,
    shareable: true,
    ...over,
  });

  /** What the core's paged history answers, over `all` (newest first). */
  const pages =
    (all: HistoryEntry[]) =>
    (a: Record<string, unknown>): HistoryPage => {
      const q = a.query as HistoryQuery;
      const wanted = (q.search ?? "").toLowerCase();
      const found = all.filter((e) => [e.name, e.key, e.profile].some((f) => f.toLowerCase().includes(wanted)));
      const start = q.before ? found.findIndex((e) => e.id === q.before!.id) + 1 : 0;
      const limit = q.limit ?? 200;
      const entries = found.slice(start, start + limit);
      const last = entries[entries.length - 1];
      return {
        entries,
        total: found.length,
        next: entries.length === limit && last ? { finishedAt: last.finishedAt, id: last.id } : null,
      };
    };

  it("shows the newest page and the next on request, and says how many there are", async () => {
    const all = Array.from({ length: 250 }, (_, i) => entry({ id: 1000 - i, name: `f${i}.txt` }));
    handlers.history_page = pages(all);
    const app = await start();
    app.showTab("history");
    await settle();
    const rows = () => document.querySelectorAll("[data-testid=history-row]");
    const more = document.querySelector<HTMLButtonElement>("#history-more")!;
    expect(rows()).toHaveLength(200);
    expect(document.querySelector("#history-count")!.textContent).toBe("Showing 200 of 250 uploads");
    expect(more.hidden).toBe(false);
    more.click();
    await settle();
    expect(rows()).toHaveLength(250);
    expect(rows()[249].children[0].textContent).toBe("f249.txt");
    expect(document.querySelector("#history-count")!.textContent).toBe("250 uploads");
    expect(more.hidden).toBe(true);
  });

  // #31, defect 2: staff profiles were offered a share link that could never work (a company
  // backend signs uploads only).
  it("offers a share link only where Hoist can sign one", async () => {
    handlers.history_page = pages([
      entry({}),
      entry({ id: 2, name: "brief.pdf", key: "uploads/brief.pdf", profile: "staff", shareable: false }),
    ]);
    const app = await start();
    app.showTab("history");
    await settle();
    const rows = [...document.querySelectorAll<HTMLElement>("[data-testid=history-row]")];
    const labels = (r: HTMLElement) => [...r.querySelectorAll("button")].map((b) => b.textContent);
    expect(labels(rows[0])).toContain("Share link");
    expect(labels(rows[1])).not.toContain("Share link");
    expect(labels(rows[1])).toContain("Copy key");
  });

  it("shows local times and whole keys, and finds rows by name, key or profile", async () => {
    handlers.history_page = pages([
      entry({}),
      entry({ id: 2, name: "report.pdf", key: "uploads/report.pdf", profile: "design" }),
    ]);
    const app = await start();
    app.showTab("history");
    await settle();
    const rows = () => [...document.querySelectorAll<HTMLElement>("[data-testid=history-row]")];
    expect(rows()).toHaveLength(2);
    const time = rows()[0].children[4] as HTMLElement;
    expect(time.textContent).toBe(new Date("2026-11-30T09:15:00Z").toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }));
    expect(time.title).toBe("2026-11-30T09:15:00Z");
    expect(rows()[0].children[1].textContent).toBe(entry({}).key);
    const search = document.querySelector<HTMLInputElement>("#history-search")!;
    for (const [typed, names] of [
      ["design", ["report.pdf"]],
      ["PHOTOS/2026", ["beach.jpg"]],
      ["nothing", []],
      ["", ["beach.jpg", "report.pdf"]],
    ] as const) {
      search.value = typed;
      search.dispatchEvent(new Event("input"));
      await settle();
      expect(rows().map((r) => r.children[0].textContent)).toEqual(names);
    }
  });

  it("marks the uploads the company's server verified", async () => {
    handlers.history_page = pages([entry({ verified: true }), entry({ id: 2, name: "old.txt" })]);
    const app = await start();
    app.showTab("history");
    await settle();
    const rows = [...document.querySelectorAll<HTMLElement>("[data-testid=history-row]")];
    expect(rows[0].querySelector("[data-testid=history-verified]")?.textContent).toBe("verified");
    expect((rows[0].children[3] as HTMLElement).title).toContain("checked by the company's server");
    expect(rows[1].querySelector("[data-testid=history-verified]")).toBeNull();
  });

  it("copies a share link that lasts as long as chosen, and says the address alone is not public", async () => {
    handlers.history_page = pages([entry({ id: 7, url: "http://127.0.0.1:9000/hoist-local/uploads/a" })]);
    handlers.share_link = (a) => `http://127.0.0.1:9000/hoist-local/uploads/a?X-Amz-Expires=${a.expiresSecs}`;
    const app = await start();
    app.showTab("history");
    await settle();
    const address = document.querySelector<HTMLButtonElement>("[data-copy^='http']")!;
    expect(address.textContent).toBe("Copy address");
    expect(address.title).toContain("opens only for people with access to the bucket");
    document.querySelector<HTMLSelectElement>("#share-expiry")!.value = "604800";
    document.querySelector<HTMLButtonElement>("[data-share='7']")!.click();
    await settle();
    expect(calls.find((c) => c.cmd === "share_link")?.args).toEqual({ id: 7, expiresSecs: 604800 });
    expect(text("#status")).toMatch(/7 days|X-Amz-Expires=604800/);
  });
});

