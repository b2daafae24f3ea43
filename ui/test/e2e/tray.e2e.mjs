// The tray, driven as a desktop's panel drives it: its menu is the app's own D-Bus menu
// (com.canonical.dbusmenu, exported by the Ayatana indicator), clicked over the session bus.
// Closing the window (a WM_DELETE_WINDOW, as a window manager sends it) keeps the app and its
// uploads running; "Show Hoist" brings the window back; the menu's first line follows the
// batch; "Start at login" writes and removes the autostart entry; "Quit Hoist" asks while
// uploads run (closing the question keeps them) and quits at once when none do.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { appPids, freshHome, ROOT, screenshotScreen, Session, startDriver, stopApp, until } from "./webdriver.mjs";

const home = freshHome("tray");
let driver;
let s;
// Notifications the app asks the desktop for, as the notification service receives them.
let monitor;
let busLog = "";
const trayNotices = () => busLog.split("still running in the tray").length - 1;

before(async () => {
  monitor = spawn("dbus-monitor", ["--session", "type='method_call',interface='org.freedesktop.Notifications',member='Notify'"]);
  monitor.stdout.on("data", (d) => (busLog += d));
  // A fresh home for the app, so nothing of the user's own is touched.
  mkdirSync(join(home.dir, "home"), { recursive: true });
  driver = await startDriver({ ...home.env, HOME: join(home.dir, "home") }, 4464);
  s = await Session.start(4464);
});

after(async () => {
  monitor?.kill();
  await s?.close();
  driver?.kill();
  await stopApp(home);
});

const busctl = (...args) => execFileSync("busctl", ["--user", ...args], { encoding: "utf8" });

/** The app's tray menu on the session bus: its connection's name and the menu's path. */
function findMenu() {
  const pids = new Set(appPids(home));
  for (const peer of JSON.parse(busctl("list", "--json=short"))) {
    if (!peer.name.startsWith(":") || !pids.has(peer.pid)) continue;
    let tree = "";
    try {
      tree = busctl("--timeout=3", "tree", "--list", peer.name); // the app's other connections export nothing
    } catch {
      continue;
    }
    const path = tree.split("\n").find((p) => p.startsWith("/org/ayatana/NotificationItem/") && p.endsWith("/Menu"));
    if (path) return { name: peer.name, path };
  }
  return null;
}

/** The menu's items as {id, label, enabled}. */
function items(menu) {
  const out = JSON.parse(
    busctl("--json=short", "call", "--", menu.name, menu.path, "com.canonical.dbusmenu", "GetLayout", "iias", "0", "-1", "0"),
  );
  const [, [, , children]] = out.data;
  return children
    .map((c) => c.data)
    .map(([id, props]) => ({ id, label: props.label?.data, enabled: props.enabled?.data !== false }))
    .filter((i) => i.label);
}

function click(menu, label) {
  const item = items(menu).find((i) => i.label === label);
  assert.ok(item, `the tray menu has "${label}": ${JSON.stringify(items(menu))}`);
  busctl("call", menu.name, menu.path, "com.canonical.dbusmenu", "Event", "isvu", String(item.id), "clicked", "s", "", "0");
}

const visible = (title) => {
  try {
    return execFileSync("xdotool", ["search", "--onlyvisible", "--name", `^${title}$`], { encoding: "utf8" }).trim() !== "";
  } catch {
    return false; // xdotool exits 1 when nothing matches
  }
};

const closeWindow = (title) =>
  Number(execFileSync("/usr/bin/python3", [join(ROOT, "ui/test/e2e/close_window.py"), title], { encoding: "utf8" }));

