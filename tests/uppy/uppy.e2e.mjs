// The company's web app: the real Uppy (5 and 6, pinned in v5/ and v6/, bundled here with
// esbuild, nothing fetched) in Debian's headless Chromium with normal web security, on a page
// served from another origin than hoist-server, uploading through hoist-server straight into
// its embedded store. Every landed object is checked by SHA-256 against what the browser sent.
// The page of Uppy 6 also signs its user in with the company's OpenID provider
// (tests/oidc-provider) — the authorization code flow with PKCE — and uploads with that token.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { createServer as createTcpServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { build } from "esbuild";
import { chromium } from "playwright-core";

const HERE = import.meta.dirname;
const ROOT = resolve(HERE, "../..");
const TARGET = process.env.CARGO_TARGET_DIR ?? join(ROOT, "target");
const SERVER_BIN = process.env.HOIST_SERVER_BIN ?? join(TARGET, "debug/hoist-server");
const MiB = 1024 * 1024;
const VERSIONS = [5, 6];
// Staff tokens (hoist-server keeps their SHA-256 only): one without a size limit, one with.
const WEB_TOKEN = "web-app-token-0123456789abcdef0123456789";
const SMALL_TOKEN = "small-token-0123456789abcdef0123456789ab";
const SMALL_LIMIT = MiB;

let tmp;
let www;
let server;
let page;
let browser;
const hoist = {};

const sha256 = (data) => createHash("sha256").update(data).digest("hex");

/// Serves the test page and its bundles: the company's web app, on its own origin.
function servePage(dir) {
  return new Promise((ready) => {
    const s = createServer((req, res) => {
      const name = new URL(req.url, "http://x").pathname.slice(1) || "index.html";
      const file = join(dir, name);
      if (!file.startsWith(dir) || !statSync(file, { throwIfNoEntry: false })?.isFile()) {
        res.writeHead(404).end();
        return;
      }
      const type = name.endsWith(".js") ? "text/javascript" : "text/html";
      res.writeHead(200, { "content-type": type }).end(readFileSync(file));
    });
    s.listen(0, "127.0.0.1", () => ready(s));
  });
}

function freePort() {
  return new Promise((ready) => {
    const s = createTcpServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ready(port));
    });
  });
}

/// Starts the company's OpenID provider (tests/oidc-provider) with the web app registered as a
/// browser client whose page is `redirect`; resolves with its issuer.
function startProvider(redirect) {
  return freePort().then((port) => new Promise((ready, fail) => {
    const child = spawn("node", ["serve.mjs"], {
      cwd: join(ROOT, "tests/oidc-provider"),
      env: { ...process.env, OIDC_PORT: String(port), OIDC_WEB_REDIRECT: redirect },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    const seen = (chunk) => {
      out += chunk;
      const m = out.match(/ready (\S+)\n/);
      if (m) ready({ issuer: m[1], provider: child });
    };
    child.stdout.on("data", seen);
    child.stderr.on("data", seen);
    child.on("exit", (code) => fail(new Error(`the OpenID provider exited (${code}): ${out}`)));
  }));
}

/// Starts hoist-server with its embedded store; resolves once it listens, with its address
/// and the store's directory.
function startHoistServer(config) {
  return new Promise((ready, fail) => {
    const child = spawn(SERVER_BIN, ["--config", config, "--embedded-store", join(tmp, "store")], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let log = "";
    const found = {};
    child.stderr.on("data", (chunk) => {
      log += chunk;
      // Whole lines only: a chunk may end mid-address.
      const store = log.match(/embedded store at (\S+) \(bucket (\S+), files under (.+)\)\n/);
      const api = log.match(/listening on (http:\/\/\S+) /);
      if (store && api && !found.api) {
        Object.assign(found, { api: api[1], storeUrl: store[1], bucketDir: store[3].trim(), child });
        ready(found);
      }
    });
    child.on("exit", (code) => fail(new Error(`hoist-server exited (${code}): ${log}`)));
    child.on("error", (e) => fail(new Error(`cannot start ${SERVER_BIN} (build it: cargo build --workspace): ${e}`)));
  });
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), "hoist-uppy-"));
  www = join(tmp, "www");
  for (const v of VERSIONS) {
    await build({
      entryPoints: [join(HERE, `v${v}/app.js`)],
      bundle: true,
      format: "iife",
      outfile: join(www, `uppy${v}.js`),
      logLevel: "error",
    });
    writeFileSync(
      join(www, `v${v}.html`),
      `<!doctype html><meta charset="utf-8"><title>Company web app (Uppy ${v})</title><script src="/uppy${v}.js"></script>`,
    );
  }
  server = await servePage(www);
  // `localhost` (a secure context, for WebCrypto) on one port; hoist-server on 127.0.0.1 on
  // another: two origins, and the browser enforces CORS between them.
  hoist.origin = `http://localhost:${server.address().port}`;
  Object.assign(hoist, await startProvider(`${hoist.origin}/v6.html`));
  const config = join(tmp, "hoist-server.toml");
  writeFileSync(
    config,
    `listen = "127.0.0.1:0"
audit_log = "${join(tmp, "audit.jsonl")}"

[policy]
key_template = "{uuid}-{name}"

[[tokens]]
id = "web"
sha256 = "${sha256(WEB_TOKEN)}"
prefix = "web/"

[[tokens]]
id = "small"
sha256 = "${sha256(SMALL_TOKEN)}"
prefix = "small/"
max_size = ${SMALL_LIMIT}

[cors]
allowed_origins = ["${hoist.origin}"]

# Staff signed in with the company's provider upload under their own prefix.
[oidc]
issuer = "${hoist.issuer}"
audience = "hoist-server"

[[oidc.policies]]
prefix = "staff/{sub}/"
`,
  );
  Object.assign(hoist, await startHoistServer(config));
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  server?.close();
  hoist.child?.kill("SIGTERM");
  hoist.provider?.kill("SIGTERM");
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/// Every object in the store, by key.
function stored() {
  const out = new Map();
  const walk = (dir, prefix) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.name.startsWith(".")) continue;
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path, `${prefix}${e.name}/`);
      else out.set(`${prefix}${e.name}`, sha256(readFileSync(path)));
    }
  };
  walk(hoist.bucketDir, "");
  return out;
}

