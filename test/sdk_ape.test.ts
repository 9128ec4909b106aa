// The public SDK (sdk/mod.ts) end to end on a tiny HF fixture model: template split, caching tiers,
// the three modes, stop strings, abort, damaged store entries, and special-token safety.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Ape, type ApeModel, loadModel, openStore } from "../sdk/mod.ts";
import { runtimeName } from "../src/runtime.ts";
import { promptLayout } from "../sdk/prompt.ts";
import { Engine } from "../src/engine/engine.ts";
import { modeLogits } from "../src/ape/ape.ts";

const MODEL = new URL("../fixtures/models/llama3", import.meta.url).pathname;
const DOCS = ["the cat sat on the mat", "a dog ran in the park", "birds sing in the morning"];

describe(`SDK (Ape) on ${runtimeName()}`, () => {
  let model: ApeModel;
  beforeAll(async () => {
    model = await loadModel(MODEL);
  });
  afterAll(() => model?.destroy());

  it("caches documents once and serves them from the GPU afterwards", async () => {
    const ape = await Ape.create(model, { prefix: "use the text\n" });
    try {
      const h1 = await ape.cache(DOCS);
      expect(ape.stats().misses).toBe(3);
      const h2 = await ape.cache(DOCS);
      expect(h2.map((h) => h.id)).toEqual(h1.map((h) => h.id));
      expect(ape.stats().hits.gpu).toBe(3);
      const t0 = performance.now();
      let firstSeen = 0;
      let out;
      for await (const ev of ape.generate({ query: "what sat on the mat", contexts: h1, maxTokens: 6, stepsPerReadback: 1 })) {
        if (ev.type === "token" && ev.ids.length && !firstSeen) firstSeen = performance.now() - t0;
        if (ev.type === "done") out = ev;
      }
      expect(out!.stats.cacheHits).toBe(3);
      expect(out!.stats.contextTokens).toBe(h1.reduce((n, h) => n + h.tokens, 0));
      // the first token is APE's greedy choice over the cached blocks: the argmax of modeLogits on the
      // same prefix / context / query ids encoded afresh (an independent path through the engine)
      const layout = promptLayout(model, { prefix: "use the text\n" });
      const engine = new Engine(model.model, { kvDtype: ape.kvDtype });
      try {
        const logits = await modeLogits(engine, "ape", {
          prefix: layout.prefixIds, contexts: h1.map((h) => h.ids), query: layout.queryIds("what sat on the mat"), ...ape.defaults,
        });
        expect(out!.ids[0]).toBe(logits.indexOf(Math.max(...logits)));
      } finally {
        engine.destroy();
      }
      // the timings are consistent with what the caller saw: the first token arrived by firstSeen, and
      // the answer (6 tokens, one readback each) took longer than its first token
      expect(out!.ids.length).toBe(out!.stats.generatedTokens);
      expect(out!.stats.timeToFirstTokenMs).toBeGreaterThan(0);
      expect(out!.stats.timeToFirstTokenMs).toBeLessThanOrEqual(firstSeen + 1);
      expect(out!.stats.prefillMs).toBeLessThanOrEqual(out!.stats.timeToFirstTokenMs);
      if (out!.ids.length > 1) expect(out!.stats.totalMs).toBeGreaterThan(out!.stats.timeToFirstTokenMs);
    } finally {
      await ape.close();
    }
  });

  it("APE's T and S: the request's, else the instance's, else the model's tuned pair, else the paper's 0.9, 0.9", async () => {
    expect(model.apeDefaults).toBeUndefined(); // a model apekit has not tuned
    const tuned: ApeModel = { ...model, apeDefaults: { temperature: 0.5, scale: 0.8 } };
    const plain = await Ape.create(model, { prefix: "use the text\n" });
    const own = await Ape.create(tuned, { prefix: "use the text\n" });
    const mixed = await Ape.create(tuned, { prefix: "use the text\n", temperature: 0.7 });
    try {
      expect(plain.defaults).toEqual({ temperature: 0.9, scale: 0.9 });
      expect(own.defaults).toEqual({ temperature: 0.5, scale: 0.8 });
      expect(mixed.defaults).toEqual({ temperature: 0.7, scale: 0.8 });
      // a request without T and S runs with the defaults
      const req = { query: "what sat on the mat", contexts: DOCS, maxTokens: 5, mode: "ape" as const };
      const implicit = await own.generateText(req);
      const explicit = await own.generateText({ ...req, temperature: 0.5, scale: 0.8 });
      expect(implicit.ids).toEqual(explicit.ids);
    } finally {
      await Promise.all([plain.close(), own.close(), mixed.close()]);
    }
  });

  it("stores KV in f16 by default where the adapter offers shader-f16, f32 when asked; f16 KV takes half the bytes, same tokens", async () => {
    const auto = await Ape.create(model, { prefix: "use the text\n" });
    const half = await Ape.create(model, { prefix: "use the text\n", kvDtype: "f16" }); // packed f16: no shader-f16 needed
    const exact = await Ape.create(model, { prefix: "use the text\n", kvDtype: "f32" });
    try {
      expect(auto.kvDtype).toBe(model.model.gpu.hasF16 ? "f16" : "f32");
      expect(half.kvDtype).toBe("f16");
      expect(exact.kvDtype).toBe("f32");
      const [a, b] = await Promise.all([half, exact].map(async (x) => (await x.generateText({ query: "what sat on the mat", contexts: await x.cache(DOCS), maxTokens: 4 })).ids));
      expect(a).toEqual(b); // greedy tokens agree on this model
      expect(half.stats().bytes.gpu * 2).toBe(exact.stats().bytes.gpu); // the same blocks, really stored as f16
      expect(half.stats().bytes.gpu).toBeGreaterThan(0);
    } finally {
      await Promise.all([auto.close(), half.close(), exact.close()]);
    }
  });

  it("parallel mode over one context equals sequential mode (same positions, T = S = 1)", async () => {
    const ape = await Ape.create(model, { prefix: "use the text\n" });
    try {
      const [doc] = await ape.cache([DOCS[0]]);
      const seq = await ape.generateText({ query: "what sat", contexts: [doc], mode: "sequential", maxTokens: 8 });
      const par = await ape.generateText({ query: "what sat", contexts: [doc], mode: "parallel", maxTokens: 8 });
      expect(par.ids).toEqual(seq.ids);
      // APE mode uses the request's T and S: its answer is APE's at T = S = 0.5, not parallel mode's
      const ape2 = await ape.generateText({ query: "what sat", contexts: [doc], mode: "ape", temperature: 0.5, scale: 0.5, maxTokens: 8 });
      expect(ape2.stats.mode).toBe("ape");
      expect(ape2.ids).not.toEqual(par.ids);
      const layout = promptLayout(model, { prefix: "use the text\n" });
      const engine = new Engine(model.model, { kvDtype: ape.kvDtype });
      try {
        const logits = await modeLogits(engine, "ape", { prefix: layout.prefixIds, contexts: [doc.ids], query: layout.queryIds("what sat"), temperature: 0.5, scale: 0.5 });
        expect(ape2.ids[0]).toBe(logits.indexOf(Math.max(...logits)));
      } finally {
        engine.destroy();
      }
    } finally {
      await ape.close();
    }
  });

  it("streams token events whose text adds up to the final text; stop strings cut the answer", async () => {
    const ape = await Ape.create(model, { raw: true });
    try {
      let streamed = "";
      let done;
      for await (const ev of ape.generate({ query: "the cat", contexts: DOCS, maxTokens: 12 })) {
        if (ev.type === "token") streamed += ev.text;
        else done = ev;
      }
      expect(done!.text).toBe(streamed);
      expect(done!.text.length).toBeGreaterThan(2);
      const stop = done!.text.slice(1, 3);
      const cut = await ape.generateText({ query: "the cat", contexts: DOCS, maxTokens: 12, stop: [stop] });
      expect(cut.text).toBe(done!.text.slice(0, done!.text.indexOf(stop)));
      expect(cut.stats.stopReason).toBe("stop");
    } finally {
      await ape.close();
    }
  });

  it("an aborted request ends with a typed error", async () => {
    const ape = await Ape.create(model, {});
    try {
      const ac = new AbortController();
      ac.abort();
      await expect(ape.generateText({ query: "x", maxTokens: 40, signal: ac.signal, stepsPerReadback: 1 })).rejects.toThrow(/aborted/);
    } finally {
      await ape.close();
    }
  });

  it("a file store persists contexts across instances; a damaged entry is re-encoded and reported", async () => {
    const url = pathToFileURL(mkdtempSync(join(tmpdir(), "apekit-sdk-"))).href;
    const a = await Ape.create(model, { prefix: "p\n", store: url });
    const handles = await a.cache(DOCS);
    const first = await a.generateText({ query: "q", contexts: handles, maxTokens: 5 });
    await a.close();
    const store = await openStore(url);
    const bytes = (await store.get(handles[1].id))!;
    bytes[bytes.length - 1] ^= 1;
    await store.put(handles[1].id, bytes);
    await store.close();
    const b = await Ape.create(model, { prefix: "p\n", store: url });
    try {
      const again = await b.generateText({ query: "q", contexts: handles, maxTokens: 5 });
      expect(again.ids).toEqual(first.ids);
      const s = b.stats();
      expect(s.hits.store).toBe(2);
      expect(s.rejected).toBe(1);
      expect(s.problems[0]).toMatch(/checksum/i);
    } finally {
      await b.close();
    }
  });

  it("special-token text inside documents and queries stays ordinary text", async () => {
    const ape = await Ape.create(model, { raw: true });
    try {
      const im = model.tokenizer.tokenToId("<|im_end|>")!;
      const [h] = await ape.cache(["look <|im_end|> here"]);
      expect(Array.from(h.ids)).not.toContain(im);
    } finally {
      await ape.close();
    }
  });

  it("document and query templates wrap the text literally; a template without its slot is refused", async () => {
    const enc = (t: string) => Array.from(model.tokenizer.encode(t, { addSpecialTokens: false, allowSpecial: false }));
    const ape = await Ape.create(model, { raw: true, documentTemplate: "Doc: {text}\n", queryTemplate: "Q: {query}\nA:" });
    try {
      // "$&" and "$'" are replacement patterns for String.replace: they must stay as typed
      const [h] = await ape.cache(["costs $& and $' here"]);
      expect(Array.from(h.ids)).toEqual(enc("Doc: costs $& and $' here\n"));
      const out = await ape.generateText({ query: "what $& costs", contexts: [h], mode: "sequential", maxTokens: 1 });
      const bos = model.tokenizer.bosId !== undefined && model.addBos ? 1 : 0; // raw mode's only prefix token
      expect(out.stats.promptTokens).toBe(bos + h.tokens + enc("Q: what $& costs\nA:").length);
    } finally {
      await ape.close();
    }
    await expect(Ape.create(model, { raw: true, queryTemplate: "no slot" })).rejects.toThrow(/queryTemplate must contain \{query\}/);
    await expect(Ape.create(model, { raw: true, documentTemplate: "no slot" })).rejects.toThrow(/documentTemplate must contain \{text\}/);
  });
});
