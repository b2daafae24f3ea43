// The built UI in Debian's headless Chromium, with the shell replaced by mock-ipc.js: drop,
// watch, history, profiles, keyboard, light and dark screenshots.
import assert from "node:assert/strict";
import { createReadStream, existsSync, mkdirSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";

const DIST = resolve(import.meta.dirname, "../../dist");
const SHOTS = process.env.HOIST_SCREENSHOTS ?? resolve(import.meta.dirname, "../../../artifacts/screenshots");
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".png": "image/png" };

let server;
let browser;
let base;

before(async () => {
  assert.ok(existsSync(join(DIST, "index.html")), "build the UI first: npm run build");
  server = createServer((req, res) => {
    const path = join(DIST, decodeURIComponent(new URL(req.url, "http://x").pathname));
    const file = path.startsWith(DIST) && existsSync(path) && statSync(path).isFile() ? path : join(DIST, "index.html");
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
    createReadStream(file).pipe(res);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${server.address().port}/`;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  server?.close();
});

async function open(colorScheme = "light") {
  const page = await browser.newPage({ viewport: { width: 980, height: 700 }, colorScheme });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.addInitScript({ path: resolve(import.meta.dirname, "mock-ipc.js") });
  await page.goto(base);
  await page.waitForSelector("body[data-ready='1']");
  return { page, errors };
}

test("drop, watch to done, history and a new profile, in light and dark", async () => {
  const { page, errors } = await open();
  assert.equal(await page.textContent("[data-testid=destination]"), "/home/ann/.local/share/hoist/store/hoist-local");
  await page.screenshot({ path: join(SHOTS, "browser-01-empty.png") });

  await page.evaluate(() => window.__drop(["/home/ann/q3-report.pdf", "/home/ann/site-photo.jpg", "/home/ann/empty.txt"]));
  await page.waitForSelector("[data-testid=rejection]");
  assert.match(await page.textContent("[data-testid=rejection]"), /empty\.txt: the file is empty/);
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=upload-row]").length === 2);
  await page.waitForFunction(() => [...document.querySelectorAll("[data-testid=phase]")].every((p) => p.textContent === "done"));
  await page.waitForFunction(() => document.querySelector("#status")?.textContent === "2 uploaded.");
  await page.screenshot({ path: join(SHOTS, "browser-02-queue-done.png") });

  await page.click("#tab-history");
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=history-row]").length === 2);
  await page.screenshot({ path: join(SHOTS, "browser-03-history.png") });

  // Keyboard: arrows move between tabs.
  await page.focus("#tab-history");
  await page.keyboard.press("ArrowRight");
  assert.equal(await page.getAttribute("#tab-profiles", "aria-selected"), "true");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "tab-profiles");

  await page.click("#new-profile");
  await page.fill("#profile-form input[name=name]", "staff");
  await page.fill("#profile-form input[name=url]", "https://uploads.example.com/api/upload");
  await page.check("#profile-form input[name=token]");
  await page.fill("#profile-form input[name=bearer-token]", "s3cr3t-token");
  await page.click("#profile-form button[type=submit]");
  await page.waitForSelector("[data-testid=profile][data-name=staff]");
  const save = await page.evaluate(() => window.__calls.find((c) => c.cmd === "save_profile").args);
  assert.deepEqual(save.secrets, [{ kind: "bearer-token", value: "s3cr3t-token" }]);
  assert.equal(save.profile.token, true);
  await page.click("[data-testid=profile][data-name=local] button[data-profile-action=test]");
  await page.waitForSelector("[data-testid=check]");
  assert.equal((await page.$$("[data-testid=check].pass")).length, 5);
  await page.screenshot({ path: join(SHOTS, "browser-04-profiles.png"), fullPage: true });
  assert.deepEqual(errors, [], "no script errors");
  await page.close();
});

test("dark theme renders the queue readably", async () => {
  const { page, errors } = await open("dark");
  await page.evaluate(() => window.__drop(["/home/ann/q3-report.pdf"]));
  await page.waitForFunction(() => document.querySelector("[data-testid=phase]")?.textContent === "done");
  const [bg, fg] = await page.evaluate(() => {
    const s = getComputedStyle(document.body);
    return [s.backgroundColor, s.color];
  });
  assert.equal(bg, "rgb(17, 19, 24)");
  assert.equal(fg, "rgb(232, 234, 239)");
  await page.screenshot({ path: join(SHOTS, "browser-05-dark.png") });
  assert.deepEqual(errors, []);
  await page.close();
});
