// ContextCache.evict(id) (issue 18's DELETE /v1/contexts/:id): one context leaves every tier at once
// (GPU block, host copy, store entry), so a later acquire re-encodes it; a block that a running request
// attends is never freed under it: it leaves the cache at once and is freed at its last pin. Checked on
// the real ContextCache + KvPool + engine of a tiny random model against the float64 CPU reference.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getGpu } from "../src/gpu/device.ts";
import { buildModel, type Model } from "../src/model/model.ts";
import { Engine } from "../src/engine/engine.ts";
import { encodePrefix, type EncodedPrefix, queryLogits } from "../src/ape/ape.ts";
import { ContextCache, contextId, prefixHash } from "../src/cache/context_cache.ts";
import { kvCodec } from "../src/cache/kv_codec.ts";
import { openStore, type KvStore } from "../src/cache/store.ts";
import { runtimeName } from "../src/runtime.ts";
import { Contexts } from "../sdk/contexts.ts";
import { CpuReference } from "./reference/cpu_model.ts";
import { randomModel, relError, tinyConfig } from "./reference/random_model.ts";

/** A memory store whose get / put can be held back. */
async function heldStore(): Promise<KvStore & { hold?: Promise<void> }> {
  const inner = await openStore("memory:");
  const s: KvStore & { hold?: Promise<void> } = {
    url: "memory:held", hold: undefined,
    get: async (k) => (await s.hold, inner.get(k)),
    put: async (k, v) => (await s.hold, inner.put(k, v)),
    delete: (k) => inner.delete(k),
    list: () => inner.list(),
    close: () => inner.close(),
  };
  return s;
}

