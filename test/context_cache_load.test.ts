// The context cache and KV pool under overlapping calls (issue 17): one encode and one block per
// context however many callers ask at once, pins and blocks released exactly once on every path
// (failed encodes, failed store writes, duplicate ids, repeated releases), per-call figures.
// Real ContextCache + KvPool + engine on a tiny random model; the store is wrapped to control timing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getGpu } from "../src/gpu/device.ts";
import { buildModel, type Model } from "../src/model/model.ts";
import { Engine } from "../src/engine/engine.ts";
import { encodePrefix, type EncodedPrefix, queryLogits } from "../src/ape/ape.ts";
import { ContextCache, contextId, prefixHash } from "../src/cache/context_cache.ts";
import { kvCodec } from "../src/cache/kv_codec.ts";
import { openStore, type KvStore } from "../src/cache/store.ts";
import { runtimeName } from "../src/runtime.ts";
import { CpuReference } from "./reference/cpu_model.ts";
import { randomModel, relError, tinyConfig } from "./reference/random_model.ts";

/** A memory store whose get / put can be held back or made to fail. */
async function controlledStore(): Promise<KvStore & { gets: number; puts: number; failPuts: boolean; hold?: Promise<void> }> {
  const inner = await openStore("memory:");
  const s = {
    url: "memory:controlled", gets: 0, puts: 0, failPuts: false, hold: undefined as Promise<void> | undefined,
    async get(k: string) {
      s.gets++;
      await s.hold;
      return inner.get(k);
    },
    async put(k: string, v: Uint8Array) {
      s.puts++;
      await s.hold;
      if (s.failPuts) throw new Error("store unreachable (test)");
      return inner.put(k, v);
    },
    delete: (k: string) => inner.delete(k),
    list: () => inner.list(),
    close: () => inner.close(),
  };
  return s;
}

