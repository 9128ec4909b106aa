// Models from the hub and from URLs, against a stand-in hub (test/hub_server.ts: the hub's resolve and
// API endpoints and headers over the fixtures, LFS files redirected to a second "CDN" host): the cache
// layout huggingface_hub uses, resume after a dropped connection, refused checksums leaving nothing
// behind, gated repos, missing files, offline mode, and two processes downloading at once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { DownloadError, HubAuthError, InvalidArgumentError, ModelNotFoundError } from "../src/errors.ts";
import { hubConfig, type HubConfig, hubFile, hubModel, parseHubId } from "../src/model/hub.ts";
import { classifySource, resolveModelSource } from "../src/model/source.ts";
import { runtimeName } from "../src/runtime.ts";
import { type HubServer, startHubServer } from "./hub_server.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const FIX = `${ROOT}fixtures/`;
const DENO = `${ROOT}node_modules/@deno/linux-x64-glibc/deno`;
const TOKEN = "hf_standin_token";

let hub: HubServer, tmp: string;
const cfg = (name: string, extra: Partial<HubConfig> = {}): HubConfig =>
  hubConfig({ endpoint: hub.endpoint, cacheDir: join(tmp, name), token: undefined, offline: false, ...extra }, {});

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "apekit-hub-"));
  const gguf = join(tmp, "gguf-one");
  mkdirSync(gguf);
  writeFileSync(join(gguf, "model-q8_0.gguf"), readFileSync(`${FIX}gguf/quant_Q8_0.gguf`));
  writeFileSync(join(gguf, "README.md"), "one GGUF file\n");
  hub = await startHubServer({
    token: TOKEN,
    repos: {
      "org/qwen3": { dir: `${FIX}models/qwen3` },
      "org/sharded": { dir: `${FIX}models/llama_sharded` },
      "org/drop": { dir: `${FIX}models/mistral` },
      "org/resume": { dir: `${FIX}models/llama_linear` },
      "org/bad": { dir: `${FIX}models/qwen2` },
      "org/gated": { dir: `${FIX}models/llama3`, gated: true },
      "org/two": { dir: `${FIX}models/qwen2` },
      "org/ggufs": { dir: `${FIX}gguf`, files: ["quant_Q8_0.gguf", "quant_F16.gguf"] },
      "org/gguf-one": { dir: gguf },
    },
    aliases: { "old-org/qwen3": "org/qwen3" },
    filesRoot: FIX,
  });
});

