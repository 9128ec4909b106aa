/**
 * Models from the Hugging Face hub: `org/name[@revision]` (a transformers model: config, generation
 * config, tokenizer files, the safetensors weights, sharded through the index or not; or a GGUF repo's
 * only .gguf file) and `org/name[@revision]/file.gguf` (one GGUF file), downloaded into a cache laid out
 * exactly like huggingface_hub's, so that models fetched by Python tools are reused and the other way round:
 *
 *   $HF_HUB_CACHE (default $HF_HOME/hub, HF_HOME default ${XDG_CACHE_HOME:-~/.cache}/huggingface)
 *     models--org--name/blobs/<etag>                 file contents, named by sha256 (LFS) or git sha1
 *     models--org--name/snapshots/<commit>/<file>    relative symlinks to ../../blobs/<etag>
 *     models--org--name/refs/<revision>              the commit a branch or tag pointed to
 *
 * Protocol (as huggingface_hub's file_download.py): `GET {endpoint}/api/models/{id}/revision/{rev}` for the
 * commit (`sha`) and the file list (`siblings[].rfilename`); then per missing file a HEAD of
 * `{endpoint}/{id}/resolve/{commit}/{file}` (relative redirects followed, an absolute one, to a CDN, not):
 * `X-Repo-Commit`, `X-Linked-Etag` or `ETag` (the blob name: sha256 for LFS files, checked after the
 * download), `X-Linked-Size` or `Content-Length`, and `Location`, which the GET then fetches.
 * Environment: HF_ENDPOINT (mirrors), HF_TOKEN (or $HF_HOME/token) sent as a Bearer token to the hub's own
 * origin only, HF_HUB_OFFLINE=1 (the cache alone; the error lists what is missing).
 *
 * @example Needs the network, so `deno test --doc` skips it (`ignore`).
 * ```ts ignore
 * import { hubConfig, hubModel, parseHubId } from "./hub.ts";
 * const dir = await hubModel(parseHubId("HuggingFaceTB/SmolLM2-360M-Instruct@main")!, hubConfig());
 * console.log(dir); // ~/.cache/huggingface/hub/models--HuggingFaceTB--SmolLM2-360M-Instruct/snapshots/<commit>
 * ```
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, relative } from "node:path";
import process from "node:process";
import { ApeError, DownloadError, InvalidArgumentError, ModelNotFoundError } from "../errors.ts";
import { downloadFile, type DownloadProgress, fetchFollowing, httpError } from "./hub_download.ts";

export type { DownloadProgress } from "./hub_download.ts";

export interface HubRef {
  repoId: string;
  /** A branch, tag or commit; "main" by default. */
  revision: string;
  /** One file of the repo (a .gguf), or undefined for a transformers model. */
  file?: string;
}

export interface HubConfig {
  endpoint: string;
  cacheDir: string;
  token?: string;
  offline: boolean;
  onProgress?: (p: DownloadProgress) => void;
}

/** Options that override the environment (HF_ENDPOINT, HF_HUB_CACHE / HF_HOME, HF_TOKEN, HF_HUB_OFFLINE). */
export type HubOptions = Partial<HubConfig>;

const SEGMENT = "[A-Za-z0-9][A-Za-z0-9._-]*";
const HUB_ID = new RegExp(`^(${SEGMENT})/(${SEGMENT})(?:@([^/@\\s]+))?(?:/([^@\\s]+\\.gguf))?(?:@([^/@\\s]+))?$`, "i");
const COMMIT = /^[0-9a-f]{40}$/;
/** Files a transformers model may need besides its weights (fetched when the repo has them). */
const MODEL_FILES = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"];

/** `org/name`, `org/name@rev`, `org/name/file.gguf`, `org/name@rev/file.gguf` (or `.../file.gguf@rev`); else undefined. */
export function parseHubId(spec: string): HubRef | undefined {
  const m = HUB_ID.exec(spec);
  if (!m || m[1].endsWith(".") || m[2].endsWith(".")) return undefined;
  if (m[3] !== undefined && m[5] !== undefined) return undefined;
  const file = m[4];
  if (file !== undefined && file.split("/").some((s) => s === "" || s === "." || s === "..")) return undefined;
  return { repoId: `${m[1]}/${m[2]}`, revision: m[3] ?? m[5] ?? "main", file };
}

function truthy(v: string | undefined): boolean {
  return v !== undefined && ["1", "on", "yes", "true"].includes(v.trim().toLowerCase());
}