test("closing keeps uploads running in the tray; quitting asks while they run", async () => {
  const menu = await until("the tray menu on the session bus", findMenu, 20_000);
  const status = () => items(menu)[0];
  assert.equal(status().label, "No uploads running");
  assert.equal(status().enabled, false, "the progress line is not a button");

  // A slow upload: 16 MiB at 256 KiB/s (a minute) runs long enough to close, come back and
  // ask, however slow the machine.
  const file = join(home.dir, "slow.bin");
  writeFileSync(file, Buffer.alloc(16 << 20, 3));
  assert.ok("ok" in (await s.invoke("set_limit_rate", { rate: "256KiB" })));
  const added = await s.invoke("add_paths", { paths: [file] });
  assert.ok("ok" in added, JSON.stringify(added));
  await until("the tray to show the upload", () => status().label === "Uploading: 0 of 1 file done", 10_000);

  // Closing the window hides it; the app and its upload go on.
  assert.ok(visible("Hoist"), "the window is shown at first");
  assert.equal(closeWindow("Hoist"), 1, "one window was asked to close");
  await until("the window to hide", () => !visible("Hoist"), 10_000);
  await new Promise((r) => setTimeout(r, 1000));
  assert.ok(appPids(home).length > 0, "the app still runs with its window closed");
  const phase = await s.execute(
    "return document.querySelector('[data-testid=upload-row] [data-testid=phase]').textContent",
  );
  assert.match(phase, /queued|signing|uploading/, "the upload goes on while the window is closed");

  click(menu, "Show Hoist");
  await until("the window to come back", () => visible("Hoist"), 10_000);

  // The first close says where the app went (#31: nothing did); a later one says nothing more.
  await until("the tray notice", () => trayNotices() === 1, 10_000);
  assert.equal(closeWindow("Hoist"), 1, "the window was asked to close again");
  await until("the window to hide again", () => !visible("Hoist"), 10_000);
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(trayNotices(), 1, "the notice comes once");
  click(menu, "Show Hoist");
  await until("the window to come back again", () => visible("Hoist"), 10_000);

  // Quitting mid-upload asks; closing the question (as "Keep uploading") keeps the app and
  // the upload.
  click(menu, "Quit Hoist");
  await until("the question", () => visible("Quit Hoist\\?"), 10_000);
  // The whole screen (the question is a window of its own, beside the webview's).
  screenshotScreen("07-quit-asks-while-uploading");
  assert.equal(closeWindow("Quit Hoist?"), 1, "the question was closed");
  await until("the question to go", () => !visible("Quit Hoist\\?"), 10_000);
  assert.ok(appPids(home).length > 0, "Keep uploading keeps the app");
  assert.equal(status().label, "Uploading: 0 of 1 file done");

  // Start at login: an autostart entry that starts Hoist in the tray; unticked, it is gone.
  // $XDG_CONFIG_HOME/autostart, as the XDG autostart specification says.
  const autostart = join(home.env.XDG_CONFIG_HOME, "autostart");
  assert.equal(items(menu).find((i) => i.label === "Start at login")?.enabled, true);
  click(menu, "Start at login");
  const entry = await until("the autostart entry", () => {
    const files = existsSync(autostart) ? readdirSync(autostart) : [];
    return files.length === 1 ? readFileSync(join(autostart, files[0]), "utf8") : false;
  }, 10_000);
  assert.match(entry, /^Exec=("?)\/.*hoist-desktop\1 --hidden$/m, entry);
  const mode = statSync(join(autostart, readdirSync(autostart)[0])).mode & 0o777;
  assert.equal(mode, 0o644, "readable by all, written by its owner only");
  click(menu, "Start at login");
  await until("the autostart entry to go", () => readdirSync(autostart).length === 0, 10_000);

  // Pause all from the tray: nothing runs, so quitting does not ask.
  click(menu, "Pause all");
  await until("the upload to pause", () => status().label === "No uploads running", 10_000);
  const paused = await s.execute(
    "return document.querySelector('[data-testid=upload-row] [data-testid=phase]').textContent",
  );
  assert.equal(paused, "paused");
  click(menu, "Quit Hoist");
  await until("the app to quit", () => appPids(home).length === 0, 10_000);
  assert.ok(!visible("Quit Hoist\\?"), "an idle app quits without asking");
});
