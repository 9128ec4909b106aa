// The engine against Hugging Face transformers: tiny random-weight models in real HF format, one per
// supported architecture/option, with float64 reference logits made on the GPU machine by
// scripts/make_fixtures.py (see fixtures/README.md). Besides the adapter's default kernels, the GPU "lanes" layout:
// decode one row at a time, and forwards of 7 and 40 rows (the batched matvec with RMSNorm fused, the LM head over
// logit rows from an offset).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readdirSync, readFileSync } from "node:fs";
import { loadHfFolder, type Model } from "../src/model/model.ts";
import { Engine } from "../src/engine/engine.ts";
import { type ApeMode, modeLogits, sequentialLogits } from "../src/ape/ape.ts";
import { runtimeName } from "../src/runtime.ts";
import { Forward } from "../src/engine/forward.ts";
import { relError } from "./reference/random_model.ts";
import { expectGreedyMatches, expectLanesDecodeMatches } from "./reference/fixture_decode.ts";

interface Reference {
  logits: { ids: number[]; logits: number[][] }[];
  greedy: { prompt: number[]; tokens: number[] };
  ape: { mode: ApeMode; prefix: number[]; contexts: number[][]; query: number[]; temperature: number; scale: number; logits: number[] }[];
}

const ROOT = new URL("../fixtures/models/", import.meta.url);
const MODELS = readdirSync(ROOT).filter((d) => !d.startsWith("."));

describe.each(MODELS)(`HF fixture %s on ${runtimeName()}`, (name) => {
  const dir = new URL(`${name}/`, ROOT).pathname;
  const ref: Reference = JSON.parse(readFileSync(`${dir}reference.json`, "utf8"));
  let model: Model, engine: Engine;
  beforeAll(async () => {
    model = await loadHfFolder(dir);
    engine = new Engine(model, { kvBudgetBytes: 4 << 20 });
  });
  afterAll(() => {
    engine?.destroy();
    model?.destroy();
  });

  it("logits match transformers at every position (f32 compute, rel. error <= 1e-4)", async () => {
    const V = model.config.vocabSize;
    for (const c of ref.logits) {
      const got = await sequentialLogits(engine, Uint32Array.from(c.ids), true);
      c.logits.forEach((want, p) => expect(relError(got.subarray(p * V, (p + 1) * V), want)).toBeLessThan(1e-4));
    }
  });

  it("greedy generation reproduces transformers' tokens", async () => {
    await expectGreedyMatches(engine, ref);
  });

  it("decode kernels (one row at a time, GPU 'lanes' layout: RMSNorm and SwiGLU fused into the projections) match at every position", async () => {
    await expectLanesDecodeMatches(engine, ref, 1e-4);
  });

  it("batched rows in the GPU 'lanes' layout (matvec_batch with RMSNorm fused, no rmsnorm_copy) match at every position", async () => {
    // 7 rows, logits of rows 2..6: every projection and the LM head take the batched matvec, the norms in its input
    // stage, the LM head reading x from row 2; 40 rows, logits of rows 9..39: the layers take the tiled matmul after
    // rmsnorm_copy, the LM head (31 rows) the batched matvec with its norm, reading x from row 9 (the fixtures' layers
    // are all narrower than BATCH_NORM_MAX_ROWS, so every batched one fuses its norm)
    const V = model.config.vocabSize, L = model.config.layers;
    model.matvecLayout = "lanes";
    try {
      for (const [c, from, copies] of [[ref.logits[1], 2, 0], [ref.logits[2], 9, 2 * L]] as const) {
        const n = c.ids.length;
        const block = engine.pool.allocate(n, 0);
        const fwd = new Forward(model, engine.pool, n, { groups: [{ rows: n, write: block, writeAt: 0, plain: [block] }], logits: { from, count: n - from } });
        try {
          const kernels = fwd.program.steps.map((s) => s.pipeline.label);
          expect(kernels.filter((k) => k === "rmsnorm_copy").length, `${n} rows`).toBe(copies);
          expect(kernels.at(-1), `${n} rows: the LM head`).toMatch(/^matvec_batch_/);
          if (n <= 32) expect(kernels.filter((k) => k.startsWith("matvec_batch_")).length).toBeGreaterThanOrEqual(4 * L + 1);
          fwd.setIds(Uint32Array.from(c.ids));
          fwd.program.submit();
          const got = await fwd.readLogits();
          for (let p = from; p < n; p++) expect(relError(got.subarray((p - from) * V, (p - from + 1) * V), c.logits[p]), `${n} rows, position ${p}`).toBeLessThan(1e-4);
        } finally {
          fwd.destroy();
          engine.pool.release(block);
        }
      }
    } finally {
      model.matvecLayout = undefined;
    }
  });

  it("sequential, parallel and APE logits match the PyTorch implementation of the formula", async () => {
    for (const c of ref.ape) {
      const got = await modeLogits(engine, c.mode, {
        prefix: Uint32Array.from(c.prefix), contexts: c.contexts.map((x) => Uint32Array.from(x)), query: Uint32Array.from(c.query),
        temperature: c.temperature, scale: c.scale,
      });
      expect(relError(got, c.logits), `${c.mode} T=${c.temperature} S=${c.scale}`).toBeLessThan(1e-4);
    }
  });

  it("f16 weight storage stays within 2e-2 of transformers, with its own fingerprint", async () => {
    const half = await loadHfFolder(dir, undefined, { weightDtype: "f16" });
    const e = new Engine(half, { kvBudgetBytes: 1 << 20 });
    try {
      expect(half.layers[0].qkv.format).toBe("f16");
      expect(half.fingerprint).not.toBe(model.fingerprint);
      const V = half.config.vocabSize, c = ref.logits[2];
      const got = await sequentialLogits(e, Uint32Array.from(c.ids), true);
      c.logits.forEach((want, p) => expect(relError(got.subarray(p * V, (p + 1) * V), want)).toBeLessThan(2e-2));
    } finally {
      e.destroy();
      half.destroy();
    }
  });

  it("the fingerprint is stable for the same folder", async () => {
    const again = await loadHfFolder(dir);
    expect(again.fingerprint).toBe(model.fingerprint);
    again.destroy();
  });
});

