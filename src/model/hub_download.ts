/**
 * One file over HTTP(S) into a cache, safely: resumable (a dropped connection continues with a Range
 * request from the bytes already written; an interrupted process leaves `<dest>.incomplete`, which the
 * next run resumes), checked (the size, and the sha256 or git blob sha1 the server announced, before the
 * file is placed), placed atomically (rename of the finished `.incomplete`), and locked across processes
 * (two processes fetching the same file: one downloads, the other waits and reuses it).
 *
 * The lock is a directory (`mkdir` is atomic) holding its owner's pid and host, refreshed every second
 * while the owner works; a waiter takes over a lock whose owner is dead or silent for `staleMs`. It is
 * apekit's own (`<name>.apekit-lock`), next to huggingface_hub's flock files, which it leaves alone.
 *
 * @example Needs the network, so `deno test --doc` skips it (`ignore`).
 * ```ts ignore
 * import { downloadFile } from "./hub_download.ts";
 * await downloadFile({ url: "https://example.com/model.gguf", dest: "/tmp/m/model.gguf", lock: "/tmp/m/.lock",
 *   label: "model.gguf", expected: { size: 1234 } });
 * ```
 */
import { createHash, type Hash } from "node:crypto";
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, utimesSync, writeFileSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { dirname } from "node:path";
import process from "node:process";
import { DownloadError, HubAuthError, ModelNotFoundError } from "../errors.ts";

export interface DownloadProgress {
  /** The file's name as the user knows it (repo path or URL basename). */
  file: string;
  done: number;
  /** Bytes in all, 0 when unknown. */
  total: number;
}

/** What the server announced for a file: its size, and a sha256 (64 hex) or git blob sha1 (40 hex). */
export interface Expected {
  size?: number;
  sha256?: string;
  gitSha1?: string;
}

