import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { getGpu } from "../src/gpu/device.ts";
import { buildModel, type Model } from "../src/model/model.ts";
import { Engine } from "../src/engine/engine.ts";
import { encodePrefix, queryLogits } from "../src/ape/ape.ts";
import { ContextCache, contextId, prefixHash } from "../src/cache/context_cache.ts";
import { kvCodec } from "../src/cache/kv_codec.ts";
import { openStore } from "../src/cache/store.ts";
import { runtimeName } from "../src/runtime.ts";
import { CpuReference } from "./reference/cpu_model.ts";
import { randomModel, relError, tinyConfig } from "./reference/random_model.ts";

describe(`context cache tiers on ${runtimeName()}`, () => {
  const cfg = tinyConfig();
  let model: Model, engine: Engine, ref: CpuReference;
  beforeAll(async () => {
    const { tensors, ref: w } = randomModel(cfg, 12);
    model = buildModel(await getGpu(), cfg, { get: (n) => tensors.get(n) }, { source: "random", fingerprintSeed: "c" });
    engine = new Engine(model, { kvBudgetBytes: 1 << 20 });
    ref = new CpuReference(cfg, w);
  });
  afterAll(() => {
    engine?.destroy();
    model?.destroy();
  });

  it("encodes misses once, then serves GPU, host and store hits with identical logits; rejects damaged entries", async () => {
    const prefixIds = Uint32Array.from([1, 2, 3]);
    const prefix = await encodePrefix(engine, prefixIds);
    const store = await openStore(pathToFileURL(mkdtempSync(join(tmpdir(), "apekit-cc-"))).href);
    const scope = { modelFingerprint: model.fingerprint, tokenizerFingerprint: "tok", prefixHash: prefixHash(model.fingerprint, prefixIds), prefix };
    const cache = new ContextCache(engine, store, kvCodec(model), scope);
    const docs = [[4, 5, 6, 7, 8], [9, 10], [11, 12, 13]].map((d) => Uint32Array.from(d));
    const refs = docs.map((ids) => ({ id: contextId(model.fingerprint, "tok", scope.prefixHash, ids), ids }));
    const query = Uint32Array.from([14, 15]);
    const want = ref.ape([1, 2, 3], docs.map((d) => Array.from(d)), [14, 15], 0.9, 0.9);
    const ask = async () => {
      const blocks = await cache.acquire(refs);
      try {
        return await queryLogits(engine, { prefix, contexts: blocks, query, temperature: 0.9, scale: 0.9 });
      } finally {
        cache.release(refs);
      }
    };
    expect(relError(await ask(), want)).toBeLessThan(1e-4);
    expect(cache.stats.misses).toBe(3);
    expect((await store.list()).length).toBe(3);
    await ask();
    expect(cache.stats.hits.gpu).toBe(3);
    cache.clearGpu();
    expect(relError(await ask(), want)).toBeLessThan(1e-4);
    expect(cache.stats.hits.host).toBe(3);
    cache.clearGpu();
    cache.clearHost();
    expect(relError(await ask(), want)).toBeLessThan(1e-4);
    expect(cache.stats.hits.store).toBe(3);
    // damage one entry and give another one a different model's fingerprint: neither is used
    const bad = (await store.get(refs[0].id))!;
    bad[bad.length - 5] ^= 0x40;
    await store.put(refs[0].id, bad);
    const other = kvCodec(model).encode({ ...scope, modelFingerprint: "another-model", kind: "context", tokenIds: docs[1], firstPos: 3 },
      { k: Array.from({ length: cfg.layers }, () => new Float32Array(cfg.kvHeads * 2 * cfg.headDim)), v: Array.from({ length: cfg.layers }, () => new Float32Array(cfg.kvHeads * 2 * cfg.headDim)), tokens: 2 });
    await store.put(refs[1].id, other);
    cache.clearGpu();
    cache.clearHost();
    expect(relError(await ask(), want)).toBeLessThan(1e-4);
    expect(cache.stats.rejected).toBe(2);
    expect(cache.problems.join("\n")).toMatch(/checksum/i);
    expect(cache.problems.join("\n")).toMatch(/modelFingerprint/);
    // the re-encoded entries replaced the damaged ones
    cache.clearGpu();
    cache.clearHost();
    await ask();
    expect(cache.stats.rejected).toBe(2);
    await store.close();
  });

  it("evicts the least recently used unpinned contexts when the GPU budget is full, never pinned ones", async () => {
    const small = new Engine(model, { kvBudgetBytes: 40 * 2 * cfg.layers * cfg.kvHeads * cfg.headDim * 4 }); // 40 token slots
    try {
      const prefixIds = Uint32Array.from([1]);
      const prefix = await encodePrefix(small, prefixIds);
      const scope = { modelFingerprint: model.fingerprint, tokenizerFingerprint: "t", prefixHash: prefixHash(model.fingerprint, prefixIds), prefix };
      const cache = new ContextCache(small, await openStore("memory:"), kvCodec(model), scope);
      const mk = (seed: number) => {
        const ids = Uint32Array.from({ length: 10 }, (_, i) => (seed * 7 + i) % cfg.vocabSize);
        return { id: contextId(model.fingerprint, "t", scope.prefixHash, ids), ids };
      };
      const a = mk(1), b = mk(2), c = mk(3), d = mk(4), e = mk(5);
      await cache.acquire([a, b, c]);
      cache.release([a, b]); // c stays pinned
      await cache.acquire([d, e]); // needs 20 slots: only 9 free, so a then b are evicted
      expect(cache.stats.evictions.gpu).toBe(2);
      await cache.acquire([c]);
      expect(cache.stats.hits.gpu).toBe(1); // c was never evicted
      await expect(cache.acquire([mk(6), mk(7), mk(8), mk(9)])).rejects.toThrow(/KV budget exhausted/); // all pinned
      cache.release([c, d, e]);
      await cache.acquire([mk(6)]); // once unpinned, they can be evicted again
      expect(cache.stats.evictions.gpu).toBe(3);
    } finally {
      small.destroy();
    }
  });
});