describe(`context cache under overlapping calls on ${runtimeName()}`, () => {
  const cfg = tinyConfig();
  let model: Model, engine: Engine, ref: CpuReference, prefix: EncodedPrefix;
  const prefixIds = Uint32Array.from([1, 2, 3]);
  beforeAll(async () => {
    const { tensors, ref: w } = randomModel(cfg, 12);
    model = buildModel(await getGpu(), cfg, { get: (n) => tensors.get(n) }, { source: "random", fingerprintSeed: "cl" });
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
  // the pool's state with only the prefix allocated: what every test must return to
  const baseline = () => ({ free: engine.pool.freeTokens(), live: engine.pool.liveBlocks });

  it("two concurrent acquires of one new context run one encode and share one block", async () => {
    const base = baseline();
    const cache = new ContextCache(engine, await controlledStore(), kvCodec(model), scopeOf());
    const doc = refOf([4, 5, 6, 7, 8, 9, 10, 11]);
    const [a, b] = await Promise.all([cache.acquire([doc]), cache.acquire([doc])]);
    expect(cache.stats.misses).toBe(1);
    expect(cache.stats.hits.gpu).toBe(1);
    expect(b[0]).toBe(a[0]);
    expect(engine.pool.liveBlocks).toBe(base.live + 1);
    // the shared block holds the right keys and values
    const want = ref.ape([1, 2, 3], [Array.from(doc.ids)], [14, 15], 0.9, 0.9);
    expect(relError(await queryLogits(engine, { prefix, contexts: a, query: Uint32Array.of(14, 15), temperature: 0.9, scale: 0.9 }), want)).toBeLessThan(1e-4);
    cache.release([doc]);
    cache.release([doc]);
    cache.clearGpu();
    expect(baseline()).toEqual(base); // nothing leaked
  });

  it("two concurrent acquires of a stored context load it once into one block", async () => {
    const base = baseline();
    const store = await controlledStore();
    const cache = new ContextCache(engine, store, kvCodec(model), scopeOf());
    const doc = refOf([20, 21, 22, 23, 24]);
    await cache.acquire([doc]);
    cache.release([doc]);
    cache.clearGpu();
    cache.clearHost();
    let open!: () => void;
    store.hold = new Promise((r) => (open = r));
    const both = Promise.all([cache.acquire([doc]), cache.acquire([doc])]);
    await new Promise((r) => setTimeout(r, 20));
    open();
    const [a, b] = await both;
    expect(b[0]).toBe(a[0]);
    expect(cache.stats.hits.store).toBe(1);
    expect(cache.stats.hits.gpu).toBe(1);
    expect(store.gets).toBe(2); // the first acquire's miss, then one load
    cache.release([doc]);
    cache.release([doc]);
    cache.clearGpu();
    expect(baseline()).toEqual(base);
  });

  it("a failing store write frees the blocks it encoded and leaves nothing pinned, for the caller and a waiter", async () => {
    const base = baseline();
    const store = await controlledStore();
    store.failPuts = true;
    const cache = new ContextCache(engine, store, kvCodec(model), scopeOf());
    const docs = [refOf([30, 31, 32, 33, 34, 35, 36, 37, 38, 39]), refOf([40, 41, 42, 43, 44, 45, 46, 47, 48, 49])];
    const [first, waiter] = await Promise.allSettled([cache.acquire(docs), cache.acquire([docs[1]])]);
    expect(first.status).toBe("rejected");
    expect(waiter.status).toBe("rejected");
    expect(String((first as PromiseRejectedResult).reason)).toMatch(/store unreachable/);
    expect(cache.pinnedCount).toBe(0);
    expect(baseline()).toEqual(base); // freed at once, without clearGpu
    // once the store is back the same call succeeds and stores both
    store.failPuts = false;
    const blocks = await cache.acquire(docs);
    expect(blocks.length).toBe(2);
    expect((await store.list()).length).toBe(2);
    cache.release(docs);
    cache.clearGpu();
    expect(baseline()).toEqual(base);
  });

  it("a request naming a context twice takes and gives back one pin: another holder's pin survives", async () => {
    const base = baseline();
    const cache = new ContextCache(engine, await controlledStore(), kvCodec(model), scopeOf());
    const doc = refOf([50, 51, 52]);
    const [held] = await cache.acquire([doc]); // another request holds it
    await cache.acquire([doc, doc]);
    cache.release([doc, doc]);
    cache.clearGpu(); // must not free the block still held
    expect(cache.pinnedCount).toBe(1);
    expect(engine.pool.liveBlocks).toBe(base.live + 1);
    expect((await cache.acquire([doc]))[0]).toBe(held);
    cache.release([doc]);
    cache.release([doc]);
    cache.clearGpu();
    expect(baseline()).toEqual(base);
  });

  it("a lease unpins exactly once however often it is released; overlapping leases report their own hits and misses", async () => {
    const base = baseline();
    const cache = new ContextCache(engine, await controlledStore(), kvCodec(model), scopeOf());
    const cached = [refOf([60, 61, 62]), refOf([63, 64])];
    const fresh = [refOf([65, 66, 67, 68]), refOf([69, 70])];
    const holder = await cache.lease(cached);
    const [a, b] = await Promise.all([cache.lease(fresh), cache.lease(cached)]);
    expect(a.stats).toMatchObject({ misses: 2, hits: { gpu: 0, host: 0, store: 0 }, cachedTokens: 0 });
    expect(b.stats).toMatchObject({ misses: 0, hits: { gpu: 2, host: 0, store: 0 }, cachedTokens: 5 });
    expect(holder.stats.misses).toBe(2);
    b.release();
    b.release();
    b.release();
    cache.clearGpu();
    expect(cache.pinnedCount).toBe(4); // holder's two and a's two
    expect(engine.pool.liveBlocks).toBe(base.live + 4);
    holder.release();
    a.release();
    cache.clearGpu();
    expect(baseline()).toEqual(base);
  });

  it("a destroyed pool refuses allocations (E_CLOSED); releasing a copy of a block descriptor frees nothing", async () => {
    const small = new Engine(model, { kvBudgetBytes: 1 << 16 });
    const b1 = small.pool.allocate(8, 0);
    const before = small.pool.freeTokens();
    small.pool.release({ ...b1 });
    expect(small.pool.freeTokens()).toBe(before);
    small.pool.release(b1);
    small.pool.release(b1);
    const b2 = small.pool.allocate(8, 0); // reuses b1's slots
    small.pool.release(b1); // a stale handle: must not free b2's slots
    expect(small.pool.liveBlocks).toBe(1);
    expect(small.pool.freeTokens()).toBe(before);
    small.pool.release(b2);
    small.destroy();
    expect(() => small.pool.allocate(4, 0)).toThrow(expect.objectContaining({ code: "E_CLOSED" }));
  });
});
