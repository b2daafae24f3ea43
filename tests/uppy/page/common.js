// What the test page does with either Uppy: make files, upload them, report what happened.
// The bytes are generated here (a seeded xorshift) and hashed with WebCrypto, so the runner
// checks each object in the store against the SHA-256 of what the browser sent.

export function bytes(size, seed) {
  const out = new Uint8Array(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x & 255; out[i + 1] = (x >>> 8) & 255; out[i + 2] = (x >>> 16) & 255; out[i + 3] = x >>> 24;
  }
  return out;
}

async function sha256(data) {
  const digest = await crypto.subtle.digest("SHA-256", data);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// Adds `specs` ({name, size, type?, seed}) to `uppy`, uploads them, and answers, per file, its
// SHA-256 and the key it landed at, or the error Uppy shows.
export async function upload(uppy, specs, { onProgress } = {}) {
  const expected = new Map();
  for (const [i, spec] of specs.entries()) {
    const data = bytes(spec.size, spec.seed ?? i + 1);
    const id = uppy.addFile({
      name: spec.name,
      type: spec.type ?? "application/octet-stream",
      data: new Blob([data], { type: spec.type ?? "application/octet-stream" }),
      source: "test",
    });
    expected.set(id, { name: spec.name, sha256: await sha256(data) });
  }
  const errors = new Map();
  const onError = (file, error) => errors.set(file.id, String(error?.message ?? error));
  uppy.on("upload-error", onError);
  if (onProgress) uppy.on("upload-progress", onProgress);
  const result = await uppy.upload();
  uppy.off("upload-error", onError);
  if (onProgress) uppy.off("upload-progress", onProgress);
  const out = [];
  for (const [id, want] of expected) {
    const file = uppy.getFile(id);
    out.push({
      ...want,
      key: file?.response?.body?.key ?? file?.s3Multipart?.key ?? null,
      error: errors.get(id) ?? file?.error ?? null,
    });
  }
  for (const id of expected.keys()) if (uppy.getFile(id)) uppy.removeFile(id);
  return { files: out, successful: result?.successful?.length ?? 0 };
}
