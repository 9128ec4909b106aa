// The public SDK under overlapping requests (issue 17), on a tiny HF fixture model: one encode per
// document however many callers ask, per-request cache figures, nothing pinned or allocated after any
// ending (done, CapacityError, abort, close), close() under running work, and overlapping generations
// (batched together) giving the tokens each gives alone.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ape, type ApeModel, loadModel, openStore } from "../sdk/mod.ts";
import type { KvStore } from "../src/cache/store.ts";
import { runtimeName } from "../src/runtime.ts";

const MODEL = new URL("../fixtures/models/llama3", import.meta.url).pathname;
const DOCS = ["the cat sat on the mat", "a dog ran in the park", "birds sing in the morning", "fish swim in the sea"];

/** A memory store whose get of one key can be held back until `open()`. */
async function holdingStore() {
  const inner = await openStore("memory:");
  let hold: Promise<void> | undefined;
  let open = () => {};
  const s = {
    url: "memory:holding", holdKey: "",
    hold() {
      hold = new Promise((r) => (open = r));
    },
    open: () => open(),
    async get(k: string) {
      if (k === s.holdKey) await hold;
      return inner.get(k);
    },
    put: (k: string, v: Uint8Array) => inner.put(k, v),
    delete: (k: string) => inner.delete(k),
    list: () => inner.list(),
    close: () => inner.close(),
  };
  return s satisfies KvStore;
}

