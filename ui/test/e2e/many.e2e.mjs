// A folder of many files dropped on the real app (Tauri + WebKitGTK under Xvfb): it queues and
// uploads them, keeps only the rows in view in the page, and every file lands. HOIST_MANY_FILES sets how many (3,000 in the suite; bench/desktop_many.sh
// runs 100,000 on a release build and keeps the figures).
//
// Responsiveness is measured in the page. WebKit has no Long Tasks API, so a timer due every
// 20 ms records how late it runs: a main-thread task of D ms makes it about D ms late. Where
// the API exists (Chromium) its entries are recorded too. The figures are printed for the
// benchmark; a test asserts no time (a busy machine would fail it).
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { APP, freshHome, Session, startDriver, stopApp, until } from "./webdriver.mjs";

const FILES = Number(process.env.HOIST_MANY_FILES ?? 3000);

const home = freshHome("many");
let driver;
let s;

before(async () => {
  driver = await startDriver(home.env, 4454);
  s = await Session.start(4454);
  // Adding 100,000 files takes longer than WebDriver's default 30 s script timeout.
  await s.cmd("POST", "/timeouts", { script: 30 * 60_000 });
});

after(async () => {
  await s?.close();
  driver?.kill();
  await stopApp(home);
});

function countFiles(dir) {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) n += countFiles(join(dir, e.name));
    else if (!e.name.startsWith(".")) n += 1;
  }
  return n;
}

/** PSS (KiB) of the app and its WebKit processes: the app's, and its descendants'; and each
 * process's, by name. */
function appPss() {
  const parent = new Map();
  const names = new Map();
  for (const p of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      parent.set(Number(p), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
      names.set(Number(p), readFileSync(`/proc/${p}/cmdline`, "utf8"));
    } catch {}
  }
  const ours = [...names].filter(([, cmd]) => cmd.startsWith(APP)).map(([pid]) => pid);
  const family = new Set(ours);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of parent) if (family.has(ppid) && !family.has(pid)) family.add(pid), (grew = true);
  }
  let kib = 0;
  const each = {};
  for (const pid of family) {
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
      if (m) {
        kib += Number(m[1]);
        const name = (names.get(pid) ?? "").split("\0")[0].split("/").pop();
        each[name] = (each[name] ?? 0) + Number(m[1]);
      }
    } catch {}
  }
  return { kib, each };
}

test(`a folder of ${FILES} files queues and uploads, its longest main-thread task measured`, async () => {
  const folder = join(home.dir, "src", "Survey");
  for (let i = 0; i < FILES; i++) {
    const dir = join(folder, `d${String(Math.floor(i / 1000)).padStart(3, "0")}`);
    if (i % 1000 === 0) mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `f${String(i).padStart(6, "0")}.txt`), `file ${i}\n`);
  }
  await s.execute(`
    window.__lags = [];
    window.__longTasks = [];
    if (PerformanceObserver.supportedEntryTypes?.includes("longtask")) {
      new PerformanceObserver((l) => l.getEntries().forEach((e) => window.__longTasks.push(e.duration)))
        .observe({ type: "longtask" });
    }
    const t0 = performance.now();
    let last = t0;
    window.__lagTimer = setInterval(() => {
      const now = performance.now();
      const late = now - last - 20;
      if (late > 50) window.__lags.push([Math.round(late), Math.round((now - t0) / 100) / 10]);
      last = now;
    }, 20);
  `);
  let peak = appPss();
  const sample = () => {
    const now = appPss();
    if (now.kib > peak.kib) peak = now;
  };
  const sampler = setInterval(sample, 1000);
  const started = Date.now();
  const added = await s.invoke("add_paths", { paths: [folder] });
  assert.equal(added.ok?.queued, FILES, JSON.stringify(added).slice(0, 300));
  const queuedAfter = (Date.now() - started) / 1000;

  // While it uploads: the page holds a screenful of rows, and scrolling shows others.
  const inPage = await s.execute("return document.querySelectorAll('[data-testid=upload-row]').length");
  assert.ok(inPage > 0 && inPage < 60, `${inPage} rows in the page`);
  const setSize = await s.execute("return document.querySelector('[data-testid=upload-row]')?.getAttribute('aria-setsize')");
  assert.ok(Number(setSize) > 0, "the rows say how long the list is");
  await s.execute("const q = document.querySelector('#queue'); q.scrollTop = q.scrollHeight / 2; q.dispatchEvent(new Event('scroll'));");

  const dest = await s.text("[data-testid=destination]");
  await until(
    "every file landed and the queue at rest",
    async () =>
      countFiles(dest) === FILES && (await s.execute("return document.querySelector('#overall').hidden === true")),
    30 * 60_000,
    1000,
  );
  const status = await s.text("#status");
  const took = (Date.now() - started) / 1000;
  clearInterval(sampler);
  sample();
  await s.screenshot("10-many-done");
  const { lags, longTasks } = await s.execute("clearInterval(window.__lagTimer); return { lags: window.__lags, longTasks: window.__longTasks };");
  const worst = Math.max(0, ...lags.map(([ms]) => ms), ...longTasks);
  const worstFive = [...lags].sort((a, b) => b[0] - a[0]).slice(0, 5);
  const landed = countFiles(dest);
  const summary = {
    files: FILES,
    queuedSeconds: Number(queuedAfter.toFixed(1)),
    doneSeconds: Number(took.toFixed(1)),
    worstTaskMs: Math.round(worst),
    tasksOver50Ms: lags.length + longTasks.length,
    worstTasks: worstFive.map(([ms, at]) => `${ms} ms at ${at} s`),
    peakPssMib: Math.round(peak.kib / 1024),
    peakByProcessMib: Object.fromEntries(Object.entries(peak.each).map(([n, k]) => [n, Math.round(k / 1024)])),
    status,
    landed,
  };
  console.log(`many-files: ${JSON.stringify(summary)}`);
  writeFileSync(join(home.dir, "summary.json"), JSON.stringify(summary));
  assert.equal(landed, FILES, "every file landed in the embedded store");
  // The longest main-thread task is measured and printed above, not asserted: a time budget
  // is a benchmark's (bench/desktop_many.sh reads this line), and any budget fails a test on a
  // busy machine (issue #28: it failed a newcomer's suite at 212 and 349 ms).
  assert.match(status, /uploaded/, "the status line reports the batch");
});
