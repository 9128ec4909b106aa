/**
 * `Ape`: Adaptive Parallel Encoding over a model, with a persistent context cache. This file glues the
 * SDK's parts: prompt layout (prompt.ts), the cache facade (contexts.ts, hashing in context_id.ts),
 * a request's live sequence and decode loop (sequence.ts) and streaming text (stream.ts); the option
 * and result types are in options.ts.
 *
 * @example
 * ```ts
 * import { loadModel, Ape } from "@apekit/apekit";
 * const model = await loadModel();                       // the embedded default (SmolLM2-135M-Instruct)
 * const ape = await Ape.create(model, { prefix: "Answer using the documents.\n\n", store: "memory:" });
 * const docs = await ape.cache(["The capital of Vermont is Montpelier.", "Zorblax Ltd was founded in 1911."]);
 * const out = await ape.generateText({ query: "What is the capital of Vermont?", contexts: docs, maxTokens: 24 });
 * console.log(out.text, out.stats.timeToFirstTokenMs);
 * await ape.close();
 * ```
 */
import { Engine } from "../src/engine/engine.ts";
import { Batcher } from "../src/engine/batch.ts";
import { encodePrefix, type EncodedPrefix, temperatureScale } from "../src/ape/ape.ts";
import { ContextCache, type CacheStats, type EvictResult } from "../src/cache/context_cache.ts";
import { openStore } from "../src/cache/store.ts";
import { kvCodec } from "../src/cache/kv_codec.ts";
import { ApeError, InvalidArgumentError } from "../src/errors.ts";
import type { ApeModel } from "./load.ts";
import type { ApeOptions, ContextHandle, GenerateEvent, GenerateRequest, GenerateResult, GenerateStats } from "./options.ts";
import { type PromptLayout, promptLayout } from "./prompt.ts";
import { cacheScope } from "./context_id.ts";
import { Contexts } from "./contexts.ts";
import { openSequence } from "./sequence.ts";
import { type StreamResult, streamText } from "./stream.ts";
import { checkK, SearchIndex, searchKey } from "./search.ts";

export type { ApeOptions, ChatTurn, ContextHandle, GenerateEvent, GenerateRequest, GenerateResult, GenerateStats, Mode } from "./options.ts";

/** KV pool use: token slots in all, free now, bytes per token slot, blocks allocated. */
export interface PoolStats {
  capacityTokens: number;
  freeTokens: number;
  bytesPerToken: number;
  liveBlocks: number;
}

/**
 * Overlapping calls are safe: concurrent `generate` calls decode together in one batched step (the
 * instance's Batcher), a context being encoded for one call is shared by the others, and every pin
 * and block is released exactly once whatever ends a request (its end, an error, an abort, close()).
 */
export class Ape {
  readonly #engine: Engine;
  readonly #batcher: Batcher;
  /** Calls in progress (cache, encode, a generate's setup) that close() waits for. */
  readonly #busy = new Set<Promise<unknown>>();
  /** Live requests' release functions (idempotent): close() frees what a request left suspended holds. */
  readonly #running = new Set<() => void>();
  readonly #contexts: Contexts;
  readonly #layout: PromptLayout;
  readonly #prefix: EncodedPrefix;
  readonly #stopIds: number[];
  /** BM25 over the documents given to cache(), persisted beside them in the store (sdk/search.ts). */
  readonly #search: SearchIndex;
  /** APE's T and S when a request names none: the options', else the model's tuned pair, else the paper's 0.9, 0.9. */
  readonly defaults: { readonly temperature: number; readonly scale: number };
  #closed = false;

  private constructor(readonly model: ApeModel, readonly options: ApeOptions, engine: Engine, layout: PromptLayout, prefix: EncodedPrefix, contexts: Contexts) {
    this.#engine = engine;
    this.#batcher = new Batcher(engine);
    this.#layout = layout;
    this.#prefix = prefix;
    this.#contexts = contexts;
    this.#search = new SearchIndex(contexts.cache.store, searchKey(contexts.cache.scope, contexts.dtype));
    this.defaults = temperatureScale("ape", options, model.apeDefaults);
    const eos = new Set<number>(model.model.config.eosTokenIds);
    const gen = model.model.generationConfig.eos_token_id;
    for (const e of Array.isArray(gen) ? gen : gen !== undefined ? [gen] : []) if (typeof e === "number") eos.add(e);
    if (model.tokenizer.eosId !== undefined) eos.add(model.tokenizer.eosId);
    this.#stopIds = [...eos];
  }

