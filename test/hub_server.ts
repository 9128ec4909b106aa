/**
 * A stand-in Hugging Face hub (Hono on node:http, so it runs under Node, Bun and Deno) serving model
 * folders from disk with the hub's endpoints and headers, as huggingface_hub reads them:
 *
 * - `GET /api/models/{org}/{name}/revision/{rev}`: `{ id, sha, siblings: [{ rfilename }], gated, private }`;
 *   an unknown repo answers 401 `X-Error-Code: RepoNotFound`, an unknown revision 404 `RevisionNotFound`.
 * - `GET /api/models/{org}/{name}/tree/{rev}`: `[{ type, oid, size, path, lfs?: { oid, size, pointerSize } }]`.
 * - `HEAD|GET /{org}/{name}/resolve/{rev}/{file}`: every answer carries `X-Repo-Commit`. LFS files
 *   (.safetensors, .gguf, .bin) answer `302` to a second host (the "CDN") with `X-Linked-Etag: "<sha256>"`
 *   and `X-Linked-Size`; other files `200` with `ETag: "<git blob sha1>"`. A missing file: 404
 *   `EntryNotFound`; a gated repo without the right Bearer token: 401 `GatedRepo`. A renamed repo
 *   (`aliases`) answers 307 with a relative Location, as the hub does.
 * - the CDN: `GET|HEAD /repos/{sha256}`, with Range (206 + Content-Range).
 *
 * Faults for tests, by blob sha256: `dropAfter` (the next GET sends that many bytes, then the connection
 * is cut), `corrupt` (one byte flipped, same length), `throttle` (bytes per second for every CDN body),
 * and `apiDown` (the revision API answers 503).
 * Also a `urls` mount: `GET /files/{path}` serves `filesRoot` as a plain web server (no hub headers).
 *
 * Run alone (bench/full_size.sh): `deno run -A test/hub_server.ts --port 8765 --repo org/name=DIR ...`
 * prints `{"endpoint": ...}` and serves until killed.
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { Hono } from "hono";

export interface StandInRepo {
  dir: string;
  gated?: boolean;
  /** Files to expose (repo paths); default: every file under `dir` except reference.json. */
  files?: string[];
}

export interface HubServerOptions {
  repos: Record<string, StandInRepo>;
  /** Token accepted for gated repos. */
  token?: string;
  /** Old repo id -> current repo id (answered with relative 307 redirects). */
  aliases?: Record<string, string>;
  /** A folder served under /files/ without hub headers (URL sources). */
  filesRoot?: string;
  port?: number;
  cdnPort?: number;
}

export interface Served {
  method: string;
  path: string;
  range?: string;
  status: number;
  bytes: number;
  auth?: string;
}

interface FileInfo {
  path: string;
  size: number;
  lfs: boolean;
  sha256: string;
  gitSha1: string;
}

export interface HubServer {
  endpoint: string;
  cdn: string;
  /** Every request answered, by host. */
  log: { hub: Served[]; cdn: Served[] };
  faults: { dropAfter: Map<string, number>; corrupt: Set<string>; throttle: number; apiDown: boolean };
  commit(repo: string): string;
  file(repo: string, file: string): FileInfo;
  close(): Promise<void>;
}

const LFS = /\.(safetensors|gguf|bin|pt|pth|onnx)$/i;

function listFiles(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listFiles(join(dir, e.name), rel));
    else out.push(rel);
  }
  return out;
}