afterAll(async () => {
  await hub?.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function rejects(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a rejection");
}

describe(`model sources: hub ids and URLs on ${runtimeName()}`, () => {
  it("parses hub ids and tells them from local paths and URLs", () => {
    expect(parseHubId("Qwen/Qwen2.5-0.5B-Instruct")).toEqual({ repoId: "Qwen/Qwen2.5-0.5B-Instruct", revision: "main", file: undefined });
    expect(parseHubId("HuggingFaceTB/SmolLM2-360M-Instruct@v1.0")).toMatchObject({ revision: "v1.0" });
    expect(parseHubId("org/repo/sub/model-Q4_K_M.gguf")).toEqual({ repoId: "org/repo", revision: "main", file: "sub/model-Q4_K_M.gguf" });
    expect(parseHubId("org/repo@abc/m.gguf")).toEqual({ repoId: "org/repo", revision: "abc", file: "m.gguf" });
    expect(parseHubId("org/repo/m.gguf@abc")).toEqual({ repoId: "org/repo", revision: "abc", file: "m.gguf" });
    for (const bad of ["org", "a/b/c", "org/repo/../x.gguf", "org/repo@a/m.gguf@b", "/abs/path", "org/repo/config.json"]) expect(parseHubId(bad), bad).toBeUndefined();
    expect(classifySource("fixtures/models/qwen3").kind).toBe("local"); // relative to the cwd of the test runner
    expect(classifySource(`${FIX}models/qwen3`)).toEqual({ kind: "local", path: `${FIX}models/qwen3` });
    expect(classifySource("Qwen/Qwen3-0.6B").kind).toBe("hub");
    expect(classifySource("https://example.com/m.gguf").kind).toBe("url");
    const env = hubConfig({}, { HF_HOME: "/h", HF_ENDPOINT: "https://mirror.example/", HF_TOKEN: "t", HF_HUB_OFFLINE: "1" });
    expect(env).toMatchObject({ endpoint: "https://mirror.example", cacheDir: "/h/hub", token: "t", offline: true });
    expect(hubConfig({}, { XDG_CACHE_HOME: "/x", HF_HUB_CACHE: "/c" }).cacheDir).toBe("/c");
    mkdirSync(join(tmp, "home"), { recursive: true });
    writeFileSync(join(tmp, "home", "token"), "hf_from_file\n");
    expect(hubConfig({}, { HF_HOME: join(tmp, "home") }).token).toBe("hf_from_file");
    expect(hubConfig({}, { HF_HOME: join(tmp, "home"), HF_TOKEN: "hf_env" }).token).toBe("hf_env");
    expect(hubConfig({}, { XDG_CACHE_HOME: "/x", HF_TOKEN_PATH: "/nonexistent" })).toMatchObject({ cacheDir: "/x/huggingface/hub", endpoint: "https://huggingface.co", offline: false });
  });

  it("downloads a model into huggingface_hub's layout (blobs, snapshots, refs), LFS files through the CDN redirect", async () => {
    const c = cfg("layout", { token: TOKEN });
    const dir = await hubModel(parseHubId("org/qwen3")!, c);
    const sha = hub.commit("org/qwen3"), repo = join(c.cacheDir, "models--org--qwen3");
    expect(dir).toBe(join(repo, "snapshots", sha));
    expect(readFileSync(join(repo, "refs", "main"), "utf8")).toBe(sha);
    const files = readdirSync(dir).sort();
    expect(files).toEqual(["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]);
    for (const f of files) {
      const fi = hub.file("org/qwen3", f);
      expect(lstatSync(join(dir, f)).isSymbolicLink()).toBe(true);
      expect(readlinkSync(join(dir, f))).toBe(`../../blobs/${fi.lfs ? fi.sha256 : fi.gitSha1}`);
      expect(Buffer.compare(readFileSync(join(dir, f)), readFileSync(`${FIX}models/qwen3/${f}`))).toBe(0);
    }
    expect(hub.log.cdn.filter((r) => r.method === "GET").map((r) => r.path)).toEqual([`/repos/${hub.file("org/qwen3", "model.safetensors").sha256}`]);
    expect(hub.log.cdn.every((r) => r.auth === undefined), "the token never leaves the hub's origin").toBe(true);
    expect(hub.log.hub.some((r) => r.auth === `Bearer ${TOKEN}`)).toBe(true);
    // again: the API call alone, nothing downloaded
    const before = { hub: hub.log.hub.length, cdn: hub.log.cdn.length };
    expect(await hubModel(parseHubId("org/qwen3")!, c)).toBe(dir);
    expect(hub.log.hub.slice(before.hub).map((r) => r.path)).toEqual([`/api/models/org/qwen3/revision/main`]);
    expect(hub.log.cdn.length).toBe(before.cdn);
    // a renamed repo: relative 307 redirects, followed
    expect(readdirSync(await hubModel(parseHubId(`old-org/qwen3@${sha}`)!, c)).sort()).toEqual(files);
  });

  it("fetches the shards a model.safetensors.index.json lists", async () => {
    const dir = await hubModel(parseHubId("org/sharded")!, cfg("sharded"));
    const shards = readdirSync(dir).filter((f) => f.startsWith("model-")).sort();
    expect(shards).toEqual([1, 2, 3, 4].map((i) => `model-0000${i}-of-00004.safetensors`));
    for (const s of shards) expect(Buffer.compare(readFileSync(join(dir, s)), readFileSync(`${FIX}models/llama_sharded/${s}`))).toBe(0);
  });

  it("offline (HF_HUB_OFFLINE): the cache alone, and an error naming what is missing", async () => {
    const c = cfg("offline");
    const dir = await hubModel(parseHubId("org/sharded")!, c);
    const n = hub.log.hub.length;
    expect(await hubModel(parseHubId("org/sharded")!, { ...c, offline: true })).toBe(dir);
    expect(await hubModel(parseHubId("org/sharded@main")!, { ...c, offline: true, endpoint: "http://127.0.0.1:9" })).toBe(dir);
    expect(hub.log.hub.length, "no request when offline").toBe(n);
    rmSync(join(dir, "model-00003-of-00004.safetensors"));
    const e = await rejects(hubModel(parseHubId("org/sharded")!, { ...c, offline: true }));
    expect(e).toBeInstanceOf(ModelNotFoundError);
    expect(e.message).toMatch(/HF_HUB_OFFLINE.*model-00003-of-00004\.safetensors/);
    const never = await rejects(hubModel(parseHubId("org/qwen3")!, { ...c, offline: true }));
    expect(never.message).toMatch(/refs\/main \(the revision was never downloaded\)/);
    // a hub that cannot be reached, or answers 503, falls back to the cache, as huggingface_hub does
    const down = await rejects(hubModel(parseHubId("org/qwen3")!, { ...c, endpoint: "http://127.0.0.1:9" }));
    expect(down).toBeInstanceOf(ModelNotFoundError);
    expect(down.message).toMatch(/cannot be reached/);
    rmSync(join(c.cacheDir, "models--org--sharded"), { recursive: true });
    await hubModel(parseHubId("org/sharded")!, c);
    hub.faults.apiDown = true;
    try {
      expect(await hubModel(parseHubId("org/sharded")!, c)).toBe(dir);
      expect((await rejects(hubModel(parseHubId("org/qwen3")!, c))).message).toMatch(/cannot be reached \(HTTP 503 from/);
    } finally {
      hub.faults.apiDown = false;
    }
    // a full commit already in the cache: no request at all
    const m = hub.log.hub.length;
    expect(await hubModel(parseHubId(`org/sharded@${hub.commit("org/sharded")}`)!, c)).toBe(dir);
    expect(hub.log.hub.length).toBe(m);
  });

  it("a connection dropped mid-file resumes with a Range request; a partial file and lock left by a killed process: taken over, resumed", async () => {
    const fi = hub.file("org/drop", "model.safetensors");
    hub.faults.dropAfter.set(fi.sha256, 100_000);
    const progress: number[] = [];
    const dir = await hubModel(parseHubId("org/drop")!, { ...cfg("drop"), onProgress: (p) => p.file.endsWith("model.safetensors") && progress.push(p.done) });
    expect(Buffer.compare(readFileSync(join(dir, "model.safetensors")), readFileSync(fi.path))).toBe(0);
    const gets = hub.log.cdn.filter((r) => r.path === `/repos/${fi.sha256}`);
    expect(gets.length, JSON.stringify(gets)).toBe(2);
    expect(gets[0].range).toBeUndefined();
    // the retry asks for the rest, from the bytes that reached the client (all 100000 under Node and Deno).
    // Bun's fetch hands over none of a body whose connection breaks before its end (measured), so there
    // the retry starts over: the file is still whole and checked.
    if (!runtimeName().startsWith("bun")) {
      expect(gets[1].range).toBe("bytes=100000-");
      expect(gets[1].bytes).toBe(fi.size - 100_000);
    }
    expect(progress.at(-1)).toBe(fi.size);
    // a partial blob from an earlier run: only the rest is fetched
    const r = hub.file("org/resume", "model.safetensors"), c = cfg("resume");
    const blobs = join(c.cacheDir, "models--org--resume", "blobs");
    mkdirSync(blobs, { recursive: true });
    writeFileSync(join(blobs, `${r.sha256}.incomplete`), readFileSync(r.path).subarray(0, 54_321));
    // ... and its lock, held by a process that no longer exists: taken over
    const lock = join(c.cacheDir, ".locks", "models--org--resume", `${r.sha256}.apekit-lock`);
    mkdirSync(lock, { recursive: true });
    writeFileSync(join(lock, "owner.json"), JSON.stringify({ pid: spawnSync("true").pid, host: hostname() }));
    await hubModel(parseHubId("org/resume")!, c);
    const got = hub.log.cdn.filter((x) => x.path === `/repos/${r.sha256}`);
    expect(got.map((x) => x.range)).toEqual(["bytes=54321-"]);
    expect(got[0].bytes).toBe(r.size - 54_321);
    expect(existsSync(join(blobs, `${r.sha256}.incomplete`))).toBe(false);
    expect(existsSync(lock)).toBe(false);
  });

  it("a wrong checksum is refused and leaves nothing half-written in the cache", async () => {
    const fi = hub.file("org/bad", "model.safetensors"), c = cfg("bad");
    hub.faults.corrupt.add(fi.sha256);
    try {
      const e = await rejects(hubModel(parseHubId("org/bad")!, c));
      expect(e).toBeInstanceOf(DownloadError);
      expect((e as DownloadError).code).toBe("E_DOWNLOAD_INTEGRITY");
      expect(e.message).toMatch(new RegExp(`org/bad/model\\.safetensors: sha256 [0-9a-f]{64} .* does not match the announced ${fi.sha256}`));
      const repo = join(c.cacheDir, "models--org--bad");
      expect(readdirSync(join(repo, "blobs")).filter((b) => b.startsWith(fi.sha256))).toEqual([]);
      expect(existsSync(join(repo, "snapshots", hub.commit("org/bad"), "model.safetensors"))).toBe(false);
      expect(readdirSync(join(c.cacheDir, ".locks", "models--org--bad"))).toEqual([]);
    } finally {
      hub.faults.corrupt.delete(fi.sha256);
    }
    expect(existsSync(join(await hubModel(parseHubId("org/bad")!, c), "model.safetensors"))).toBe(true);
  });

  it("a gated repo without a token: a HubAuthError asking for HF_TOKEN; with the token it downloads", async () => {
    const e = await rejects(hubModel(parseHubId("org/gated")!, cfg("gated")));
    expect(e).toBeInstanceOf(HubAuthError);
    expect((e as HubAuthError).code).toBe("E_HUB_AUTH");
    expect(e.message).toMatch(/org\/gated\/config\.json: access refused \(HTTP 401\).*gated.*set HF_TOKEN/);
    const bad = await rejects(hubModel(parseHubId("org/gated")!, cfg("gated", { token: "wrong" })));
    expect(bad).toBeInstanceOf(HubAuthError);
    expect(readdirSync(await hubModel(parseHubId("org/gated")!, cfg("gated", { token: TOKEN })))).toContain("model.safetensors");
  });

  it("404s name what is missing: a file, a revision, a repository", async () => {
    const c = cfg("missing");
    const f = await rejects(hubModel(parseHubId("org/ggufs/nope.gguf")!, c));
    expect(f).toBeInstanceOf(ModelNotFoundError);
    expect(f.message).toMatch(/org\/ggufs@main: the repository has no file 'nope\.gguf' \(GGUF files there: quant_Q8_0\.gguf, quant_F16\.gguf\)/);
    const g = await rejects(hubFile(c, "org/qwen3", hub.commit("org/qwen3"), "sub/missing.json"));
    expect(g).toBeInstanceOf(ModelNotFoundError);
    expect(g.message).toMatch(/org\/qwen3\/sub\/missing\.json: file not found \(HTTP 404\) at http:\/\/127\.0\.0\.1:\d+\/org\/qwen3\/resolve\/[0-9a-f]{40}\/sub\/missing\.json/);
    expect((await rejects(hubModel(parseHubId("org/qwen3@v9")!, c))).message).toMatch(/org\/qwen3@v9: revision not found \(HTTP 404\)/);
    const r = await rejects(hubModel(parseHubId("org/nothing")!, c));
    expect(r).toBeInstanceOf(ModelNotFoundError);
    expect(r.message).toMatch(/repository not found.*set HF_TOKEN if it is private/);
  });

  it("GGUF repos: a named file, the only .gguf of a repo, and a clear refusal when several could be meant", async () => {
    const c = cfg("gguf");
    const p = await hubModel(parseHubId("org/ggufs/quant_F16.gguf")!, c);
    expect(p).toBe(join(c.cacheDir, "models--org--ggufs", "snapshots", hub.commit("org/ggufs"), "quant_F16.gguf"));
    expect(Buffer.compare(readFileSync(p), readFileSync(`${FIX}gguf/quant_F16.gguf`))).toBe(0);
    expect(await hubModel(parseHubId("org/gguf-one")!, c)).toMatch(/models--org--gguf-one\/snapshots\/[0-9a-f]{40}\/model-q8_0\.gguf$/);
    const e = await rejects(hubModel(parseHubId("org/ggufs")!, c));
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect(e.message).toMatch(/holds 2 GGUF files; name one: org\/ggufs\/quant_Q8_0\.gguf, org\/ggufs\/quant_F16\.gguf/);
  });

  it("https:// URLs: a model folder and a GGUF file (pinned by #sha256=), cached in apekit's model cache", async () => {
    const saved = process.env.XDG_CACHE_HOME;
    process.env.XDG_CACHE_HOME = join(tmp, "xdg");
    try {
      const dir = await resolveModelSource(`${hub.endpoint}/files/models/llama_sharded/`);
      expect(dir.startsWith(join(tmp, "xdg", "apekit", "models", "url-"))).toBe(true);
      expect(readdirSync(dir).filter((f) => !f.startsWith(".")).sort()).toEqual(readdirSync(`${FIX}models/llama_sharded`).filter((f) => f !== "reference.json").sort());
      const sha = hub.file("org/ggufs", "quant_Q8_0.gguf").sha256;
      const g = await resolveModelSource(`${hub.endpoint}/files/gguf/quant_Q8_0.gguf#sha256=${sha}`);
      expect(Buffer.compare(readFileSync(g), readFileSync(`${FIX}gguf/quant_Q8_0.gguf`))).toBe(0);
      const n = hub.log.hub.length;
      expect(await resolveModelSource(`${hub.endpoint}/files/gguf/quant_Q8_0.gguf`)).toBe(g); // cached: no request
      expect(hub.log.hub.length).toBe(n);
      const bad = await rejects(resolveModelSource(`${hub.endpoint}/files/gguf/quant_F16.gguf#sha256=${"0".repeat(64)}`));
      expect((bad as DownloadError).code).toBe("E_DOWNLOAD_INTEGRITY");
      const missing = await rejects(resolveModelSource(`${hub.endpoint}/files/gguf/none.gguf`));
      expect(missing).toBeInstanceOf(ModelNotFoundError);
      expect(missing.message).toMatch(/none\.gguf: file not found \(HTTP 404\)/);
    } finally {
      if (saved === undefined) delete process.env.XDG_CACHE_HOME;
      else process.env.XDG_CACHE_HOME = saved;
    }
  });

  it.skipIf(runtimeName().startsWith("bun") || runtimeName().startsWith("deno"))(
    "two processes downloading the same model at once: one download, both succeed (Node only: it spawns Deno children)",
    async () => {
      hub.faults.throttle = 400_000; // bytes/s: each LFS body takes about a second, so the two overlap
      const cache = join(tmp, "two");
      const run = () =>
        new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
          const p = spawn(DENO, ["run", "-A", "test/hub_child.ts", "org/two"], {
            cwd: ROOT,
            env: { ...process.env, HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: cache, HF_TOKEN: "", HF_HUB_OFFLINE: "" },
          });
          let out = "", err = "";
          p.stdout.on("data", (d) => (out += d));
          p.stderr.on("data", (d) => (err += d));
          p.on("close", (code) => resolve({ code, out, err }));
        });
      const seen = { hub: hub.log.hub.length, cdn: hub.log.cdn.length }; // org/bad serves the same blobs
      try {
        const [a, b] = await Promise.all([run(), run()]);
        expect(a.code, a.err).toBe(0);
        expect(b.code, b.err).toBe(0);
        const pa = JSON.parse(a.out).path, pb = JSON.parse(b.out).path;
        expect(pa).toBe(pb);
        expect(pa).toBe(join(cache, "models--org--two", "snapshots", hub.commit("org/two")));
        const w = hub.file("org/two", "model.safetensors");
        const gets = hub.log.cdn.slice(seen.cdn).filter((r) => r.method === "GET" && r.path === `/repos/${w.sha256}`);
        expect(gets.length, `one download of the weights: ${JSON.stringify(gets)}`).toBe(1);
        expect(gets[0].bytes).toBe(w.size);
        for (const f of ["config.json", "tokenizer.json"]) {
          expect(hub.log.hub.slice(seen.hub).filter((r) => r.method === "GET" && r.path.endsWith(`/org/two/resolve/${hub.commit("org/two")}/${f}`)).length, f).toBe(1);
        }
        expect(Buffer.compare(readFileSync(join(pa, "model.safetensors")), readFileSync(w.path))).toBe(0);
      } finally {
        hub.faults.throttle = 0;
      }
    },
  );
});

describe(`ape logits --model <hub id> (spawned from ${runtimeName()})`, () => {
  it("loads a hub model through HF_ENDPOINT / HF_HUB_CACHE, matches transformers, then again with HF_HUB_OFFLINE=1", async () => {
    const ref = JSON.parse(readFileSync(`${FIX}models/qwen3/reference.json`, "utf8"));
    const c = ref.logits[1];
    const cache = join(tmp, "cli");
    const ape = (env: Record<string, string>) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const p = spawn(DENO, ["run", "-A", "sdk/cli.ts", "logits", "--model", "org/qwen3", "--ids", c.ids.join(","), "--json"], {
          cwd: ROOT, env: { ...process.env, XDG_RUNTIME_DIR: "/tmp", HF_HUB_CACHE: cache, HF_TOKEN: "", ...env },
        });
        let out = "", err = "";
        p.stdout.on("data", (d) => (out += d));
        p.stderr.on("data", (d) => (err += d));
        p.on("close", (code) => resolve({ code, out, err }));
      });
    const online = await ape({ HF_ENDPOINT: hub.endpoint, HF_HUB_OFFLINE: "" });
    expect(online.code, online.err).toBe(0);
    const want = c.logits[c.logits.length - 1] as number[];
    const got = JSON.parse(online.out).logits as number[];
    let num = 0, den = 0;
    got.forEach((v, i) => ((num += (v - want[i]) ** 2), (den += want[i] ** 2)));
    expect(Math.sqrt(num / den)).toBeLessThan(1e-4);
    const offline = await ape({ HF_ENDPOINT: "http://127.0.0.1:9", HF_HUB_OFFLINE: "1" });
    expect(offline.code, offline.err).toBe(0);
    expect(JSON.parse(offline.out).logits).toEqual(got);
  });
});