describe(`SDK under overlapping requests on ${runtimeName()}`, () => {
  let model: ApeModel;
  beforeAll(async () => {
    model = await loadModel(MODEL);
  });
  afterAll(() => model?.destroy());

  it("two concurrent cache() calls of one document encode it once", async () => {
    const ape = await Ape.create(model, { prefix: "use the text\n" });
    try {
      const idle = ape.stats().pool;
      const [a, b] = await Promise.all([ape.cache([DOCS[0]]), ape.cache([DOCS[0]])]);
      expect(a[0].id).toBe(b[0].id);
      expect(ape.stats().misses).toBe(1);
      expect(ape.stats().entries.gpu).toBe(1);
      expect(ape.stats().pool.liveBlocks).toBe(idle.liveBlocks + 1);
      expect(ape.stats().pinnedContexts).toBe(0);
    } finally {
      await ape.close();
    }
  });

  it("overlapping requests report their own cache hits and misses", async () => {
    const store = await holdingStore();
    const first = await Ape.create(model, { prefix: "use the text\n", store });
    const [stored] = await first.cache([DOCS[0]]); // in the store only, for the next instance
    await first.close();
    const ape = await Ape.create(model, { prefix: "use the text\n", store });
    try {
      store.holdKey = stored.id;
      store.hold();
      // a: one stored document, held in the store; b: two new ones, encoded while a waits
      const a = ape.generateText({ query: "what sat", contexts: [DOCS[0]], maxTokens: 2 });
      await new Promise((r) => setTimeout(r, 10));
      const b = await ape.generateText({ query: "what ran", contexts: [DOCS[1], DOCS[2]], maxTokens: 2 });
      store.open();
      const ra = await a;
      expect(b.stats).toMatchObject({ cacheHits: 0, cacheMisses: 2, cachedTokens: 0 });
      expect(ra.stats).toMatchObject({ cacheHits: 1, cacheMisses: 0, cachedTokens: stored.tokens });
      expect(ape.stats().hits.store).toBe(1);
      expect(ape.stats().misses).toBe(2);
    } finally {
      await ape.close();
      await store.close();
    }
  });

  it("nothing stays pinned or allocated after a request ends: done, CapacityError, abort or early stop", async () => {
    // a budget that holds the documents but not a live block of 300 tokens
    const probe = await Ape.create(model, {});
    const perToken = probe.stats().pool.bytesPerToken;
    await probe.close();
    const ape = await Ape.create(model, { prefix: "use the text\n", gpuBudgetBytes: 200 * perToken });
    try {
      const handles = await ape.cache(DOCS);
      const idle = ape.stats().pool;
      await ape.generateText({ query: "what sat", contexts: handles, maxTokens: 3 });
      await expect(ape.generateText({ query: "what sat", contexts: handles, maxTokens: 300 })).rejects.toMatchObject({ code: "E_CAPACITY" });
      expect(ape.stats().pinnedContexts).toBe(0);
      const ac = new AbortController();
      const aborted = (async () => {
        for await (const ev of ape.generate({ query: "what ran", contexts: handles, maxTokens: 40, signal: ac.signal, stepsPerReadback: 1 })) {
          if (ev.type === "token") ac.abort();
        }
      })().then(() => undefined, (e) => e);
      let early = 0;
      for await (const ev of ape.generate({ query: "what sang", contexts: handles.slice(1), maxTokens: 40, stepsPerReadback: 1 })) {
        if (ev.type === "token" && ++early >= 2) break;
      }
      expect(await aborted).toMatchObject({ code: "E_ABORTED" });
      expect(ape.stats()).toMatchObject({ pinnedContexts: 0, liveRequests: 0 });
      expect(ape.stats().pool).toEqual(idle);
    } finally {
      await ape.close();
    }
  });

  it("overlapping generations (batched together) give the tokens each gives alone", async () => {
    const ape = await Ape.create(model, { prefix: "use the text\n" });
    try {
      const reqs = [
        { query: "what sat on the mat", contexts: DOCS.slice(0, 2), maxTokens: 7 },
        { query: "who ran", contexts: DOCS.slice(1), maxTokens: 4, mode: "sequential" as const },
        { query: "what sings", contexts: DOCS.slice(2), maxTokens: 9, mode: "parallel" as const },
        { query: "fish", contexts: [DOCS[3]], maxTokens: 5, temperature: 0.6, scale: 0.7 },
      ];
      const alone: number[][] = [];
      for (const r of reqs) alone.push((await ape.generateText(r)).ids);
      const together = await Promise.all(reqs.map((r) => ape.generateText(r)));
      together.forEach((t, i) => expect(t.ids, `request ${i}`).toEqual(alone[i]));
    } finally {
      await ape.close();
    }
  });

  it("a burst of overlapping requests (shared new documents, aborts, early stops, follow-ups) leaves the pool idle", async () => {
    const ape = await Ape.create(model, { prefix: "use the text\n" });
    try {
      const idle = ape.stats().pool;
      const modes = ["ape", "sequential", "parallel"] as const;
      const runs = Array.from({ length: 12 }, async (_, i) => {
        const contexts = [DOCS[i % 4], DOCS[(i + 1) % 4]]; // new to the cache: encodes are shared
        const ac = new AbortController();
        let n = 0;
        for await (const ev of ape.generate({ query: `question ${i}`, contexts, mode: modes[i % 3], maxTokens: 3 + (i % 5), signal: ac.signal, stepsPerReadback: 1 + (i % 3) })) {
          if (ev.type !== "token") continue;
          n++;
          if (i % 4 === 1 && n === 1) ac.abort();
          if (i % 4 === 2 && n === 2) break;
        }
        if (i % 4 === 3) {
          const again = await ape.generateText({ query: "again", contexts, mode: "parallel", maxTokens: 2 });
          expect(again.stats).toMatchObject({ cacheHits: 2, cacheMisses: 0 });
        }
      });
      const outcomes = await Promise.allSettled(runs);
      const codes = outcomes.map((o) => (o.status === "rejected" ? (o.reason as { code?: string }).code : "ok"));
      codes.forEach((c, i) => expect(c, `request ${i}`).toBe(i % 4 === 1 ? "E_ABORTED" : "ok"));
      expect(ape.stats().misses).toBe(4); // each document encoded once
      expect(ape.stats()).toMatchObject({ pinnedContexts: 0, liveRequests: 0 });
      expect(ape.stats().pool.liveBlocks).toBe(idle.liveBlocks + 4);
    } finally {
      await ape.close();
    }
  });

  it("close() ends running generations with E_CLOSED, waits for a cache() in flight, frees everything, refuses new calls", async () => {
    const ape = await Ape.create(model, { prefix: "use the text\n" });
    const handles = await ape.cache(DOCS.slice(0, 2));
    const gens = [
      ape.generate({ query: "what sat", contexts: handles, maxTokens: 200, stepsPerReadback: 1 }),
      ape.generate({ query: "who ran", contexts: handles, maxTokens: 200, mode: "sequential", stepsPerReadback: 1 }),
    ];
    for (const g of gens) expect((await g.next()).done).toBe(false);
    const caching = ape.cache([DOCS[3]]);
    await ape.close();
    await caching; // settled before close() returned: it had started
    for (const g of gens) await expect(g.next()).rejects.toMatchObject({ code: "E_CLOSED" });
    await expect(ape.generateText({ query: "x", maxTokens: 2 })).rejects.toMatchObject({ code: "E_CLOSED" });
    await expect(ape.cache(["late"])).rejects.toMatchObject({ code: "E_CLOSED" });
  });
});