/** A file's digest, read in 64 MiB pieces (full-size weights exceed what one read returns). */
function hashFile(path: string, algo: string, prefix?: string): string {
  const h = createHash(algo);
  if (prefix) h.update(prefix);
  const fd = openSync(path, "r");
  try {
    const chunk = new Uint8Array(64 << 20);
    for (let n; (n = readSync(fd, chunk, 0, chunk.length, null)) > 0;) h.update(chunk.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest("hex");
}

/** A body streamed from disk: [start, end) of `path`, with the test's faults applied. */
function fileBody(path: string, start: number, end: number, opts: { dropAt?: number; corrupt?: boolean; throttle: number }): ReadableStream<Uint8Array> {
  let pos = start;
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  const began = Date.now();
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      handle ??= await open(path, "r");
      if (opts.dropAt !== undefined && pos - start >= opts.dropAt) {
        await handle.close();
        ctrl.error(new Error("stand-in hub: connection dropped on purpose"));
        return;
      }
      if (pos >= end) {
        await handle.close();
        ctrl.close();
        return;
      }
      let n = Math.min(1 << 20, end - pos);
      if (opts.throttle > 0) {
        n = Math.min(n, Math.max(1024, Math.floor(opts.throttle / 20)));
        const due = began + ((pos - start) / opts.throttle) * 1000;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      if (opts.dropAt !== undefined) n = Math.min(n, start + opts.dropAt - pos);
      const buf = new Uint8Array(n);
      const { bytesRead } = await handle.read(buf, 0, n, pos);
      if (opts.corrupt && pos <= start + (end - start) / 2 && start + (end - start) / 2 < pos + bytesRead) {
        buf[Math.floor(start + (end - start) / 2 - pos)] ^= 0xff;
      }
      pos += bytesRead;
      ctrl.enqueue(buf.subarray(0, bytesRead));
    },
    async cancel() {
      await handle?.close();
    },
  });
}

/** Serves a Hono app on node:http, streaming bodies; a body stream that errors cuts the connection. */
function serve(app: Hono, port: number, log: Served[]): Promise<Server> {
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const url = `http://${req.headers.host ?? "localhost"}${req.url ?? "/"}`;
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers.set(k, v);
    const entry: Served = { method: req.method ?? "GET", path: decodeURIComponent(new URL(url).pathname), status: 0, bytes: 0 };
    if (headers.get("range")) entry.range = headers.get("range")!;
    if (headers.get("authorization")) entry.auth = headers.get("authorization")!;
    log.push(entry);
    let response: Response;
    try {
      response = await app.fetch(new Request(url, { method: req.method, headers }));
    } catch (e) {
      response = new Response(String(e), { status: 500 });
    }
    entry.status = response.status;
    const out: Record<string, string> = {};
    response.headers.forEach((v, k) => (out[k] = v));
    res.writeHead(response.status, out);
    if (req.method === "HEAD" || !response.body) {
      await response.body?.cancel();
      res.end();
      return;
    }
    const reader = response.body.getReader();
    let written: Promise<unknown> = Promise.resolve();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        entry.bytes += value.length;
        let ok = true;
        written = new Promise((r) => (ok = res.write(value, r))); // settles once the chunk is handed to the socket
        if (!ok) await new Promise((r) => res.once("drain", r));
      }
      res.end();
    } catch {
      // the connection drops mid-body, after what was written has gone out (Bun buffers more than Node)
      await Promise.race([written, new Promise((r) => setTimeout(r, 500))]);
      res.destroy();
    }
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}

function closeServer(s: Server): Promise<void> {
  return new Promise((resolve) => {
    (s as { closeAllConnections?: () => void }).closeAllConnections?.();
    s.close(() => resolve());
  });
}