export interface DownloadRequest {
  url: string;
  dest: string;
  /** Lock path (a directory is created there while one process downloads). */
  lock: string;
  /** Name used in errors and progress. */
  label: string;
  expected: Expected;
  /** Headers for the first host (e.g. Authorization); dropped when a redirect leaves its origin. */
  headers?: Record<string, string>;
  onProgress?: (p: DownloadProgress) => void;
  /** Consecutive failed attempts without progress before giving up (default 5). */
  retries?: number;
  /** A lock whose owner has not refreshed it for this long is taken over (default 30 s). */
  staleMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Downloads `url` to `dest` unless `dest` already exists (then returns at once). Throws DownloadError
 * (network / http / size / checksum), HubAuthError (401, 403) or ModelNotFoundError (404).
 */
export async function downloadFile(req: DownloadRequest): Promise<void> {
  if (existsSync(req.dest)) return;
  mkdirSync(dirname(req.dest), { recursive: true });
  const release = await acquireLock(req.lock, req.staleMs ?? 30_000, () => existsSync(req.dest));
  if (!release) return; // another process placed the file while we waited
  try {
    if (existsSync(req.dest)) return;
    await transfer(req);
  } finally {
    release();
  }
}

/** Takes the lock, or returns undefined as soon as `done()` turns true while waiting for another owner. */
async function acquireLock(path: string, staleMs: number, done: () => boolean): Promise<(() => void) | undefined> {
  mkdirSync(dirname(path), { recursive: true });
  const me = { pid: process.pid, host: hostname() };
  for (let wait = 20; ; wait = Math.min(wait * 2, 250)) {
    try {
      mkdirSync(path);
      writeFileSync(`${path}/owner.json`, JSON.stringify(me));
      const beat = setInterval(() => {
        try {
          const t = new Date();
          utimesSync(path, t, t);
        } catch { /* the lock was taken over or removed */ }
      }, 1000);
      (beat as { unref?: () => void }).unref?.();
      return () => {
        clearInterval(beat);
        rmSync(path, { recursive: true, force: true });
      };
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST") throw e;
    }
    if (done()) return undefined;
    if (lockIsStale(path, staleMs)) {
      rmSync(path, { recursive: true, force: true });
      continue;
    }
    await sleep(wait);
  }
}

function lockIsStale(path: string, staleMs: number): boolean {
  try {
    const st = statSync(path);
    if (Date.now() - st.mtimeMs > staleMs) return true;
    const owner = JSON.parse(readFileSync(`${path}/owner.json`, "utf8")) as { pid: number; host: string };
    if (owner.host !== hostname()) return false;
    try {
      process.kill(owner.pid, 0);
      return false;
    } catch (e) {
      return (e as { code?: string }).code === "ESRCH";
    }
  } catch {
    return false; // just created (no owner.json yet) or just removed
  }
}

/** Maps an HTTP error status to apekit's typed errors, naming the file and URL. */
export function httpError(status: number, label: string, url: string, headers: Headers, what = "file"): Error {
  const code = headers.get("x-error-code") ?? "";
  const msg = headers.get("x-error-message");
  const detail = msg ? ` (${msg})` : "";
  if (code === "GatedRepo" || ((status === 401 || status === 403) && code !== "RepoNotFound")) {
    const gated = code === "GatedRepo" ? "the repository is gated: accept its terms on the hub, then " : "";
    return new HubAuthError(
      `${label}: access refused (HTTP ${status}) for ${url}${detail}; ${gated}set HF_TOKEN to a token that may read it ` +
        `(or put the token in $HF_HOME/token)`,
    );
  }
  if (code === "RepoNotFound") {
    return new ModelNotFoundError(`${label}: repository not found (HTTP ${status}) at ${url}; check the id, or set HF_TOKEN if it is private`);
  }
  if (code === "RevisionNotFound") return new ModelNotFoundError(`${label}: revision not found (HTTP ${status}) at ${url}`);
  if (status === 404) return new ModelNotFoundError(`${label}: ${what} not found (HTTP 404) at ${url}${detail}`);
  return new DownloadError(`${label}: HTTP ${status} from ${url}${detail}`, "http");
}

/** fetch with redirects followed by hand, so that headers such as Authorization never leave the first origin. */
export async function fetchFollowing(url: string, init: RequestInit & { headers: Record<string, string> }, maxRedirects = 10): Promise<Response> {
  const origin = new URL(url).origin;
  let current = url;
  for (let i = 0; ; i++) {
    const sameOrigin = new URL(current).origin === origin;
    const headers = sameOrigin ? init.headers : Object.fromEntries(Object.entries(init.headers).filter(([k]) => k.toLowerCase() !== "authorization"));
    const res = await fetch(current, { ...init, headers, redirect: "manual" });
    const loc = res.headers.get("location");
    if (res.status >= 300 && res.status < 400 && loc) {
      await res.body?.cancel();
      if (i >= maxRedirects) throw new DownloadError(`too many redirects from ${url}`, "http");
      current = new URL(loc, current).href;
      continue;
    }
    return res;
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return -1;
  }
}

/** Hash of a file's first `bytes` bytes (to continue a resumed download's sha256). */
function hashPrefix(path: string, bytes: number): Hash {
  const h = createHash("sha256");
  const fd = openSync(path, "r");
  try {
    const buf = new Uint8Array(8 << 20);
    for (let pos = 0; pos < bytes;) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, bytes - pos), pos);
      if (n <= 0) break;
      h.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
  return h;
}

