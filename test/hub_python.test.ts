// The hub cache is huggingface_hub's own: a model apekit downloaded is found by Python's
// try_to_load_from_cache / scan_cache_dir / hf_hub_download(local_files_only), and a model Python's
// snapshot_download fetched (from the same stand-in hub, test/hub_server.ts) is used by apekit offline
// and online without downloading anything again. Python's huggingface_hub comes with `tokenizers`
// (scripts/requirements-test.txt). Node only: it spawns Python, and the other runtimes' runs add nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hubConfig, type HubConfig, hubModel, parseHubId } from "../src/model/hub.ts";
import { runtimeName } from "../src/runtime.ts";
import { type HubServer, startHubServer } from "./hub_server.ts";

const FIX = new URL("../fixtures/models/", import.meta.url).pathname;
const node = runtimeName().startsWith("node");
const hasHub = node && spawnSync("python3", ["-c", "import huggingface_hub"]).status === 0;

/** Runs Python asynchronously (the stand-in hub answers from this process's event loop); its last line is JSON. */
function python(code: string, env: Record<string, string>): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const p = spawn("python3", ["-c", code], {
      env: { ...process.env, HF_HUB_DISABLE_TELEMETRY: "1", HF_HUB_DISABLE_XET: "1", HF_TOKEN: "", HF_HUB_OFFLINE: "", ...env },
    });
    let out = "", err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    p.on("close", (code) => (code === 0 ? resolve(JSON.parse(out.trim().split("\n").at(-1)!)) : reject(new Error(`python failed: ${err}`))));
  });
}

describe.skipIf(!hasHub)(`huggingface_hub (Python) and apekit share one cache (${runtimeName()})`, () => {
  let hub: HubServer, tmp: string;
  const cfg = (dir: string, offline = false): HubConfig => hubConfig({ endpoint: hub.endpoint, cacheDir: join(tmp, dir), offline }, {});
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), "apekit-hubpy-"));
    hub = await startHubServer({ repos: { "org/qwen3": { dir: `${FIX}qwen3` }, "org/sharded": { dir: `${FIX}llama_sharded` } } });
  });
  afterAll(async () => {
    await hub?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it("apekit's download is found by try_to_load_from_cache, hf_hub_download(local_files_only) and scan_cache_dir", async () => {
    const c = cfg("a");
    const dir = await hubModel(parseHubId("org/qwen3")!, c);
    const blobs = join(c.cacheDir, "models--org--qwen3", "blobs");
    const blobBytes = readdirSync(blobs).reduce((s, b) => s + statSync(join(blobs, b)).size, 0);
    const got = await python(
      `import json
from huggingface_hub import try_to_load_from_cache, scan_cache_dir, hf_hub_download
c = ${JSON.stringify(c.cacheDir)}
p = try_to_load_from_cache("org/qwen3", "model.safetensors", cache_dir=c, revision="main")
q = hf_hub_download("org/qwen3", "tokenizer.json", cache_dir=c, local_files_only=True)
info = scan_cache_dir(c)
print(json.dumps({"p": p, "q": q, "warnings": [str(w) for w in info.warnings], "repos": [
  {"id": r.repo_id, "size": r.size_on_disk, "files": r.nb_files, "refs": sorted(r.refs),
   "revisions": [{"commit": v.commit_hash, "files": sorted(f.file_name for f in v.files)} for v in r.revisions]}
  for r in info.repos]}))`,
      {},
    ) as { p: string; q: string; warnings: string[]; repos: { id: string; size: number; files: number; refs: string[]; revisions: { commit: string; files: string[] }[] }[] };
    expect(got.p).toBe(join(dir, "model.safetensors"));
    expect(got.q).toBe(join(dir, "tokenizer.json"));
    expect(got.warnings).toEqual([]);
    expect(got.repos).toEqual([{
      id: "org/qwen3", size: blobBytes, files: 5, refs: ["main"],
      revisions: [{ commit: hub.commit("org/qwen3"), files: readdirSync(dir).sort() }],
    }]);
  });

  it("Python's snapshot_download from the stand-in hub is used by apekit offline, and online without a new download", async () => {
    const c = cfg("b");
    const py = await python(
      `import json
from huggingface_hub import snapshot_download
print(json.dumps({"dir": snapshot_download("org/sharded", cache_dir=${JSON.stringify(c.cacheDir)})}))`,
      { HF_ENDPOINT: hub.endpoint },
    ) as { dir: string };
    expect(py.dir).toBe(join(c.cacheDir, "models--org--sharded", "snapshots", hub.commit("org/sharded")));
    expect(await hubModel(parseHubId("org/sharded")!, cfg("b", true))).toBe(py.dir);
    const n = { hub: hub.log.hub.length, cdn: hub.log.cdn.length };
    expect(await hubModel(parseHubId("org/sharded")!, c)).toBe(py.dir);
    expect(hub.log.hub.slice(n.hub).map((r) => r.path)).toEqual(["/api/models/org/sharded/revision/main"]);
    expect(hub.log.cdn.length).toBe(n.cdn);
  });
});
