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
  await page.waitForFunction(() => document.querySelector("#status")?.textContent === "2 uploaded. 1 not queued: see why above the queue.");
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

/** WCAG contrast ratio of two "rgb(r, g, b)" colours. */
function contrast(a, b) {
  const lum = (c) => {
    const [r, g, bl] = c.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number).map((v) => {
      const s = v / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

/** In the open tab: controls shown but cut off or outside the window, and the text of each
 * element with its colour and the background it is drawn on. */
function audit(page) {
  return page.evaluate(() => {
    const view = document.querySelector("[role=tabpanel]:not([hidden])");
    const shown = (e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden";
    const background = (e) => {
      for (let n = e; n; n = n.parentElement) {
        const c = getComputedStyle(n).backgroundColor;
        if (c !== "rgba(0, 0, 0, 0)" && c !== "transparent") return c;
      }
      return getComputedStyle(document.documentElement).backgroundColor;
    };
    const controls = [...document.querySelectorAll("header button, [role=tab], #status, " +
      "[role=tabpanel]:not([hidden]) :is(button, input, select, a[href])")].filter(shown);
    const outside = controls
      .filter((e) => { const r = e.getBoundingClientRect(); return r.left < 0 || r.right > innerWidth + 0.5 || r.width < 8; })
      .map((e) => e.outerHTML.slice(0, 80));
    const texts = [...view.querySelectorAll("*"), ...document.querySelectorAll("header *")]
      .filter((e) => shown(e) && [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim()))
      .map((e) => ({ what: e.outerHTML.slice(0, 60), color: getComputedStyle(e).color, bg: background(e) }));
    return { outside, texts, overflowX: document.documentElement.scrollWidth - innerWidth };
  });
}

/** Everything Tab reaches, in order, until it comes round again (at most `limit` presses). */
async function tabOrder(page, limit = 120) {
  const seen = [];
  await page.evaluate(() => document.activeElement?.blur());
  for (let i = 0; i < limit; i++) {
    await page.keyboard.press("Tab");
    const id = await page.evaluate(() => {
      const e = document.activeElement;
      if (!e || e === document.body) return null;
      e.dataset.tabbed = "1";
      return e.id || e.getAttribute("aria-label") || e.textContent.trim().slice(0, 30);
    });
    if (id !== null && seen.includes(id) && seen[0] === id) break;
    if (id !== null) seen.push(id);
  }
  return seen;
}

// #31: a failure's whole reason is one keypress away, and assistive technology reads it: the
// Details dialog, opened from the keyboard, as Chromium's accessibility tree exposes it.
test("a failure's reason opens from the keyboard and reads whole in the accessibility tree", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.addInitScript({ path: resolve(import.meta.dirname, "mock-ipc.js") });
  await page.goto(base);
  await page.waitForSelector("body[data-ready='1']");
  await page.evaluate(() => window.__drop(["/home/ann/unreachable-notes.txt"]));
  const details = page.locator("[data-testid=upload-row] button[data-action=details]");
  await details.waitFor();
  await details.focus();
  await page.keyboard.press("Enter");
  const dialog = page.getByRole("dialog", { name: "unreachable-notes.txt did not upload" });
  await dialog.waitFor();
  const tree = await dialog.ariaSnapshot();
  assert.match(tree, /cannot reach the backend/, tree);
  assert.match(tree, /Hoist tries again by itself when the network is back/, tree);
  assert.match(tree, /button "Copy details"/, tree);
  assert.equal(await page.evaluate(() => document.activeElement.id), "error-details-close");
  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "hidden" });
  assert.equal(
    await page.evaluate(() => document.activeElement.dataset.action),
    "details",
    "the focus goes back to the row's Details button",
  );
  await page.close();
});

for (const [width, height] of [[800, 600], [1920, 1080]]) {
  for (const scheme of ["light", "dark"]) {
    test(`at ${width}×${height} in ${scheme}: every control is on screen, readable and reachable by Tab`, async () => {
      const page = await browser.newPage({ viewport: { width, height }, colorScheme: scheme });
      const errors = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.addInitScript({ path: resolve(import.meta.dirname, "mock-ipc.js") });
      await page.goto(base);
      await page.waitForSelector("body[data-ready='1']");
      await page.evaluate(() => window.__drop(["/home/ann/q3-report.pdf", "/home/ann/site-photo.jpg", "/home/ann/empty.txt"]));
      // The batch's end refreshes the history: wait for it, or the rows tabbed through would
      // be replaced midway.
      await page.waitForFunction(() => document.querySelector("#status")?.textContent === "2 uploaded. 1 not queued: see why above the queue.");
      for (const tab of ["queue", "history", "profiles"]) {
        await page.click(`#tab-${tab}`);
        if (tab === "history") {
          await page.waitForFunction(() => document.querySelectorAll("[data-testid=history-row]").length === 2);
        }
        if (tab === "profiles") await page.click("#new-profile");
        const { outside, texts, overflowX } = await audit(page);
        assert.equal(overflowX, 0, `${tab}: nothing runs off the window's side`);
        assert.deepEqual(outside, [], `${tab}: every control is inside the window`);
        const poor = texts.filter((t) => contrast(t.color, t.bg) < 4.5);
        assert.deepEqual(poor, [], `${tab}: every text has a contrast of 4.5:1 or more (WCAG AA)`);
        // Tab reaches every control shown (tabs themselves by arrows: one tab stop for the list).
        await tabOrder(page);
        const missed = await page.evaluate(() =>
          [...document.querySelectorAll("header button, [role=tabpanel]:not([hidden]) :is(button, input, select, a[href])")]
            .filter((e) => e.getClientRects().length > 0 && !e.disabled && e.dataset.tabbed !== "1")
            .map((e) => e.outerHTML.slice(0, 80)),
        );
        assert.deepEqual(missed, [], `${tab}: Tab reaches every control`);
        await page.evaluate(() => document.querySelectorAll("[data-tabbed]").forEach((e) => delete e.dataset.tabbed));
        await page.screenshot({ path: join(SHOTS, `browser-${width}x${height}-${scheme}-${tab}.png`) });
      }
      assert.deepEqual(errors, []);
      await page.close();
    });
  }
}