/** The hub settings from the environment, as huggingface_hub reads them, then `opts`. */
export function hubConfig(opts: HubOptions = {}, env: Record<string, string | undefined> = process.env): HubConfig {
  const xdg = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.length > 0 ? env.XDG_CACHE_HOME : join(homedir(), ".cache");
  const home = env.HF_HOME || join(xdg, "huggingface");
  const cacheDir = env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE || join(home, "hub");
  let token = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN;
  if (!token) {
    const file = env.HF_TOKEN_PATH || join(home, "token");
    try {
      token = readFileSync(file, "utf8").trim() || undefined;
    } catch { /* no token file */ }
  }
  return {
    endpoint: (env.HF_ENDPOINT || "https://huggingface.co").replace(/\/+$/, ""),
    cacheDir,
    token,
    offline: truthy(env.HF_HUB_OFFLINE) || truthy(env.TRANSFORMERS_OFFLINE),
    ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)),
  };
}

/** `models--org--name`, huggingface_hub's repo_folder_name. */
export function repoFolder(cfg: HubConfig, repoId: string): string {
  return join(cfg.cacheDir, ["models", ...repoId.split("/")].join("--"));
}

const quotePath = (file: string) => file.split("/").map(encodeURIComponent).join("/");
const normalizeEtag = (e: string | null) => (e === null ? undefined : e.replace(/^W\//, "").replace(/^"|"$/g, ""));

function authHeaders(cfg: HubConfig): Record<string, string> {
  return cfg.token ? { authorization: `Bearer ${cfg.token}` } : {};
}

function writeAtomic(path: string, text: string) {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${Math.random().toString(16).slice(2, 10)}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/** A relative symlink `pointer` -> `blob`, placed atomically (as huggingface_hub's _create_symlink). */
function linkPointer(blob: string, pointer: string) {
  mkdirSync(dirname(pointer), { recursive: true });
  const tmp = `${pointer}.${process.pid}.${Math.random().toString(16).slice(2, 10)}.tmp`;
  symlinkSync(relative(dirname(pointer), blob), tmp);
  renameSync(tmp, pointer);
}

/** The commit a revision resolves to in the cache (a commit itself, or refs/<revision>), if known. */
export function cachedCommit(cfg: HubConfig, ref: HubRef): string | undefined {
  if (COMMIT.test(ref.revision)) return ref.revision;
  try {
    return readFileSync(join(repoFolder(cfg, ref.repoId), "refs", ref.revision), "utf8").trim();
  } catch {
    return undefined;
  }
}

interface RepoInfo {
  sha: string;
  files: string[];
}

async function repoInfo(cfg: HubConfig, ref: HubRef, label: string): Promise<RepoInfo> {
  const url = `${cfg.endpoint}/api/models/${ref.repoId}/revision/${encodeURIComponent(ref.revision)}`;
  const res = await fetchFollowing(url, { method: "GET", headers: { accept: "application/json", ...authHeaders(cfg) } });
  if (!res.ok) {
    await res.body?.cancel();
    // the hub is down or throttling: like a network failure, the cache may answer
    if (res.status >= 500 || res.status === 429) throw new Error(`HTTP ${res.status} from ${url}`);
    throw httpError(res.status, label, url, res.headers, "revision");
  }
  const info = await res.json() as { sha?: unknown; siblings?: { rfilename?: unknown }[] };
  if (typeof info.sha !== "string" || !COMMIT.test(info.sha) || !Array.isArray(info.siblings)) {
    throw new DownloadError(`${label}: ${url} did not answer with a model's revision info (sha, siblings)`, "http");
  }
  return { sha: info.sha, files: info.siblings.map((s) => s.rfilename).filter((f): f is string => typeof f === "string") };
}

/** Downloads one file of a repo at a commit into the cache (if not there yet) and returns its snapshot path. */
export async function hubFile(cfg: HubConfig, repoId: string, commit: string, file: string): Promise<string> {
  const folder = repoFolder(cfg, repoId);
  const pointer = join(folder, "snapshots", commit, ...file.split("/"));
  if (existsSync(pointer)) return pointer;
  const label = `${repoId}/${file}`;
  if (cfg.offline) throw new ModelNotFoundError(`${label}: HF_HUB_OFFLINE is set and ${pointer} is not in the cache`);
  const url = `${cfg.endpoint}/${repoId}/resolve/${commit}/${quotePath(file)}`;
  // HEAD, following relative redirects only (a renamed repo); an absolute Location is the CDN's
  let at = url, res: Response;
  for (let i = 0; ; i++) {
    try {
      res = await fetch(at, { method: "HEAD", headers: { "accept-encoding": "identity", ...authHeaders(cfg) }, redirect: "manual" });
    } catch (e) {
      throw new DownloadError(`${label}: ${at} cannot be reached (${(e as Error).message}${causeOf(e)})`, "network", { cause: e });
    }
    const loc = res.headers.get("location");
    if (res.status >= 300 && res.status < 400 && loc && !/^[a-z][a-z0-9+.-]*:/i.test(loc) && i < 10) {
      at = new URL(loc, at).href;
      continue;
    }
    break;
  }
  const redirect = res.status >= 300 && res.status < 400;
  if (!res.ok && !redirect) throw httpError(res.status, label, url, res.headers);
  const etag = normalizeEtag(res.headers.get("x-linked-etag") ?? res.headers.get("etag"));
  const sizeHeader = res.headers.get("x-linked-size") ?? (redirect ? null : res.headers.get("content-length"));
  if (!etag) throw new DownloadError(`${label}: ${url} sent no ETag / X-Linked-Etag (not a hub resolve endpoint?)`, "http");
  if (!/^[\w.-]+$/.test(etag)) throw new DownloadError(`${label}: ${url} sent an ETag unfit for a blob name: ${etag}`, "http");
  const size = sizeHeader !== null && /^\d+$/.test(sizeHeader) ? Number(sizeHeader) : undefined;
  const location = res.headers.get("location");
  const target = redirect && location ? new URL(location, at).href : at;
  const blob = join(folder, "blobs", etag);
  await downloadFile({
    url: target,
    dest: blob,
    lock: join(cfg.cacheDir, ".locks", ["models", ...repoId.split("/")].join("--"), `${etag}.apekit-lock`),
    label,
    expected: {
      size,
      sha256: /^[0-9a-f]{64}$/i.test(etag) ? etag : undefined,
      gitSha1: /^[0-9a-f]{40}$/i.test(etag) ? etag : undefined,
    },
    // the token goes to the hub's own origin only (a CDN's URL is signed)
    headers: new URL(target).origin === new URL(cfg.endpoint).origin ? authHeaders(cfg) : {},
    onProgress: cfg.onProgress,
  });
  if (size !== undefined && statSync(blob).size !== size) {
    throw new DownloadError(`${label}: the cached blob ${blob} has ${statSync(blob).size} bytes, the hub announces ${size}`, "size");
  }
  linkPointer(blob, pointer);
  return pointer;
}

/** The files a transformers model needs from a repo with `files`, the weights read from the index. */
function weightFiles(files: string[], label: string): string[] {
  if (files.includes("model.safetensors.index.json")) return ["model.safetensors.index.json"];
  if (files.includes("model.safetensors")) return ["model.safetensors"];
  const ggufs = files.filter((f) => f.toLowerCase().endsWith(".gguf"));
  if (ggufs.length === 1) return ggufs;
  if (ggufs.length > 1) {
    throw new InvalidArgumentError(`${label} holds ${ggufs.length} GGUF files; name one: ${ggufs.slice(0, 8).map((f) => `${label.split("@")[0]}/${f}`).join(", ")}${ggufs.length > 8 ? ", ..." : ""}`);
  }
  throw new ModelNotFoundError(`${label} has no model.safetensors, model.safetensors.index.json or .gguf file (found: ${files.slice(0, 12).join(", ")})`);
}

function shardsOf(indexPath: string, label: string): string[] {
  const map = (JSON.parse(readFileSync(indexPath, "utf8")) as { weight_map?: Record<string, string> }).weight_map;
  if (!map || typeof map !== "object") throw new DownloadError(`${label}: model.safetensors.index.json has no weight_map`, "http");
  return [...new Set(Object.values(map))].sort();
}

/**
 * A hub model in the local cache, downloading what is missing: returns the snapshot folder (a
 * transformers model) or the GGUF file's path. Offline (HF_HUB_OFFLINE=1), or when the hub cannot be
 * reached, the cache alone answers and the error names what is missing.
 */
export async function hubModel(ref: HubRef, cfg: HubConfig = hubConfig()): Promise<string> {
  const label = `${ref.repoId}@${ref.revision}`;
  let info: RepoInfo | undefined;
  // a commit already complete in the cache needs no network (as huggingface_hub's commit shortcut)
  if (COMMIT.test(ref.revision) && !cfg.offline) {
    try {
      return fromCache(cfg, ref, label, "");
    } catch { /* not complete: ask the hub */ }
  }
  if (!cfg.offline) {
    try {
      info = await repoInfo(cfg, ref, label);
    } catch (e) {
      if (e instanceof ApeError) throw e; // an answer from the hub (404, 401, ...), not a network failure
      // the hub cannot be reached: use the cache, like huggingface_hub does
      return fromCache(cfg, ref, label, `${cfg.endpoint} cannot be reached (${(e as Error).message}${causeOf(e)})`);
    }
  }
  if (!info) return fromCache(cfg, ref, label, "HF_HUB_OFFLINE is set");
  const folder = repoFolder(cfg, ref.repoId);
  if (ref.revision !== info.sha) {
    const refPath = join(folder, "refs", ref.revision);
    if (!existsSync(refPath) || readFileSync(refPath, "utf8") !== info.sha) writeAtomic(refPath, info.sha);
  }
  const snapshot = join(folder, "snapshots", info.sha);
  if (ref.file) {
    if (!info.files.includes(ref.file)) {
      throw new ModelNotFoundError(`${label}: the repository has no file '${ref.file}' (GGUF files there: ${info.files.filter((f) => f.endsWith(".gguf")).join(", ") || "none"})`);
    }
    return await hubFile(cfg, ref.repoId, info.sha, ref.file);
  }
  const weights = weightFiles(info.files, label);
  if (weights[0].toLowerCase().endsWith(".gguf")) return await hubFile(cfg, ref.repoId, info.sha, weights[0]);
  if (!info.files.includes("config.json")) throw new ModelNotFoundError(`${label}: the repository has no config.json`);
  for (const f of MODEL_FILES) if (info.files.includes(f)) await hubFile(cfg, ref.repoId, info.sha, f);
  const first = await hubFile(cfg, ref.repoId, info.sha, weights[0]);
  if (weights[0] === "model.safetensors.index.json") {
    for (const shard of shardsOf(first, label)) {
      if (!info.files.includes(shard)) throw new ModelNotFoundError(`${label}: shard '${shard}' listed in model.safetensors.index.json is not in the repository`);
      await hubFile(cfg, ref.repoId, info.sha, shard);
    }
  }
  return snapshot;
}

function causeOf(e: unknown): string {
  const c = (e as { cause?: { code?: string; message?: string } }).cause;
  return c ? `: ${c.code ?? c.message ?? c}` : "";
}

/** The model from the cache alone; ModelNotFoundError listing what is missing. */
function fromCache(cfg: HubConfig, ref: HubRef, label: string, why: string): string {
  const folder = repoFolder(cfg, ref.repoId);
  const commit = cachedCommit(cfg, ref);
  const missing = (what: string) =>
    new ModelNotFoundError(`${label}: ${why}, and the cache (${cfg.cacheDir}) lacks ${what}; run once online to download it`);
  if (!commit) throw missing(`refs/${ref.revision} (the revision was never downloaded)`);
  const snapshot = join(folder, "snapshots", commit);
  if (!existsSync(snapshot)) throw missing(`snapshots/${commit}`);
  if (ref.file) {
    if (!existsSync(join(snapshot, ref.file))) throw missing(ref.file);
    return join(snapshot, ref.file);
  }
  const present = listFiles(snapshot);
  if (!present.includes("config.json")) {
    const ggufs = present.filter((f) => f.toLowerCase().endsWith(".gguf"));
    if (ggufs.length === 1) return join(snapshot, ggufs[0]);
    throw missing("config.json");
  }
  const lacking: string[] = [];
  if (present.includes("model.safetensors.index.json")) {
    for (const s of shardsOf(join(snapshot, "model.safetensors.index.json"), label)) if (!present.includes(s)) lacking.push(s);
  } else if (!present.includes("model.safetensors")) lacking.push("model.safetensors (or model.safetensors.index.json)");
  if (!present.includes("tokenizer.json")) lacking.push("tokenizer.json");
  if (lacking.length) throw missing(lacking.join(", "));
  return snapshot;
}

function listFiles(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listFiles(join(dir, e.name), rel));
    else if (existsSync(join(dir, e.name))) out.push(rel); // a symlink to an existing blob
  }
  return out;
}

/** Removes a repo's cache folder (tests, `ape cache`-like tools). */
export function removeCachedRepo(cfg: HubConfig, repoId: string) {
  rmSync(repoFolder(cfg, repoId), { recursive: true, force: true });
}