/// Parts of unfinished multipart uploads in the store (s3s-fs keeps them beside the bucket).
function pendingParts() {
  return readdirSync(join(tmp, "store")).filter((name) => name.startsWith(".upload"));
}

/// Asserts each uploaded file landed once, under its token's prefix, byte for byte.
function assertLanded(files, prefix) {
  const objects = stored();
  for (const f of files) {
    assert.equal(f.error, null, `${f.name}: ${f.error}`);
    assert.ok(f.key?.startsWith(prefix) && f.key.endsWith(`-${f.name}`), `${f.name} at ${f.key}`);
    assert.equal(objects.get(f.key), f.sha256, `${f.key}: the bytes in the store are not the bytes sent`);
  }
}

async function openPage(version) {
  const p = await browser.newPage();
  const errors = [];
  p.on("pageerror", (e) => errors.push(e.message));
  if (process.env.HOIST_DEBUG) p.on("console", (m) => console.error(`[page] ${m.text()}`));
  // Presigned URLs are redacted wherever they are logged, test runs included.
  const redact = (url) => url.replace(/(X-Amz-(?:Signature|Credential|Security-Token)=)[^&]*/gi, "$1[redacted]");
  if (process.env.HOIST_DEBUG) p.on("requestfailed", (r) => console.error(`[failed] ${r.method()} ${redact(r.url())} ${r.failure()?.errorText}`));
  if (process.env.HOIST_DEBUG) p.on("response", (r) => console.error(`[response] ${r.request().method()} ${redact(r.url()).slice(0, 160)} ${r.status()}`));
  const s3Puts = [];
  p.on("response", (r) => {
    const url = new URL(r.url());
    if (r.request().method() === "PUT" && url.searchParams.has("partNumber")) {
      s3Puts.push({ part: Number(url.searchParams.get("partNumber")), status: r.status(), at: Date.now() });
    }
  });
  await p.goto(`${hoist.origin}/v${version}.html`);
  await p.waitForFunction(() => window.hoistUppy);
  return { page: p, errors, s3Puts };
}

/// Runs an upload in the page with `token`; the page's report.
function uploadIn(p, token, specs, pauseAt, limit) {
  return p.evaluate(
    async ({ endpoint, token, specs, pauseAt, limit }) => {
      const uppy = window.hoistUppy.make({ endpoint, token, limit });
      let paused = null;
      const onProgress = pauseAt
        ? (_file, progress) => {
            if (!paused && progress.bytesUploaded >= pauseAt) {
              paused = Date.now();
              uppy.pauseAll();
              setTimeout(() => uppy.resumeAll(), 800);
            }
          }
        : undefined;
      const report = await window.hoistUppy.upload(uppy, specs, { onProgress });
      return { ...report, paused };
    },
    { endpoint: hoist.api, token, specs, pauseAt, limit },
  );
}