describe(`f16 KV cache on ${runtimeName()}`, () => {
  it.each(["llama3", "qwen3"])("%s: APE logits within 2e-2 of transformers; cached contexts round-trip through f16 cache files", async (name) => {
    const dir = new URL(`${name}/`, ROOT).pathname;
    const ref: Reference = JSON.parse(readFileSync(`${dir}reference.json`, "utf8"));
    const model = await loadHfFolder(dir);
    const engine = new Engine(model, { kvBudgetBytes: 1 << 20, kvDtype: "f16" });
    try {
      expect(engine.pool.dtype).toBe("f16");
      for (const c of ref.ape.filter((x) => x.mode === "ape").slice(0, 3)) {
        const got = await modeLogits(engine, "ape", {
          prefix: Uint32Array.from(c.prefix), contexts: c.contexts.map((x) => Uint32Array.from(x)), query: Uint32Array.from(c.query),
          temperature: c.temperature, scale: c.scale,
        });
        expect(relError(got, c.logits)).toBeLessThan(2e-2);
      }
      const { encodePrefix, encodeContexts } = await import("../src/ape/ape.ts");
      const { readBlock, writeBlock } = await import("../src/engine/kv_transfer.ts");
      const { kvCodec } = await import("../src/cache/kv_codec.ts");
      const pre = await encodePrefix(engine, Uint32Array.from([1, 2]));
      const [block] = await encodeContexts(engine, pre, [Uint32Array.from([3, 4, 5])]);
      const host = await readBlock(engine.pool, block);
      expect(host.k[0]).toBeInstanceOf(Uint16Array);
      const codec = kvCodec(model, "f16");
      const meta = { modelFingerprint: model.fingerprint, tokenizerFingerprint: "t", prefixHash: "p", kind: "context" as const, tokenIds: Uint32Array.from([3, 4, 5]), firstPos: 2 };
      const back = codec.decode(codec.encode(meta, host), { modelFingerprint: model.fingerprint, tokenizerFingerprint: "t", prefixHash: "p" });
      const copy = engine.pool.allocate(3, 2);
      writeBlock(engine.pool, copy, back.kv);
      const again = await readBlock(engine.pool, copy);
      expect(Array.from(again.v[1])).toEqual(Array.from(host.v[1]));
      expect(() => kvCodec(model, "f32").decode(codec.encode(meta, host), { modelFingerprint: model.fingerprint, tokenizerFingerprint: "t", prefixHash: "p" })).toThrow(/dtype/);
    } finally {
      engine.destroy();
      model.destroy();
    }
  });
});
