// A minimal W3C WebDriver client (fetch only) for driving the real app through tauri-driver,
// plus the helpers the end-to-end tests share: fresh app directories, tauri-driver, polling.
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";
export const ROOT = resolve(import.meta.dirname, "../../..");
export const APP =
  process.env.HOIST_DESKTOP_BIN ??
  join(process.env.CARGO_TARGET_DIR ?? join(ROOT, "target"), "debug", "hoist-desktop");
export const SHOTS = process.env.HOIST_SCREENSHOTS ?? join(ROOT, "artifacts", "screenshots");

/** The processes of the app instance of `home`. */
export function appPids(home) {
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const env = readFileSync(`/proc/${p}/environ`, "utf8").split("\0");
        return env.includes(`HOIST_CONFIG_DIR=${home.env.HOIST_CONFIG_DIR}`) &&
          readFileSync(`/proc/${p}/cmdline`, "utf8").startsWith(APP);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/**
 * Ends the app instance of `home` once its WebDriver session is closed: it should exit with
 * its window, and is stopped after `graceMs` if it has not (seen once: an instance left
 * running made the next test's start hand over to it, through the single-instance plugin).
 */
export async function stopApp(home, graceMs = 10_000) {
  const ours = () => appPids(home);
  const end = Date.now() + graceMs;
  while (ours().length && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
  for (const pid of ours()) {
    console.error(`the app (pid ${pid}) did not exit with its session: stopping it`);
    process.kill(pid, "SIGKILL");
  }
  // A folder of 100,000 files and its store take gigabytes: nothing is left behind unless
  // asked (HOIST_E2E_KEEP=1, to look at a failed run).
  if (!process.env.HOIST_E2E_KEEP) rmSync(home.dir, { recursive: true, force: true });
}

/** Saves the top left 1280×800 of the X screen: what is there beside the app's window too (a
 * dialog of its own, a drag's source). */
export function screenshotScreen(name) {
  mkdirSync(SHOTS, { recursive: true });
  execFileSync("import", ["-window", "root", "-crop", "1280x800+0+0", join(SHOTS, `${name}.png`)]);
}

/** Fresh config, data and keychain service for one app instance. */
export function freshHome(name) {
  const dir = mkdtempSync(join(tmpdir(), `hoist-${name}-`));
  const env = {
    HOIST_CONFIG_DIR: join(dir, "config"),
    HOIST_DATA_DIR: join(dir, "data"),
    // The machine-wide managed profiles: empty unless a test writes one.
    HOIST_MANAGED_DIR: join(dir, "managed"),
    XDG_CONFIG_HOME: join(dir, "xdg-config"),
    XDG_DATA_HOME: join(dir, "xdg-data"),
    XDG_CACHE_HOME: join(dir, "xdg-cache"),
    HOIST_KEYCHAIN_SERVICE: `hoist-e2e-${process.pid}-${name}`,
  };
  for (const d of Object.values(env).filter((v) => v.startsWith(dir))) mkdirSync(d, { recursive: true });
  return { dir, env };
}

export async function until(what, f, timeoutMs = 60_000, everyMs = 200) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      last = await f();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

/** Starts tauri-driver with the app's environment; resolves once it listens. */
export async function startDriver(env, port) {
  const driver = spawn(
    process.env.TAURI_DRIVER ?? "tauri-driver",
    ["--port", String(port), "--native-port", String(port + 1), "--native-driver", "/usr/bin/WebKitWebDriver"],
    { env: { ...process.env, ...env }, stdio: ["ignore", "inherit", "inherit"] },
  );
  await until("tauri-driver", async () => (await fetch(`http://127.0.0.1:${port}/status`)).ok, 20_000);
  return driver;
}

export class Session {
  constructor(base, id) {
    this.base = base;
    this.id = id;
  }

  static async start(port) {
    const base = `http://127.0.0.1:${port}`;
    const r = await call(base, "POST", "/session", {
      capabilities: { alwaysMatch: { browserName: "wry", "tauri:options": { application: APP } } },
    });
    const s = new Session(base, r.sessionId);
    await until("the window to be ready", () => s.execute("return document.body.dataset.ready === '1'"));
    return s;
  }

  cmd(method, path, body) {
    return call(this.base, method, `/session/${this.id}${path}`, body);
  }

  async find(css) {
    const v = await this.cmd("POST", "/element", { using: "css selector", value: css });
    if (!v || !v[ELEMENT]) throw new Error(`no element for ${css}: ${JSON.stringify(v)}`);
    return v[ELEMENT];
  }

  async findAll(css) {
    const v = await this.cmd("POST", "/elements", { using: "css selector", value: css });
    return v.map((e) => e[ELEMENT]);
  }

  async click(css) {
    await this.cmd("POST", `/element/${await this.find(css)}/click`, {});
  }

  async type(css, text) {
    const el = await this.find(css);
    await this.cmd("POST", `/element/${el}/clear`, {});
    await this.cmd("POST", `/element/${el}/value`, { text });
  }

  async text(css) {
    return this.cmd("GET", `/element/${await this.find(css)}/text`);
  }

  execute(script, args = []) {
    return this.cmd("POST", "/execute/sync", { script, args });
  }

  /** Calls a command of the shell, as the UI does. */
  invoke(command, args = {}) {
    return this.executeAsync(
      "window.__TAURI_INTERNALS__.invoke(arguments[0], arguments[1]).then((v) => done({ ok: v }), (e) => done({ err: e }));",
      [command, args],
    );
  }

  /** Saves the app's window as the X server shows it. WebKitWebDriver's own screenshot reads
   * the last GL-composited frame, which Hoist's webview (drawn on the CPU: src-tauri/src/lib.rs)
   * never makes, so it would wait forever. */
  async screenshot(name) {
    mkdirSync(SHOTS, { recursive: true });
    // Two frames: what the test just did is painted.
    await this.executeAsync("requestAnimationFrame(() => requestAnimationFrame(() => done(true)))");
    const windows = execFileSync("xdotool", ["search", "--onlyvisible", "--name", "^Hoist$"], { encoding: "utf8" })
      .trim()
      .split("\n");
    execFileSync("import", ["-window", windows[0], join(SHOTS, `${name}.png`)]);
  }

  /** Runs `script` (with `args` as `arguments`) in the page until it calls `done(value)`;
   * answers the value. */
  executeAsync(script, args = []) {
    return this.cmd("POST", "/execute/async", { script: `const done = arguments[arguments.length - 1]; ${script}`, args });
  }

  async close() {
    await this.cmd("DELETE", "").catch(() => {});
  }
}

async function call(base, method, path, body) {
  const r = await fetch(base + path, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await r.json();
  if (!r.ok) throw new Error(`${method} ${path}: ${JSON.stringify(json.value ?? json)}`);
  return json.value;
}