async function transfer(req: DownloadRequest): Promise<void> {
  const { url, dest, label, expected } = req;
  const part = `${dest}.incomplete`;
  const total = expected.size ?? 0;
  if (expected.size !== undefined && sizeOf(part) > expected.size) rmSync(part, { force: true });
  let hash: Hash | undefined, hashed = 0;
  let failures = 0, lastError: unknown;
  let lastReport = 0;
  const report = (done: number, force = false) => {
    const now = Date.now();
    if (req.onProgress && (force || now - lastReport > 100)) {
      lastReport = now;
      req.onProgress({ file: label, done, total });
    }
  };
  for (;;) {
    let start = Math.max(0, sizeOf(part));
    if (expected.size !== undefined && start === expected.size && start > 0) break; // complete from an earlier run
    if (!hash || hashed !== start) {
      hash = start > 0 ? hashPrefix(part, start) : createHash("sha256");
      hashed = start;
    }
    const headers: Record<string, string> = { "accept-encoding": "identity", ...req.headers };
    if (start > 0) headers.range = `bytes=${start}-`;
    let res: Response;
    try {
      res = await fetchFollowing(url, { method: "GET", headers });
    } catch (e) {
      if (e instanceof DownloadError) throw e;
      lastError = e;
      if (++failures > (req.retries ?? 5)) break;
      await sleep(100 * 2 ** failures);
      continue;
    }
    if (res.status === 416 && start > 0) {
      // asked past the end: what we have is everything the server has; the checks below decide
      await res.body?.cancel();
      break;
    }
    if (res.status !== 200 && res.status !== 206) {
      await res.body?.cancel();
      if (res.status >= 500 || res.status === 429) {
        lastError = new DownloadError(`${label}: HTTP ${res.status} from ${url}`, "http");
        if (++failures > (req.retries ?? 5)) break;
        await sleep(100 * 2 ** failures);
        continue;
      }
      throw httpError(res.status, label, url, res.headers);
    }
    if (res.status === 200 && start > 0) {
      // the server ignored the Range: start over
      start = 0;
      hash = createHash("sha256");
      hashed = 0;
    }
    if (res.status === 206) {
      const m = /^bytes (\d+)-/.exec(res.headers.get("content-range") ?? "");
      if (!m || Number(m[1]) !== start) {
        await res.body?.cancel();
        throw new DownloadError(`${label}: the server answered a Range request from ${start} with '${res.headers.get("content-range")}' (${url})`, "http");
      }
    }
    const fd = openSync(part, start > 0 ? "a" : "w");
    let got = start, progressed = false;
    try {
      const reader = res.body!.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        for (let off = 0; off < value.length;) off += writeSync(fd, value, off, value.length - off);
        hash.update(value);
        got += value.length;
        hashed = got;
        progressed = true;
        if (got !== total) report(got); // the last call comes once, after the checks
      }
      fsyncSync(fd);
    } catch (e) {
      lastError = e;
      if (progressed) failures = 0;
      if (++failures > (req.retries ?? 5)) break;
      await sleep(50 * 2 ** failures);
      continue; // resume from what reached the disk
    } finally {
      closeSync(fd);
    }
    if (expected.size !== undefined && got < expected.size) {
      // the body ended early without an error: resume
      lastError = new Error(`connection closed at byte ${got} of ${expected.size}`);
      if (progressed) failures = 0;
      if (++failures > (req.retries ?? 5)) break;
      continue;
    }
    break;
  }
  const size = sizeOf(part);
  if (size < 0 || (expected.size !== undefined && size < expected.size)) {
    // keep the partial file: a later run resumes it
    throw new DownloadError(`${label}: download from ${url} failed after retries (${Math.max(0, size)} of ${total || "?"} bytes): ${(lastError as Error)?.message ?? lastError}`, "network", { cause: lastError });
  }
  if (expected.size !== undefined && size !== expected.size) {
    rmSync(part, { force: true });
    throw new DownloadError(`${label}: downloaded ${size} bytes from ${url}, the server announced ${expected.size}; refused (nothing kept)`, "size");
  }
  if (expected.sha256) {
    const got = hashed === size && hash ? hash.digest("hex") : hashPrefix(part, size).digest("hex");
    if (got !== expected.sha256.toLowerCase()) {
      rmSync(part, { force: true });
      throw new DownloadError(`${label}: sha256 ${got} of the file from ${url} does not match the announced ${expected.sha256}; refused (nothing kept)`, "checksum");
    }
  } else if (expected.gitSha1) {
    const h = createHash("sha1");
    h.update(`blob ${size}\0`);
    h.update(readFileSync(part));
    const got = h.digest("hex");
    if (got !== expected.gitSha1.toLowerCase()) {
      rmSync(part, { force: true });
      throw new DownloadError(`${label}: git blob sha1 ${got} of the file from ${url} does not match the announced ${expected.gitSha1}; refused (nothing kept)`, "checksum");
    }
  }
  renameSync(part, dest);
  report(size, true);
}
