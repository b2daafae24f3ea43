// A real drag and drop under Xvfb: a small GTK window offers a file, xdotool drags it onto
// Hoist's window, and the file must be queued and land intact in the embedded store.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { APP, freshHome, screenshotScreen, until } from "./webdriver.mjs";

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const xdotool = (...args) => execFileSync("xdotool", args.map(String)).toString().trim();

function filesUnder(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)],
  );
}

const children = [];

/** Whether a process runs `binary`. */
function running(binary) {
  try {
    execFileSync("pgrep", ["-f", binary], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
after(() => children.forEach((c) => c.kill()));

test("a file dragged onto the window is queued and uploaded", async () => {
  const home = freshHome("drag");
  const file = join(home.dir, "dragged photo.bin");
  const content = Buffer.alloc(200_000, 42);
  writeFileSync(file, content);

  // The single-instance plugin hands a start to a running Hoist (on this D-Bus session): the
  // app the WebDriver test drove must be gone first, or this one forwards to it and exits.
  await until("the previous app to exit", () => !running(APP), 30_000);
  const app = spawn(APP, [], { env: { ...process.env, ...home.env }, stdio: "inherit" });
  children.push(app);
  const bucket = join(home.env.HOIST_DATA_DIR, "store", "hoist-local");
  // The window shows where files land once the embedded store runs.
  await until("the app's embedded store", () => existsSync(bucket), 60_000);
  const hoistWin = await until("Hoist's window", () => xdotool("search", "--onlyvisible", "--name", "^Hoist$").split("\n")[0]);
  await sleep(1500);

  const source = spawn("/usr/bin/python3", [join(import.meta.dirname, "drag_source.py"), file, 1040, 40], {
    stdio: "inherit",
  });
  children.push(source);
  await until("the drag source window", () => xdotool("search", "--onlyvisible", "--name", "hoist-drag-source"));
  await sleep(800);

  const geometry = xdotool("getwindowgeometry", "--shell", hoistWin);
  const g = Object.fromEntries(geometry.split("\n").map((l) => l.split("=")));
  const target = { x: Number(g.X) + 400, y: Number(g.Y) + 300 };
  xdotool("mousemove", 1140, 100);
  await sleep(200);
  xdotool("mousedown", 1);
  const from = { x: 1140, y: 100 };
  for (let i = 1; i <= 30; i++) {
    const x = Math.round(from.x + ((target.x - from.x) * i) / 30);
    const y = Math.round(from.y + ((target.y - from.y) * i) / 30);
    xdotool("mousemove", x, y);
    await sleep(40);
  }
  await sleep(500);
  if (process.env.DRAG_DEBUG) execFileSync("import", ["-window", "root", "/tmp/mid-drag.png"]);
  xdotool("mouseup", 1);

  const landed = await until(
    "the dragged file in the store",
    () => filesUnder(bucket).find((p) => p.endsWith("-dragged_photo.bin")),
    60_000,
  );
  assert.equal(sha256(readFileSync(landed)), sha256(content), "the dragged file landed intact");
  await sleep(500);
  screenshotScreen("06-after-drag-and-drop");

  // A second launch hands over to the first (which it focuses) and exits.
  const second = spawn(APP, [], { env: { ...process.env, ...home.env }, stdio: "inherit" });
  children.push(second);
  const code = await Promise.race([
    new Promise((r) => second.on("exit", r)),
    sleep(30_000).then(() => "still running after 30 s"),
  ]);
  assert.equal(code, 0);
  assert.equal(app.exitCode, null, "the first instance still runs");
  assert.equal(xdotool("search", "--onlyvisible", "--name", "^Hoist$").split("\n").length, 1);

  // Issue #27: `hoist-desktop a.txt Photos/` (a file manager's Open with Hoist, Send to, a
  // script) while the app runs queues both in that app, the folder's structure kept.
  const lone = join(home.dir, "a.txt");
  writeFileSync(lone, "handed over\n");
  const beach = join(home.dir, "Photos", "2026", "beach.jpg");
  mkdirSync(join(home.dir, "Photos", "2026"), { recursive: true });
  const beachBytes = Buffer.alloc(70_000, 7);
  writeFileSync(beach, beachBytes);
  const handing = spawn(APP, ["a.txt", join(home.dir, "Photos")], {
    cwd: home.dir,
    env: { ...process.env, ...home.env },
    stdio: "inherit",
  });
  children.push(handing);
  const handed = await Promise.race([
    new Promise((r) => handing.on("exit", r)),
    sleep(30_000).then(() => "still running after 30 s"),
  ]);
  assert.equal(handed, 0, "the launch with files hands them over and exits");
  assert.equal(app.exitCode, null, "the first instance still runs");
  const landedLone = await until(
    "a.txt in the store",
    () => filesUnder(bucket).find((p) => p.endsWith("-a.txt")),
    60_000,
  );
  assert.equal(readFileSync(landedLone, "utf8"), "handed over\n");
  const landedBeach = await until(
    "Photos/2026/beach.jpg in the store",
    () => filesUnder(bucket).find((p) => p.endsWith("-Photos/2026/beach.jpg")),
    60_000,
  );
  assert.equal(sha256(readFileSync(landedBeach)), sha256(beachBytes), "the folder's file landed intact");
});
