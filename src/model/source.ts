/**
 * Where a model comes from, turned into a local path for the loader: a local folder or .gguf file
 * (as is), a Hugging Face hub id (`org/name[@revision]`, `org/name[@revision]/file.gguf`: see hub.ts), or
 * an `https://` (or `http://`) URL to a .gguf file or to a folder serving a transformers model's files
 * (`config.json`, `model.safetensors` or the index and its shards, `tokenizer.json`, ...).
 *
 * URL downloads live in apekit's model cache, `${XDG_CACHE_HOME:-~/.cache}/apekit/models/url-<hash>/`,
 * with the same resumable, checked, atomic, locked transfer as hub files. A URL ending in
 * `#sha256=<hex>` is checked against that digest. A cached URL is reused without asking the server again.
 *
 * @example Needs the network, so `deno test --doc` skips it (`ignore`).
 * ```ts ignore
 * import { resolveModelSource } from "./source.ts";
 * const path = await resolveModelSource("Qwen/Qwen2.5-0.5B-Instruct");   // the cached snapshot folder
 * const gguf = await resolveModelSource("https://example.com/models/tiny.gguf");
 * ```
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ModelNotFoundError } from "../errors.ts";
import { modelCacheDir } from "./default_model.ts";
import { type DownloadProgress, hubConfig, hubModel, type HubOptions, parseHubId } from "./hub.ts";
import { downloadFile } from "./hub_download.ts";

export type { DownloadProgress } from "./hub_download.ts";

export interface SourceOptions extends HubOptions {
  onProgress?: (p: DownloadProgress) => void;
}

export type ModelSource =
  | { kind: "local"; path: string }
  | { kind: "hub"; repoId: string; revision: string; file?: string }
  | { kind: "url"; url: string };

/** What a model string names. An existing local path wins over a hub id of the same spelling. */
export function classifySource(spec: string): ModelSource {
  if (/^https?:\/\//i.test(spec)) return { kind: "url", url: spec };
  if (existsSync(spec)) return { kind: "local", path: spec };
  const hub = parseHubId(spec);
  if (hub && !spec.startsWith(".") && !spec.startsWith("/")) return { kind: "hub", ...hub };
  return { kind: "local", path: spec };
}

/** A local path for `spec`, downloading a hub model or URL into its cache first. */
export async function resolveModelSource(spec: string, opts: SourceOptions = {}): Promise<string> {
  const src = classifySource(spec);
  if (src.kind === "local") return src.path;
  if (src.kind === "hub") return await hubModel(src, hubConfig(opts));
  return await urlModel(src.url, opts);
}

const OPTIONAL = ["generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"];

async function urlModel(spec: string, opts: SourceOptions): Promise<string> {
  const u = new URL(spec);
  const pin = /^#sha256=([0-9a-f]{64})$/i.exec(u.hash)?.[1];
  u.hash = "";
  const url = u.href;
  const dir = join(modelCacheDir(), `url-${createHash("sha256").update(url).digest("hex").slice(0, 16)}`);
  const offline = hubConfig(opts).offline;
  const get = async (name: string, fileUrl: string, optional = false): Promise<string | undefined> => {
    const dest = join(dir, name);
    if (existsSync(dest)) return dest;
    if (offline && optional) return undefined;
    if (offline) throw new ModelNotFoundError(`${url}: HF_HUB_OFFLINE is set and ${dest} is not in the cache`);
    try {
      await downloadFile({ url: fileUrl, dest, lock: join(dir, `.${name}.apekit-lock`), label: name, expected: name.endsWith(".gguf") && pin ? { sha256: pin } : {}, onProgress: opts.onProgress });
    } catch (e) {
      if (optional && e instanceof ModelNotFoundError) return undefined;
      throw e;
    }
    return dest;
  };
  const path = u.pathname;
  if (path.toLowerCase().endsWith(".gguf")) {
    const name = decodeURIComponent(path.slice(path.lastIndexOf("/") + 1));
    return (await get(name, url))!;
  }
  const base = url.endsWith("/") ? url : `${url}/`;
  await get("config.json", `${base}config.json`);
  for (const f of OPTIONAL) await get(f, `${base}${f}`, true);
  const index = await get("model.safetensors.index.json", `${base}model.safetensors.index.json`, true);
  if (index) {
    const map = (JSON.parse(readFileSync(index, "utf8")) as { weight_map?: Record<string, string> }).weight_map ?? {};
    for (const shard of [...new Set(Object.values(map))].sort()) await get(shard, `${base}${shard.split("/").map(encodeURIComponent).join("/")}`);
  } else {
    await get("model.safetensors", `${base}model.safetensors`);
  }
  return dir;
}
