// Retrieval over the cache (sdk/search.ts, Ape.search, generate({ retrieve })) on a tiny fixture model:
// BM25 ranking, persistence with the file store (a second instance finds what the first cached),
// sharing through Redis, generate's retrieved contexts equal to passing the same handles, a custom
// retriever, and argument errors.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Ape, type ApeModel, loadModel, openStore } from "../sdk/mod.ts";
import { SearchIndex } from "../sdk/search.ts";
import { runtimeName } from "../src/runtime.ts";

const MODEL = new URL("../fixtures/models/llama3", import.meta.url).pathname;
const DOCS = [
  "The capital of Vermont is Montpelier.",
  "Zorblax Ltd was founded in 1911 by Ada Quill.",
  "The Fernhallow club plays at Copperlight Stadium.",
  "Birds sing in the morning near the river Varnok.",
  "The national dish of Peru is ceviche.",
];

describe(`retrieval over the cache on ${runtimeName()}`, () => {
  let model: ApeModel;
  const dirs: string[] = [];
  beforeAll(async () => {
    model = await loadModel(MODEL);
  });
  afterAll(() => {
    model?.destroy();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("BM25 ranks by the query's rare terms; k limits; no match gives nothing", async () => {
    const index = new SearchIndex(await openStore("memory:"), "search-test");
    await index.add(DOCS.map((text, i) => ({ id: `d${i}`, text })));
    expect((await index.search("When was Zorblax founded?", 1)).map((h) => h.id)).toEqual(["d1"]);
    expect((await index.search("What is the national dish of Peru?", 2))[0].id).toBe("d4");
    const two = await index.search("the capital of Vermont and the club Fernhallow", 2);
    expect(new Set(two.map((h) => h.id))).toEqual(new Set(["d0", "d2"]));
    expect(two[0].score).toBeGreaterThanOrEqual(two[1].score);
    expect(await index.search("xylophone", 3)).toEqual([]);
    await expect(index.search("Peru", 0)).rejects.toThrow(/k must be a positive integer/);
  });

  it("persists beside the file store: a second instance searches what the first cached; generate retrieves them", async () => {
    const dir = mkdtempSync(join(tmpdir(), "apekit-search-"));
    dirs.push(dir);
    const store = pathToFileURL(dir).href;
    const a = await Ape.create(model, { prefix: "use the text\n", store });
    const cached = await a.cache(DOCS);
    const hitsA = await a.search("Who founded Zorblax?", { k: 2 });
    expect(hitsA[0].id).toBe(cached[1].id);
    expect(hitsA[0].text).toBe(DOCS[1]);
    const explicit = await a.generateText({ query: "Who founded Zorblax?", contexts: hitsA, maxTokens: 4 });
    await a.close();
    // one index entry beside the KV files
    expect(readdirSync(dir).filter((f) => f.startsWith("search-")).length).toBe(1);
    const b = await Ape.create(model, { prefix: "use the text\n", store });
    try {
      const hitsB = await b.search("Who founded Zorblax?", { k: 2 });
      expect(hitsB.map((h) => h.id)).toEqual(hitsA.map((h) => h.id));
      const viaRetrieve = await b.generateText({ query: "Who founded Zorblax?", retrieve: { k: 2 }, maxTokens: 4 });
      expect(viaRetrieve.ids).toEqual(explicit.ids);
      expect(viaRetrieve.stats.contextTokens).toBe(hitsA.reduce((n, h) => n + h.tokens, 0));
      expect(viaRetrieve.stats.cacheMisses).toBe(0); // loaded from the store, not re-encoded
    } finally {
      await b.close();
    }
    // another prefix is another scope: its index is empty
    const c = await Ape.create(model, { prefix: "other\n", store });
    try {
      expect(await c.search("Zorblax", { k: 2 })).toEqual([]);
    } finally {
      await c.close();
    }
  });

  it("a custom retriever plugs into the same option", async () => {
    const ape = await Ape.create(model, { prefix: "use the text\n" });
    try {
      const seen: [string, number][] = [];
      const retriever = (q: string, k: number) => (seen.push([q, k]), [DOCS[3], DOCS[0], DOCS[2]]);
      const got = await ape.generateText({ query: "Where do birds sing?", retrieve: { k: 2, retriever }, maxTokens: 4 });
      expect(seen).toEqual([["Where do birds sing?", 2]]);
      const same = await ape.generateText({ query: "Where do birds sing?", contexts: [DOCS[3], DOCS[0]], maxTokens: 4 });
      expect(got.ids).toEqual(same.ids);
      await expect(ape.generateText({ query: "q", retrieve: { k: 1.5 } })).rejects.toThrow(/k must be a positive integer/);
      await expect(ape.generateText({ query: "q", retrieve: { retriever: (() => 3) as never } })).rejects.toThrow(/must return an array/);
    } finally {
      await ape.close();
    }
  });

  const redisServer = spawnSync("sh", ["-c", "command -v redis-server"]).status === 0;
  it.skipIf(!redisServer)("is shared through Redis: an instance sees documents another one cached later", async () => {
    const port = await new Promise<number>((res) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => res(p));
      });
    });
    const redis: ChildProcess = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
    try {
      const url = `redis://127.0.0.1:${port}`;
      for (let i = 0; i < 50; i++) {
        try {
          await (await openStore(url)).close();
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      const a = await Ape.create(model, { prefix: "use the text\n", store: url });
      const b = await Ape.create(model, { prefix: "use the text\n", store: url });
      try {
        await a.cache(DOCS.slice(0, 3));
        expect(await b.search("Peru dish", { k: 1 })).toEqual([]);
        await b.cache(DOCS.slice(3)); // b's write merges a's documents
        const hit = await a.search("national dish of Peru", { k: 1 });
        expect(hit[0].text).toBe(DOCS[4]);
        expect((await b.search("Zorblax", { k: 1 }))[0].text).toBe(DOCS[1]);
      } finally {
        await a.close();
        await b.close();
      }
    } finally {
      const exited = new Promise((r) => redis.on("exit", r));
      redis.kill("SIGTERM");
      await exited;
    }
  });
});
