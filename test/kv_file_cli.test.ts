/** `ape kv inspect <file> --json` and `ape kv verify <file>`: output and exit codes. */
import { spawnSync } from "node:child_process";
import process from "node:process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { run } from "../sdk/commands/kv.ts";
import { KvWriter, serializeKv } from "../src/kv/mod.ts";
import { meta, tensors } from "./kv_file_util.ts";

const dir = mkdtempSync(join(tmpdir(), "apekit-kv-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

const m = meta();
const good = serializeKv(m, tensors(m)).toBytes();
const goodPath = join(dir, "good.kv");
writeFileSync(goodPath, good);
const damaged = good.slice();
damaged[damaged.length - 1] ^= 1;
const damagedPath = join(dir, "damaged.kv");
writeFileSync(damagedPath, damaged);
const unfinishedPath = join(dir, "unfinished.kv");
{
  const w = new KvWriter(m);
  writeFileSync(unfinishedPath, new Uint8Array([...w.header, ...good.subarray(w.header.length)]));
  w.dispose();
}

async function ape(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, "log").mockImplementation((...a) => void out.push(a.join(" ")));
  vi.spyOn(console, "error").mockImplementation((...a) => void err.push(a.join(" ")));
  const code = await run(args);
  vi.restoreAllMocks();
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("ape kv", () => {
  it("inspect --json prints the metadata and the tensor table", async () => {
    const r = await ape("inspect", goodPath, "--json");
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.file).toBe(goodPath);
    expect(j.verified).toBe(true);
    expect(j.meta).toMatchObject({
      format: "apekit.kv",
      formatVersion: 1,
      kind: "context",
      modelFingerprint: "model-0123abcd",
      tokenizerFingerprint: "tok-4567",
      prefixHash: "prefix-89ab",
      tokenIds: [1000, 1037, 1074, 1111, 1148],
      firstPos: 7,
      dtype: "F16",
      layers: 3,
      kvHeads: 2,
      headDim: 4,
      tokens: 5,
    });
    expect(j.meta.checksum).toMatch(/^[0-9a-f]{16}$/);
    expect(j.tensors).toHaveLength(6);
    expect(j.tensors[1]).toMatchObject({ name: "v.0", layer: 0, kv: "v", dtype: "F16", shape: [2, 5, 4], byteLength: 80 });
    expect(j.layout.byteLength).toBe(good.length);
  });

  it("inspect without --json prints a readable table", async () => {
    const r = await ape("inspect", goodPath);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/model fingerprint\s+model-0123abcd/);
    expect(r.out).toMatch(/v\.2\s+F16\s+\[2, 5, 4\]/);
  });

  it("inspect exits non-zero with the error's message for a bad file", async () => {
    for (const [path, msg] of [
      [damagedPath, /payload checksum mismatch/],
      [unfinishedPath, /never finished/],
      [join(dir, "missing.kv"), /cannot open/],
    ] as const) {
      const r = await ape("inspect", path, "--json");
      expect(r.code).not.toBe(0);
      expect(r.out).toBe("");
      expect(r.err).toMatch(msg);
    }
    const h = await ape("inspect", damagedPath, "--json", "--header-only");
    expect(h.code).toBe(0);
    expect(JSON.parse(h.out).verified).toBe(false);
  });

  it("verify exits 0 only for a sound file", async () => {
    expect((await ape("verify", goodPath)).code).toBe(0);
    expect((await ape("verify", goodPath)).out).toMatch(/^ok /);
    const bad = await ape("verify", damagedPath);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/CacheCorruptError: payload checksum mismatch/);
    expect((await ape("verify", unfinishedPath)).code).toBe(1);
    const mm = await ape("verify", goodPath, "--expect-model", "other");
    expect(mm.code).toBe(1);
    expect(mm.err).toMatch(/CacheMismatchError: modelFingerprint/);
    expect((await ape("verify", goodPath, "--expect-model", "model-0123abcd")).code).toBe(0);
  });

  it("usage errors exit 2", async () => {
    expect((await ape()).code).toBe(2);
    expect((await ape("verify")).code).toBe(2);
    expect((await ape("inspect", goodPath, goodPath)).code).toBe(2);
  });

  it("runs through the real CLI (sdk/cli.ts under Deno)", () => {
    const deno = new URL("../node_modules/@deno/linux-x64-glibc/deno", import.meta.url).pathname;
    const cli = new URL("../sdk/cli.ts", import.meta.url).pathname;
    const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? "/tmp", NO_COLOR: "1" };
    const ok = spawnSync(deno, ["run", "-A", cli, "kv", "inspect", goodPath, "--json"], { encoding: "utf8", env });
    expect(ok.status, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).meta.tokens).toBe(5);
    const bad = spawnSync(deno, ["run", "-A", cli, "kv", "verify", damagedPath], { encoding: "utf8", env });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/payload checksum mismatch/);
    expect(spawnSync(deno, ["run", "-A", cli, "kv", "verify", goodPath], { encoding: "utf8", env }).status).toBe(0);
  });
});
