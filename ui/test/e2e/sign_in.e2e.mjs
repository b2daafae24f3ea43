// A company's whole set-up, on 127.0.0.1: its identity provider (the real oidc-provider),
// hoist-server accepting the provider's tokens in front of an embedded store, and the real
// app under Xvfb. Staff make a profile that signs in, press Sign in, sign in on the provider's
// pages in a real browser (headless Chromium, which the app "opened" through $BROWSER), and
// their upload lands under their group's prefix, checked by the server ([verify]) on the way.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";
import { freshHome, ROOT, Session, startDriver, stopApp, until } from "./webdriver.mjs";

const TARGET = process.env.CARGO_TARGET_DIR ?? join(ROOT, "target");
const home = freshHome("sign-in");
const children = [];
let driver;
let s;
let browser;
let issuer;
let backend;

const freePort = () =>
  new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });

function start(cmd, args, opts, ready) {
  const child = spawn(cmd, args, { ...opts, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let out = "";
  return new Promise((resolve, reject) => {
    const seen = (b) => {
      out += b;
      const m = ready(out);
      if (m) resolve(m);
    };
    child.stdout.on("data", seen);
    child.stderr.on("data", seen);
    child.on("exit", (code) => reject(new Error(`${cmd} exited ${code}: ${out}`)));
  });
}

function filesUnder(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)],
  );
}

before(async () => {
  const provider = join(ROOT, "tests/oidc-provider");
  issuer = await start("node", ["serve.mjs"], {
    cwd: provider,
    env: { ...process.env, OIDC_PORT: String(await freePort()) },
  }, (out) => out.match(/ready (\S+)/)?.[1]);

  const config = join(home.dir, "hoist-server.toml");
  writeFileSync(
    config,
    `[oidc]\nissuer = "${issuer}"\naudience = "hoist-server"\n\n[[oidc.policies]]\ngroup = "design"\nprefix = "uploads/design/{sub}/"\n\n[verify]\n`,
  );
  const port = await freePort();
  await start(join(TARGET, "debug", "hoist-server"),
    ["--config", config, "--embedded-store", join(home.dir, "bucket"), "--listen", `127.0.0.1:${port}`],
    { env: { ...process.env, AWS_ACCESS_KEY_ID: "", AWS_SECRET_ACCESS_KEY: "" } },
    (out) => out.includes("hoist-server listening"));
  backend = `http://127.0.0.1:${port}`;

  // The "system browser": records the address the app asks it to open.
  const recorder = join(home.dir, "browser");
  writeFileSync(recorder, `#!/bin/sh\necho "$1" >> "${join(home.dir, "opened.txt")}"\n`);
  chmodSync(recorder, 0o755);

  driver = await startDriver({ ...home.env, BROWSER: recorder }, 4454);
  s = await Session.start(4454);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
});

after(async () => {
  await s?.close();
  driver?.kill();
  await stopApp(home);
  await browser?.close();
  for (const c of children) c.kill();
});

test("staff sign in through the company's provider and their upload lands under their group", async () => {
  await s.click("#tab-profiles");
  await s.click("#new-profile");
  await s.type("#profile-form input[name=name]", "company");
  await s.type("#profile-form input[name=url]", `${backend}/api/upload`);
  await s.type("#profile-form input[name=issuer]", issuer);
  await s.type("#profile-form input[name=client_id]", "hoist");
  await s.click("#profile-form button[type=submit]");
  await until("the saved profile", async () => (await s.findAll("[data-testid=profile][data-name=company]")).length === 1);
  await s.click("[data-profile-action=use][data-name=company]");
  await until("the header asks to sign in", async () => (await s.text("[data-testid=signed-in-as]")) === "Not signed in");

  await s.click("#sign-in-button");
  const opened = join(home.dir, "opened.txt");
  const url = await until("the app to open the sign-in page", () =>
    existsSync(opened) ? readFileSync(opened, "utf8").trim().split("\n").pop() : false,
  );
  assert.ok(url.startsWith(`${issuer}/auth?`), url);
  assert.match(url, /code_challenge_method=S256/);
  assert.match(url, /redirect_uri=http%3A%2F%2F127\.0\.0\.1%3A\d+%2Fcallback/);

  // The user in the browser: the provider's sign-in page, its consent page, and back to Hoist.
  const page = await browser.newPage();
  await page.goto(url);
  await page.fill("input[name=login]", "alice");
  await page.fill("input[name=password]", "any password");
  await page.click("button[type=submit]");
  await page.waitForLoadState();
  if (await page.$("input[name=prompt][value=consent]")) await page.click("button[type=submit]");
  await page.waitForURL(/127\.0\.0\.1:\d+\/callback/);
  assert.match(await page.textContent("body"), /signed in to Hoist/);

  await until("the header names who signed in", async () =>
    (await s.text("[data-testid=signed-in-as]")) === "Signed in as alice@example.com");
  const entry = JSON.parse(
    (await import("node:child_process")).execFileSync("secret-tool", [
      "lookup", "service", home.env.HOIST_KEYCHAIN_SERVICE, "username", "company/sign-in",
    ]).toString(),
  );
  assert.ok(entry.refresh_token, "the refresh token is in the keychain");
  const profilesToml = readFileSync(join(home.env.HOIST_CONFIG_DIR, "profiles.toml"), "utf8");
  assert.ok(!profilesToml.includes(entry.refresh_token), "and in no file");

  const file = join(home.dir, "poster.png");
  writeFileSync(file, Buffer.concat([Buffer.from("\x89PNG\r\n\x1a\n", "binary"), Buffer.alloc(200_000, 3)]));
  await s.click("#tab-queue");
  const added = await s.invoke("add_paths", { paths: [file] });
  assert.equal(added.ok.queued, 1);
  await until("the upload to be done", async () =>
    (await s.execute("return [...document.querySelectorAll('[data-testid=phase]')].map(p => p.textContent)")).join() === "done");
  assert.equal(await s.execute("return document.querySelector('[data-testid=verified]').hidden"), false,
    "the row says the server verified the upload");
  await s.screenshot("09-signed-in-verified-upload");
  const landed = filesUnder(join(home.dir, "bucket")).filter((p) => p.includes("uploads/design/alice/"));
  assert.equal(landed.length, 1, "the file landed under the designer's prefix");
  assert.ok(!landed[0].includes("incoming"), `checked and moved out of incoming/: ${landed[0]}`);
  assert.deepEqual(readFileSync(landed[0]), readFileSync(file));

  await s.click("#sign-out-button");
  await until("signed out", async () => (await s.text("[data-testid=signed-in-as]")) === "Not signed in");
});