describe(`context cache eviction on ${runtimeName()}`, () => {
  const cfg = tinyConfig();
  let model: Model, engine: Engine, ref: CpuReference, prefix: EncodedPrefix;
  const prefixIds = Uint32Array.from([1, 2, 3]);
  beforeAll(async () => {
    const { tensors, ref: w } = randomModel(cfg, 18);
    model = buildModel(await getGpu(), cfg, { get: (n) => tensors.get(n) }, { source: "random", fingerprintSeed: "ev" });
    engine = new Engine(model, { kvBudgetBytes: 1 << 20 });
    ref = new CpuReference(cfg, w);
    prefix = await encodePrefix(engine, prefixIds);
  });
  afterAll(() => {
    engine?.destroy();
    model?.destroy();
  });

  const scopeOf = () => ({ modelFingerprint: model.fingerprint, tokenizerFingerprint: "tok", prefixHash: prefixHash(model.fingerprint, prefixIds), prefix });
  const refOf = (ids: number[]) => {
    const u = Uint32Array.from(ids);
    return { id: contextId(model.fingerprint, "tok", scopeOf().prefixHash, u), ids: u };
  };
  const baseline = () => ({ free: engine.pool.freeTokens(), live: engine.pool.liveBlocks });
  const query = Uint32Array.of(14, 15);
  const logitsOk = async (blocks: Parameters<typeof queryLogits>[1]["contexts"], docs: number[][]) => {
    const got = await queryLogits(engine, { prefix, contexts: blocks, query, temperature: 0.9, scale: 0.9 });
    expect(relError(got, ref.ape([1, 2, 3], docs, [14, 15], 0.9, 0.9))).toBeLessThan(1e-4);
  };

  it("an idle context leaves the GPU, host and store tiers at once; the next acquire re-encodes it", async () => {
    const base = baseline();
    const store = await heldStore();
    const cache = new ContextCache(engine, store, kvCodec(model), scopeOf());
    const doc = refOf([4, 5, 6, 7, 8, 9]), other = refOf([10, 11, 12]);
    (await cache.lease([doc, other])).release();
    expect(cache.stats.entries).toEqual({ gpu: 2, host: 2 });
    const bytes = cache.stats.bytes;
    expect(await cache.evict(doc.id)).toEqual({ gpu: "freed", host: true });
    expect(engine.pool.liveBlocks).toBe(base.live + 1); // only `other` is left
    expect(cache.stats.entries).toEqual({ gpu: 1, host: 1 });
    expect(cache.stats.bytes.gpu).toBeLessThan(bytes.gpu);
    expect(cache.stats.bytes.host).toBeLessThan(bytes.host);
    expect(await store.get(doc.id)).toBeUndefined();
    expect(await store.get(other.id)).toBeDefined();
    const again = await cache.lease([doc]);
    expect(again.stats).toMatchObject({ misses: 1, hits: { gpu: 0, host: 0, store: 0 } }); // not served from a stale copy
    await logitsOk(again.blocks, [[4, 5, 6, 7, 8, 9]]);
    again.release();
    expect(await cache.evict(refOf([99]).id)).toEqual({ gpu: "absent", host: false }); // unknown: nothing to do
    cache.clearGpu();
    expect(baseline()).toEqual(base);
  });

  it("a context a running request attends is taken out of the cache but freed only at its last pin", async () => {
    const base = baseline();
    const cache = new ContextCache(engine, await heldStore(), kvCodec(model), scopeOf());
    const doc = refOf([20, 21, 22, 23, 24, 25, 26, 27]);
    const running = await cache.lease([doc]);
    const second = await cache.lease([doc]); // two requests attend it
    expect(await cache.evict(doc.id)).toEqual({ gpu: "deferred", host: true });
    expect(engine.pool.liveBlocks).toBe(base.live + 1); // still allocated
    expect(cache.stats.entries.gpu).toBe(0);
    expect(cache.pinnedCount).toBe(1);
    // the freed slots would be the first taken: a same-sized other context and a fresh copy of doc
    const filler = await cache.lease([refOf([40, 41, 42, 43, 44, 45, 46, 47])]);
    const fresh = await cache.lease([doc]);
    expect(fresh.stats.misses).toBe(1); // a new copy, not the evicted block
    expect(fresh.blocks[0]).not.toBe(running.blocks[0]);
    cache.clearGpu(); // frees nothing pinned, evicted or not
    await logitsOk(running.blocks, [[20, 21, 22, 23, 24, 25, 26, 27]]); // the running request's keys and values are intact
    running.release();
    expect(engine.pool.liveBlocks).toBe(base.live + 3); // second still holds it
    await logitsOk(second.blocks, [[20, 21, 22, 23, 24, 25, 26, 27]]);
    second.release();
    second.release();
    expect(engine.pool.liveBlocks).toBe(base.live + 2); // freed at its last pin: filler and the fresh copy remain
    filler.release();
    fresh.release();
    expect(cache.pinnedCount).toBe(0);
    cache.clearGpu();
    expect(baseline()).toEqual(base);
  });

  it("acquire()/release(refs) pins are exact across an eviction; an encode in flight is waited for", async () => {
    const base = baseline();
    const store = await heldStore();
    const cache = new ContextCache(engine, store, kvCodec(model), scopeOf());
    const doc = refOf([30, 31, 32, 33]);
    const [old] = await cache.acquire([doc]);
    await cache.evict(doc.id);
    const [renewed] = await cache.acquire([doc]); // re-encoded into a new block
    expect(renewed).not.toBe(old);
    cache.release([doc]); // gives back the first acquire's pin: the evicted block, not the new one's
    expect(engine.pool.liveBlocks).toBe(base.live + 1);
    cache.clearGpu();
    expect(engine.pool.liveBlocks).toBe(base.live + 1); // the renewed block is still pinned
    await logitsOk([renewed], [[30, 31, 32, 33]]);
    cache.release([doc]);
    cache.release([doc]); // once too often: nothing more to give back
    cache.clearGpu();
    expect(baseline()).toEqual(base);
    expect(await cache.evict(doc.id)).toEqual({ gpu: "absent", host: true }); // off the GPU already: the host copy goes
    expect(cache.stats.entries).toEqual({ gpu: 0, host: 0 });

    // an encode whose store write is held back: evict waits for it, so it cannot bring the context back
    let open!: () => void;
    store.hold = new Promise((r) => (open = r));
    const late = refOf([34, 35, 36]);
    const encoding = cache.lease([late]);
    await new Promise((r) => setTimeout(r, 10));
    const evicting = cache.evict(late.id);
    open();
    const lease = await encoding;
    expect(await evicting).toEqual({ gpu: "deferred", host: true });
    expect(await store.get(late.id)).toBeUndefined();
    expect(cache.stats.entries).toEqual({ gpu: 0, host: 0 });
    await logitsOk(lease.blocks, [[34, 35, 36]]);
    lease.release();
    cache.clearGpu();
    expect(baseline()).toEqual(base);
  });

  it("a corpus three times the GPU pool caches in groups (sdk Contexts.cacheTexts): evicted to the host, every context still answers", async () => {
    const base = baseline();
    const cache = new ContextCache(engine, await heldStore(), kvCodec(model), scopeOf());
    // documents as token ids: "d<i>" names document i, 20 tokens each (the block a context takes: its tokens)
    const V = cfg.vocabSize - 4; // (ids 4.. : the first two tokens spell i, so no two documents are alike)
    const docIds = (text: string) => {
      const i = Number(text.slice(1));
      return Uint32Array.from({ length: 20 }, (_, j) => 4 + (j === 0 ? i % V : j === 1 ? Math.floor(i / V) % V : (i * 7 + j) % V));
    };
    const contexts = new Contexts(cache, docIds, "f32");
    const n = Math.ceil((3 * engine.pool.capacity) / 20);
    const texts = Array.from({ length: n }, (_, i) => `d${i}`);
    const seen: number[] = [];
    const handles = await contexts.cacheTexts(texts, (done, total) => {
      expect(total).toBe(n);
      seen.push(done);
    });
    expect(handles.length).toBe(n);
    expect(seen.at(-1)).toBe(n); // progress runs over the whole corpus, in order
    expect(seen.every((d, i) => i === 0 || d >= seen[i - 1])).toBe(true);
    expect(cache.stats.misses).toBe(n);
    expect(cache.stats.evictions.gpu).toBeGreaterThan(0);
    expect(cache.stats.entries.host).toBe(n);
    // the first documents left the GPU long ago: a lease brings them back from the host, and they are right
    const pick = [0, 1, n - 1].map((i) => ({ id: handles[i].id, ids: docIds(texts[i]) }));
    const lease = await cache.lease(pick);
    try {
      expect(cache.stats.misses).toBe(n); // no re-encode
      await logitsOk(lease.blocks, pick.map((p) => [...p.ids]));
    } finally {
      lease.release();
    }
    await cache.clearGpu();
    expect(baseline()).toEqual(base);
  });
});