for (const version of VERSIONS) {
  describe(`Uppy ${version}`, () => {
    test("a 1 MiB file, a 40 MiB multipart file and 50 files at once land intact", { timeout: 180_000 }, async () => {
      const { page: p, errors } = await openPage(version);
      const one = await uploadIn(p, WEB_TOKEN, [
        { name: "report.pdf", size: MiB, type: "application/pdf" },
        { name: "video.mp4", size: 40 * MiB, type: "video/mp4" },
      ]);
      assertLanded(one.files, "web/");
      const many = await uploadIn(
        p,
        WEB_TOKEN,
        Array.from({ length: 50 }, (_, i) => ({ name: `photo-${i}.jpg`, size: 1000 + i * 37, type: "image/jpeg", seed: 100 + i })),
      );
      assert.equal(many.successful, 50);
      assertLanded(many.files, "web/");
      assert.deepEqual(errors, []);
      await p.close();
    });

    test("paused mid-way and resumed, a multipart upload sends only its missing parts", { timeout: 180_000 }, async () => {
      const { page: p, s3Puts } = await openPage(version);
      // Slow the uplink so the pause lands mid-way (the whole file would go in a blink).
      const cdp = await p.context().newCDPSession(p);
      await cdp.send("Network.enable");
      await cdp.send("Network.emulateNetworkConditions", {
        offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 12 * MiB,
      });
      // Two parts at a time, paused past 12 MiB: parts 1 and 2 are in, others on their way.
      const r = await uploadIn(p, WEB_TOKEN, [{ name: "footage.mov", size: 30 * MiB, seed: 7 }], 12 * MiB, 2);
      assert.ok(r.paused, "the upload was paused");
      assertLanded(r.files, "web/");
      const landed = s3Puts.filter((x) => x.status >= 200 && x.status < 300);
      const parts = landed.map((x) => x.part);
      assert.ok(landed.some((x) => x.at < r.paused), `some parts were in before the pause: ${JSON.stringify(s3Puts)}`);
      assert.deepEqual([...new Set(parts)].sort((a, b) => a - b), [1, 2, 3, 4, 5, 6]);
      assert.equal(parts.length, 6, `each part sent successfully once, none again after resuming: ${parts}`);
      await p.close();
    });

    test("an .exe and an .html are refused with the server's reason shown by Uppy", { timeout: 180_000 }, async () => {
      const { page: p } = await openPage(version);
      const before = stored().size;
      const r = await uploadIn(p, WEB_TOKEN, [
        { name: "setup.exe", size: 2000 },
        { name: "invoice.html", size: 2000, type: "text/html" },
      ]);
      const [exe, html] = r.files;
      assert.match(exe.error ?? "", /\.exe file is not allowed/, JSON.stringify(exe));
      assert.match(html.error ?? "", /not allowed/, JSON.stringify(html));
      assert.equal(stored().size, before, "nothing landed");
      await p.close();
    });

    if (version === 6) {
      test("the user signs in with the company's OpenID provider and uploads under their own prefix", { timeout: 180_000 }, async () => {
        const { page: p } = await openPage(version);
        // The page sends the browser to the provider (the evaluation ends with the navigation).
        await p.evaluate((issuer) => window.hoistUppy.signIn({ issuer, clientId: "web-app" }), hoist.issuer).catch(() => {});
        await p.waitForSelector("input[name=login]");
        await p.fill("input[name=login]", "alice");
        await p.fill("input[name=password]", "any password");
        await p.click("button[type=submit]");
        await p.waitForLoadState();
        if (await p.$("input[name=prompt][value=consent]")) await p.click("button[type=submit]");
        await p.waitForURL((url) => url.origin === hoist.origin && url.searchParams.has("code"));
        await p.waitForFunction(() => window.hoistUppy);
        const token = await p.evaluate(() => window.hoistUppy.finishSignIn());
        assert.equal(token.split(".").length, 3, "a JWT access token for hoist-server");
        const r = await uploadIn(p, token, [
          { name: "moodboard.png", size: 200_000, type: "image/png" },
          { name: "brief.pdf", size: 7 * MiB, type: "application/pdf", seed: 11 },
        ]);
        assertLanded(r.files, "staff/alice/");
        const audit = readFileSync(join(tmp, "audit.jsonl"), "utf8");
        assert.match(audit, /alice@example\.com/, "the audit log names who uploaded");
        await p.close();
      });
    }

    test("a file over the token's max_size is refused and one under it lands", { timeout: 180_000 }, async () => {
      const { page: p } = await openPage(version);
      const before = stored().size;
      const over = await uploadIn(p, SMALL_TOKEN, [
        { name: "big.bin", size: SMALL_LIMIT + 1 },
        { name: "bigger.bin", size: 6 * MiB, seed: 9 },
      ]);
      // Uppy 5 declares the size and hoist-server refuses it. Uppy 6 cannot: the store refuses
      // a whole file's body past the form's length range, and hoist-server refuses to sign the
      // Complete of parts past the limit (and aborts the upload).
      for (const f of over.files) {
        assert.match(f.error ?? "", /over the limit of 1048576 bytes|EntityTooLarge/, JSON.stringify(f));
      }
      assert.equal(stored().size, before, "nothing landed");
      assert.deepEqual(pendingParts(), [], "no multipart upload is left behind");
      const under = await uploadIn(p, SMALL_TOKEN, [{ name: "fits.bin", size: SMALL_LIMIT }]);
      assertLanded(under.files, "small/");
      await p.close();
    });
  });
}