export async function startHubServer(opts: HubServerOptions): Promise<HubServer> {
  const log = { hub: [] as Served[], cdn: [] as Served[] };
  const faults = { dropAfter: new Map<string, number>(), corrupt: new Set<string>(), throttle: 0, apiDown: false };
  const info = new Map<string, Map<string, FileInfo>>();
  const blobs = new Map<string, FileInfo>();
  const commits = new Map<string, string>();
  for (const [id, repo] of Object.entries(opts.repos)) {
    const files = repo.files ?? listFiles(repo.dir).filter((f) => f !== "reference.json");
    const m = new Map<string, FileInfo>();
    const c = createHash("sha1").update(id);
    for (const f of files) {
      const path = join(repo.dir, f);
      const size = statSync(path).size;
      const fi: FileInfo = { path, size, lfs: LFS.test(f), sha256: hashFile(path, "sha256"), gitSha1: "" };
      fi.gitSha1 = fi.lfs ? createHash("sha1").update(`version https://git-lfs.github.com/spec/v1\noid sha256:${fi.sha256}\nsize ${size}\n`).digest("hex") : hashFile(path, "sha1", `blob ${size}\0`);
      m.set(f, fi);
      blobs.set(fi.sha256, fi);
      c.update(`${f}:${fi.sha256}\n`);
    }
    info.set(id, m);
    commits.set(id, c.digest("hex"));
  }
  let cdnBase = "";
  const err = (status: number, code: string, message: string) =>
    new Response(JSON.stringify({ error: message }), { status, headers: { "content-type": "application/json", "x-error-code": code, "x-error-message": message } });
  const hub = new Hono();
  hub.get("/api/models/:org/:name/revision/:rev", (c) => {
    const id = `${c.req.param("org")}/${c.req.param("name")}`;
    if (faults.apiDown) return c.text("Service Unavailable", 503);
    const alias = opts.aliases?.[id];
    if (alias) return c.redirect(`/api/models/${alias}/revision/${encodeURIComponent(c.req.param("rev"))}`, 307);
    if (!info.has(id)) return err(401, "RepoNotFound", "Repository not found");
    const sha = commits.get(id)!;
    const rev = c.req.param("rev");
    if (rev !== "main" && rev !== sha) return err(404, "RevisionNotFound", "Invalid rev id: " + rev);
    return c.json({ _id: sha.slice(0, 24), id, modelId: id, sha, private: false, gated: opts.repos[id].gated ? "manual" : false, disabled: false, siblings: [...info.get(id)!.keys()].map((rfilename) => ({ rfilename })) });
  });
  // the file listing huggingface_hub's snapshot_download reads (list_repo_tree, recursive, one page)
  hub.get("/api/models/:org/:name/tree/:rev", (c) => {
    const id = `${c.req.param("org")}/${c.req.param("name")}`;
    if (!info.has(id)) return err(401, "RepoNotFound", "Repository not found");
    const sha = commits.get(id)!, rev = c.req.param("rev");
    if (rev !== "main" && rev !== sha) return err(404, "RevisionNotFound", "Invalid rev id: " + rev);
    return c.json([...info.get(id)!].map(([path, fi]) => ({
      type: "file", oid: fi.gitSha1, size: fi.size, path, ...(fi.lfs ? { lfs: { oid: fi.sha256, size: fi.size, pointerSize: 134 } } : {}),
    })));
  });
  hub.on(["GET", "HEAD"], "/:org/:name/resolve/:rev/*", (c) => {
    const id = `${c.req.param("org")}/${c.req.param("name")}`;
    const rest = decodeURIComponent(new URL(c.req.url).pathname).split("/").slice(5).join("/");
    const alias = opts.aliases?.[id];
    if (alias) return c.redirect(`/${alias}/resolve/${c.req.param("rev")}/${rest}`, 307);
    const files = info.get(id);
    if (!files) return err(401, "RepoNotFound", "Repository not found");
    const sha = commits.get(id)!;
    const rev = c.req.param("rev");
    if (rev !== "main" && rev !== sha) return err(404, "RevisionNotFound", "Invalid rev id: " + rev);
    const base = { "x-repo-commit": sha, "accept-ranges": "bytes" };
    if (opts.repos[id].gated && c.req.header("authorization") !== `Bearer ${opts.token}`) {
      const r = err(401, "GatedRepo", `Access to model ${id} is restricted. You must have access to it and be authenticated to access it. Please log in.`);
      r.headers.set("x-repo-commit", sha);
      return r;
    }
    const fi = files.get(rest);
    if (!fi) {
      const r = err(404, "EntryNotFound", `${rest} does not exist on "${rev}"`);
      r.headers.set("x-repo-commit", sha);
      return r;
    }
    if (fi.lfs) {
      return new Response(null, {
        status: 302,
        headers: {
          ...base, location: `${cdnBase}/repos/${fi.sha256}?X-Amz-Signature=standin&repo=${encodeURIComponent(id)}`,
          etag: `"${fi.gitSha1}"`, "x-linked-etag": `"${fi.sha256}"`, "x-linked-size": String(fi.size), "content-length": "0",
        },
      });
    }
    return ranged(c.req.raw, fi, { ...base, etag: `"${fi.gitSha1}"` });
  });
  hub.get("/files/*", (c) => {
    if (!opts.filesRoot) return c.notFound();
    const rel = decodeURIComponent(new URL(c.req.url).pathname).slice("/files/".length);
    if (rel.split("/").includes("..")) return c.notFound();
    const path = join(opts.filesRoot, rel);
    if (!existsSync(path) || !statSync(path).isFile()) return c.text("not found", 404);
    const size = statSync(path).size;
    return ranged(c.req.raw, { path, size, lfs: false, sha256: "", gitSha1: "" }, { etag: `"${size}-${statSync(path).mtimeMs}"` });
  });
  function ranged(req: Request, fi: FileInfo, headers: Record<string, string>): Response {
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.get("range") ?? "");
    const start = m ? Number(m[1]) : 0;
    const end = m && m[2] ? Number(m[2]) + 1 : fi.size;
    if (m && start >= fi.size) return new Response(null, { status: 416, headers: { ...headers, "content-range": `bytes */${fi.size}` } });
    const drop = fi.sha256 ? faults.dropAfter.get(fi.sha256) : undefined;
    if (drop !== undefined) faults.dropAfter.delete(fi.sha256);
    const body = req.method === "HEAD" ? null : fileBody(fi.path, start, end, { dropAt: drop, corrupt: faults.corrupt.has(fi.sha256), throttle: faults.throttle });
    return new Response(body, {
      status: m ? 206 : 200,
      headers: { ...headers, "accept-ranges": "bytes", "content-length": String(end - start), "content-type": "application/octet-stream", ...(m ? { "content-range": `bytes ${start}-${end - 1}/${fi.size}` } : {}) },
    });
  }
  const cdn = new Hono();
  cdn.on(["GET", "HEAD"], "/repos/:sha", (c) => {
    if (c.req.query("X-Amz-Signature") !== "standin") return c.text("AccessDenied", 403);
    const fi = blobs.get(c.req.param("sha"));
    if (!fi) return c.text("NoSuchKey", 404);
    return ranged(c.req.raw, fi, { etag: `"${fi.sha256}"` });
  });
  const hubServer = await serve(hub, opts.port ?? 0, log.hub);
  const cdnServer = await serve(cdn, opts.cdnPort ?? 0, log.cdn);
  const port = (s: Server) => (s.address() as { port: number }).port;
  // the CDN is another origin (another port of 127.0.0.1 would be the same host: use "localhost")
  cdnBase = `http://localhost:${port(cdnServer)}`;
  return {
    endpoint: `http://127.0.0.1:${port(hubServer)}`,
    cdn: cdnBase,
    log,
    faults,
    commit: (repo) => commits.get(repo)!,
    file: (repo, file) => info.get(repo)!.get(file)!,
    close: async () => {
      await closeServer(hubServer);
      await closeServer(cdnServer);
    },
  };
}

if ((import.meta as { main?: boolean }).main) {
  // deno run -A test/hub_server.ts [--port N] [--token T] --repo org/name=DIR [--gated org/name=DIR]...
  const args = process.argv.slice(2);
  const repos: Record<string, StandInRepo> = {};
  let port = 0, token: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i], v = args[++i];
    if (a === "--port") port = Number(v);
    else if (a === "--token") token = v;
    else if (a === "--repo" || a === "--gated") {
      const [id, dir] = v.split("=");
      repos[id] = { dir, gated: a === "--gated" };
    } else throw new Error(`unknown argument ${a}`);
  }
  const s = await startHubServer({ repos, port, token });
  console.log(JSON.stringify({ endpoint: s.endpoint, cdn: s.cdn, commits: Object.fromEntries(Object.keys(repos).map((r) => [r, s.commit(r)])) }));
}
