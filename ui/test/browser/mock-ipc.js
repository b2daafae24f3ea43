// Stands in for the Tauri shell when the built UI runs in a plain browser: a small scripted
// queue that moves uploads through their phases, one refused file, profiles and history.
// Every call is recorded in window.__calls for the test to check.
(() => {
  const callbacks = new Map();
  let nextId = 1;
  let channel = null;
  const calls = [];
  window.__calls = calls;
  const profiles = [
    { name: "local", active: true, builtin: true, secrets: [],
      profile: { mode: "local", prefix: "uploads/", key_template: "{yyyy}/{mm}/{dd}/{uuid}-{name}", concurrency: 4 } },
  ];
  const history = [];
  let rowId = 0;
  // The core's queue: every row as it is now, listed a window at a time as the core does
  // (unfinished ones oldest first, then finished ones newest first).
  const queue = new Map();
  const UNFINISHED = ["queued", "signing", "uploading", "verifying", "paused"];
  const FILTERED = {
    all: () => true,
    unfinished: (p) => UNFINISHED.includes(p),
    failed: (p) => p === "failed" || p === "cancelled",
    done: (p) => p === "done",
  };
  const emit = (e) => {
    for (const one of Array.isArray(e) ? e : [e]) if (one.event === "changed") queue.set(one.row.id, one.row);
    if (channel) channel.onmessage(e);
  };
  const later = (ms, f) => setTimeout(f, ms);

  // A file named unreachable-… fails as one whose backend cannot be reached.
  const UNREACHABLE =
    "cannot reach the backend: nothing accepts connections at uploads.example.com:443 (connection refused): " +
    "the backend may be down. Hoist tries again by itself when the network is back.";

  function simulate(row) {
    if (row.name.startsWith("unreachable")) {
      later(150, () => emit({ event: "changed", row: { ...row, phase: "signing" } }));
      later(300, () => emit({ event: "changed", row: { ...row, phase: "failed", error: UNREACHABLE } }));
      return;
    }
    const steps = ["signing", "uploading", "uploading", "verifying", "done"];
    steps.forEach((phase, i) =>
      later(150 * (i + 1), () => {
        const sent = phase === "uploading" ? Math.floor((row.size * (i - 0.5)) / 3) : phase === "signing" ? 0 : row.size;
        emit({ event: "changed", row: { ...row, phase, sent, sha256: phase === "done" ? "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" : null } });
        if (phase === "done") {
          history.unshift({ id: row.id, profile: "local", name: row.name, key: row.key, size: row.size,
            sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", etag: null,
            url: `http://127.0.0.1:40123/hoist-local/${row.key}`, finishedAt: "2026-11-28T21:30:00.000Z", shareable: true });
        }
      }),
    );
  }

  const commands = {
    subscribe: (a) => { channel = a.onEvent; },
    queue_window: ({ query }) => {
      const rows = [...queue.values()];
      const unfinished = rows.filter((r) => UNFINISHED.includes(r.phase)).sort((a, b) => a.id - b.id);
      const finished = rows.filter((r) => !UNFINISHED.includes(r.phase)).sort((a, b) => b.id - a.id);
      const listed = [...unfinished, ...finished].filter((r) => FILTERED[query.filter](r.phase));
      return { offset: query.offset, rows: listed.slice(query.offset, query.offset + query.limit),
        matching: listed.length, all: rows.length,
        overall: { unfinished: unfinished.length, size: unfinished.reduce((n, r) => n + r.size, 0),
          sent: unfinished.reduce((n, r) => n + r.sent, 0), sentEver: 0 } };
    },
    thumbnail: () => null,
    clear_finished: () => {
      for (const [id, r] of queue) if (r.phase === "done" || r.phase === "cancelled") queue.delete(id);
    },
    overview: () => ({ activeProfile: profiles.find((p) => p.active).name,
      destination: "/home/ann/.local/share/hoist/store/hoist-local", local: true }),
    profiles: () => profiles,
    profile_template: () => ({
      defaults: { mode: "local", prefix: "", key_template: "{yyyy}/{mm}/{dd}/{uuid}-{name}", concurrency: 4 },
      backendSecrets: ["bearer-token"],
      selfSignSecrets: ["secret-access-key", "session-token"],
    }),
    history_page: (a) => {
      const wanted = (a.query.search || "").toLowerCase();
      const entries = history.filter((e) => [e.name, e.key, e.profile].some((f) => f.toLowerCase().includes(wanted)));
      return { entries, total: entries.length, next: null };
    },
    add_paths: (a) => {
      const queued = [];
      const rejected = [];
      for (const path of a.paths) {
        const name = path.split("/").pop();
        if (name.startsWith("empty")) { rejected.push({ path, reason: "the file is empty; enable allow_empty in the profile to upload empty files" }); continue; }
        const row = { id: ++rowId, profile: "local", path, name, key: `uploads/2026/11/28/${rowId}-${name}`,
          size: 3 * 1024 * 1024 * rowId, phase: "queued", sent: 0, error: null, sha256: null, location: null };
        queued.push(row);
        simulate(row);
      }
      // As the shell does: the rows as events (coalesced, an array a message), a count back.
      emit(queued.map((row) => ({ event: "changed", row })));
      later(1200, () => emit({ event: "batchFinished", done: queued.length, failed: 0 }));
      return { queued: queued.length, rejected };
    },
    save_profile: (a) => {
      const entry = { name: a.name, active: false, builtin: false, profile: a.profile,
        secrets: a.secrets.map((s) => ({ kind: s.kind, required: true, stored: true })) };
      profiles.push(entry);
      return entry;
    },
    health_check: (a) => ({ profile: a.name, ok: true, checks: [
      { name: "profile", status: "pass", detail: "complete; its secrets are in the keychain" },
      { name: "sign", status: "pass", detail: "a presigned PUT was issued" },
      { name: "put", status: "pass", detail: "wrote 56 bytes to uploads/.hoist-health/x.txt and deleted them" },
      { name: "clock", status: "pass", detail: "within 1 s of the server's" },
      { name: "path style", status: "pass", detail: "path-style addresses (host/bucket/key)" } ] }),
    "plugin:event|listen": (a) => a.handler,
    "plugin:event|unlisten": () => null,
  };

  window.__TAURI_INTERNALS__ = {
    metadata: { currentWindow: { label: "main" }, currentWebview: { windowLabel: "main", label: "main" } },
    transformCallback(cb) { const id = nextId++; callbacks.set(id, cb); return id; },
    unregisterCallback(id) { callbacks.delete(id); },
    async invoke(cmd, args) {
      calls.push({ cmd, args: JSON.parse(JSON.stringify(args ?? {}, (k, v) => (k === "onEvent" ? "channel" : v))) });
      const f = commands[cmd];
      if (!f) throw { kind: "local", hint: null, message: `the mock has no ${cmd}` };
      return f(args ?? {});
    },
    convertFileSrc: (p) => p,
  };
  window.__TAURI_EVENT_PLUGIN_INTERNALS__ = { unregisterListener() {} };
  // What Tauri does when files are dropped on the window.
  window.__drop = (paths) => {
    for (const [, cb] of callbacks) {
      try { cb({ event: "tauri://drag-drop", id: 0, payload: { type: "drop", paths, position: { x: 10, y: 10 } } }); } catch {}
    }
  };
})();