  static async create(model: ApeModel, options: ApeOptions = {}): Promise<Ape> {
    const kvDtype = options.kvDtype ?? (model.model.gpu.hasF16 ? "f16" : "f32");
    const engine = new Engine(model.model, { kvBudgetBytes: options.gpuBudgetBytes, kvDtype });
    try {
      const layout = promptLayout(model, options);
      const prefix = await encodePrefix(engine, layout.prefixIds);
      const store = typeof options.store === "object" ? options.store : await openStore(options.store ?? "memory:");
      const scope = cacheScope(model, layout.prefixIds, prefix);
      const cache = new ContextCache(engine, store, kvCodec(model.model, engine.pool.dtype), scope, options.hostBudgetBytes);
      return new Ape(model, options, engine, layout, prefix, new Contexts(cache, layout.documentIds, engine.pool.dtype));
    } catch (e) {
      engine.destroy();
      throw e;
    }
  }

  #check(): void {
    if (this.#closed) throw new ApeError("E_CLOSED", "this Ape instance is closed");
  }

  /** Runs `work` as a call close() waits for (admission is checked before and after it). */
  async #track<T>(work: () => Promise<T>): Promise<T> {
    this.#check();
    const p = work();
    this.#busy.add(p);
    try {
      return await p;
    } finally {
      this.#busy.delete(p);
    }
  }

  /** Encodes the documents that are not cached yet (in batched passes), stores them, returns handles. */
  async cache(texts: string[], opts: { onProgress?: (done: number, total: number) => void } = {}): Promise<ContextHandle[]> {
    return await this.#track(async () => {
      const handles = await this.#contexts.cacheTexts(texts, opts.onProgress);
      await this.#search.add(handles.map((h, i) => ({ id: h.id, text: texts[i] })));
      return handles;
    });
  }

  /** The `k` cached documents (from cache()) that best match `query` (BM25), as handles for generate(), best first. */
  async search(query: string, opts: { k?: number } = {}): Promise<(ContextHandle & { text: string; score: number })[]> {
    const hits = await this.#track(() => this.#search.search(query, checkK(opts.k ?? 3)));
    return hits.map((h) => ({ ...this.#contexts.handle(h.text), text: h.text, score: h.score }));
  }

  /** Parallel-encodes documents on the GPU without storing them; release() frees them. */
  async encode(texts: string[]): Promise<{ handles: ContextHandle[]; release(): void }> {
    const got = await this.#track(() => this.#contexts.encode(texts));
    this.#running.add(got.release);
    return { handles: got.handles, release: () => (this.#running.delete(got.release), got.release()) };
  }

  /**
   * Forgets a cached context (a handle, or `{id}`): its store entry, host copy and GPU block go at once.
   * Requests running over it finish unharmed: its block leaves the cache now and is freed when the last
   * of them ends (`gpu: "deferred"`); later requests re-encode the context if they name its text again.
   */
  async evict(context: Pick<ContextHandle, "id">): Promise<EvictResult> {
    return await this.#track(() => this.#contexts.evict(context?.id));
  }

  /** How this instance stores KV states (GPU blocks and cache files). */
  get kvDtype(): "f32" | "f16" {
    return this.#engine.pool.dtype;
  }

  /** The context cache's counters and problems, the KV pool's use, contexts pinned by requests, requests decoding now. */
  stats(): CacheStats & { problems: string[]; pool: PoolStats; pinnedContexts: number; liveRequests: number } {
    const p = this.#engine.pool;
    const pool = { capacityTokens: p.capacity, freeTokens: p.freeTokens(), bytesPerToken: p.bytesPerToken, liveBlocks: p.liveBlocks };
    return { ...this.#contexts.stats(), pool, pinnedContexts: this.#contexts.cache.pinnedCount, liveRequests: this.#batcher.size };
  }

  /** Streams the answer to `query` over `contexts`. */
  async *generate(req: GenerateRequest): AsyncGenerator<GenerateEvent> {
    this.#check();
    const t0 = performance.now();
    const mode = req.mode ?? "ape";
    if (!["sequential", "parallel", "ape"].includes(mode)) throw new InvalidArgumentError(`mode must be sequential, parallel or ape (got '${mode}')`);
    const maxTokens = req.maxTokens ?? 256;
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new InvalidArgumentError(`maxTokens must be a positive integer (got ${maxTokens})`);
    if (req.messages !== undefined && req.query !== undefined) throw new InvalidArgumentError("give query or messages, not both");
    if (req.messages === undefined && typeof req.query !== "string") throw new InvalidArgumentError(`query must be a string (got ${req.query === null ? "null" : typeof req.query})`);
    // a conversation's question, for retrieval: its last user message
    const question = req.messages === undefined ? req.query! : [...req.messages].reverse().find((m) => m?.role === "user")?.content ?? "";
    const { temperature: T, scale: S } = temperatureScale(mode, req, this.defaults);
    const given = req.contexts ?? [];
    const retrieved = req.retrieve ? await this.#retrieve(question, req.retrieve) : [];
    const handles = [...given, ...retrieved].map((c) => this.#contexts.resolve(c));
    const query = req.messages === undefined ? this.#layout.queryIds(question) : this.#layout.conversationIds(req.messages);
    const stats: GenerateStats = {
      mode, promptTokens: 0, contextTokens: handles.reduce((n, h) => n + h.tokens, 0), generatedTokens: 0,
      timeToFirstTokenMs: 0, totalMs: 0, encodeMs: 0, loadMs: 0, prefillMs: 0, decodeMs: 0, cacheHits: 0, cacheMisses: 0, cachedTokens: 0, stopReason: "length",
    };
    const seq = await this.#track(() => openSequence(this.#engine, this.#batcher, this.#contexts, this.#prefix, {
      mode, prefixIds: this.#layout.prefixIds, handles, query, temperature: T, scale: S, maxTokens,
    }, stats));
    this.#running.add(seq.release);
    const out: StreamResult = { text: "", ids: [], stopReason: "length" };
    const tDecode = performance.now();
    const onFirstChunk = () => {
      stats.timeToFirstTokenMs = performance.now() - t0;
      stats.prefillMs = performance.now() - tDecode;
    };
    try {
      const chunks = seq.decode({ stopIds: this.#stopIds, sampling: req.sampling, signal: req.signal, stepsPerReadback: req.stepsPerReadback, firstChunk: 1 });
      yield* streamText(chunks, this.model.tokenizer, { stopIds: this.#stopIds, stops: req.stop ?? [], onFirstChunk }, out);
    } finally {
      this.#running.delete(seq.release);
      seq.release();
    }
    const end = performance.now();
    stats.stopReason = out.stopReason === "length" && seq.limited ? "limit" : out.stopReason;
    stats.generatedTokens = out.ids.length;
    stats.decodeMs = end - tDecode - stats.prefillMs;
    stats.totalMs = end - t0;
    yield { type: "done", text: out.text, ids: out.ids, stats };
  }

  /** A request's retrieved contexts: its retriever's, else BM25 over the cached documents. */
  async #retrieve(query: string, r: NonNullable<GenerateRequest["retrieve"]>): Promise<(ContextHandle | string)[]> {
    const k = checkK(r.k ?? 3);
    if (r.retriever !== undefined && typeof r.retriever !== "function") throw new InvalidArgumentError("retrieve.retriever must be a function");
    const got = r.retriever ? await r.retriever(query, k) : await this.search(query, { k });
    if (!Array.isArray(got)) throw new InvalidArgumentError("retrieve.retriever must return an array of contexts");
    return got.slice(0, k);
  }

  /** The whole answer and its stats. */
  async generateText(req: GenerateRequest): Promise<GenerateResult> {
    for await (const ev of this.generate(req)) if (ev.type === "done") return { text: ev.text, ids: ev.ids, stats: ev.stats };
    throw new ApeError("E_INTERNAL", "generation ended without a result");
  }

  /**
   * Stops admitting calls (they fail with E_CLOSED), ends running generations with E_CLOSED (their
   * steps stop at once; a generator resumed later throws it), waits for cache / encode calls and
   * in-flight encodes to settle, then frees every block and the GPU pool.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#batcher.close();
    await Promise.allSettled([...this.#busy]);
    await this.#contexts.cache.idle();
    for (const release of [...this.#running]) release();
    this.#running.clear();
    this.#contexts.cache.clearGpu();
    if (this.#prefix.block) this.#engine.pool.release(this.#prefix.block);
    // steps the batcher queued past a sequence's end may still run: the GPU finishes them before the
    // buffers go (a device dropped with long work in flight panics Deno's wgpu)
    await this.#engine.model.gpu.device.queue.onSubmittedWorkDone();
    this.#engine.destroy();
    if (typeof this.options.store !== "object") await this.#contexts.cache.store.close();
  }
}
