/**
 * `Ape`: Adaptive Parallel Encoding over a model, with a persistent context cache.
 *
 * @example
 * ```ts
 * import { loadModel, Ape } from "apekit";
 * const model = await loadModel();                       // the embedded default (SmolLM2-135M-Instruct)
 * const ape = await Ape.create(model, { prefix: "Answer using the documents.\n\n", store: "memory:" });
 * const docs = await ape.cache(["The capital of Vermont is Montpelier.", "Zorblax Ltd was founded in 1911."]);
 * const out = await ape.generateText({ query: "What is the capital of Vermont?", contexts: docs, maxTokens: 24 });
 * console.log(out.text, out.stats.timeToFirstTokenMs);
 * await ape.close();
 * ```
 */
import { Engine } from "../src/engine/engine.ts";
import { decode } from "../src/engine/generate.ts";
import type { SamplingOptions } from "../src/engine/sampler.ts";
import { encodePrefix, type EncodedPrefix, startQuery } from "../src/ape/ape.ts";
import { splitChatTemplate } from "../src/chat/template.ts";
import { ContextCache, contextId, type CacheStats, prefixHash } from "../src/cache/context_cache.ts";
import { type KvStore, openStore } from "../src/cache/store.ts";
import { ApeError, InvalidArgumentError } from "../src/errors.ts";
import type { ApeModel } from "./load.ts";
import { kvCodec } from "../src/cache/kv_codec.ts";

export type Mode = "sequential" | "parallel" | "ape";

export interface ApeOptions {
  /** Instruction text at the start of the user turn, before the documents (part of the shared prefix). */
  prefix?: string;
  /** System message (the template's default when omitted). */
  system?: string;
  /** Skip the chat template: the prefix, documents and query are used verbatim. */
  raw?: boolean;
  /** Wraps each document; `{text}` is replaced by it. Default "{text}\n\n". */
  documentTemplate?: string;
  /** Wraps the question after the documents; `{query}` is replaced by it. Default "Question: {query}" ("{query}" when raw). */
  queryTemplate?: string;
  /** "memory:" (default), "file:///path" or "redis://host:port", or a KvStore. */
  store?: string | KvStore;
  /** GPU memory for KV blocks (default 256 MiB). */
  gpuBudgetBytes?: number;
  /**
   * KV cache storage on the GPU and in cache files: "f16" (half the bytes; the default where the adapter
   * offers shader-f16) or "f32" (the default elsewhere; exact). Attention math is f32 either way.
   */
  kvDtype?: "f32" | "f16";
  /** Host-memory tier for serialized contexts (default 512 MiB). */
  hostBudgetBytes?: number;
  /**
   * APE's temperature T and scale S for requests that name none. Default: the model's tuned pair where it
   * has one (the default model: T 0.5, S 0.9), else the paper's 0.9, 0.9.
   */
  temperature?: number;
  scale?: number;
}

/** A cached context: its content address and token count. */
export interface ContextHandle {
  readonly id: string;
  readonly tokens: number;
  /** Token ids (kept so a damaged store entry can be re-encoded). */
  readonly ids: Uint32Array;
}

export interface GenerateRequest {
  query: string;
  /** Cached handles, raw token ids, or texts (cached on the way). */
  contexts?: (ContextHandle | Uint32Array | string)[];
  mode?: Mode;
  maxTokens?: number;
  temperature?: number;
  scale?: number;
  sampling?: SamplingOptions;
  /** Generation stops when the text contains one of these (the stop string is not returned). */
  stop?: string[];
  signal?: AbortSignal;
  /** Tokens per GPU readback after the first (default 16; 4 on CPU adapters). */
  stepsPerReadback?: number;
}

export interface GenerateStats {
  mode: Mode;
  promptTokens: number;
  contextTokens: number;
  generatedTokens: number;
  timeToFirstTokenMs: number;
  totalMs: number;
  /** Encoding contexts that were not cached. */
  encodeMs: number;
  /** Loading cached contexts onto the GPU (store / host tiers). */
  loadMs: number;
  /** Query (or, in sequential mode, whole-prompt) prefill up to the first token. */
  prefillMs: number;
  decodeMs: number;
  cacheHits: number;
  cacheMisses: number;
  stopReason: "eos" | "stop" | "length";
}

export type GenerateEvent =
  | { type: "token"; text: string; ids: number[] }
  | { type: "done"; text: string; ids: number[]; stats: GenerateStats };

export interface GenerateResult {
  text: string;
  ids: number[];
  stats: GenerateStats;
}

interface Parts {
  prefixIds: Uint32Array;
  queryIds: (question: string) => Uint32Array;
  documentIds: (text: string) => Uint32Array;
}

export class Ape {
  readonly #engine: Engine;
  readonly #cache: ContextCache;
  readonly #parts: Parts;
  readonly #prefix: EncodedPrefix;
  readonly #stopIds: number[];
  /** APE's T and S when a request names none: the options', else the model's tuned pair, else the paper's 0.9, 0.9. */
  readonly defaults: { readonly temperature: number; readonly scale: number };
  #closed = false;

  private constructor(readonly model: ApeModel, readonly options: ApeOptions, engine: Engine, parts: Parts, prefix: EncodedPrefix, cache: ContextCache) {
    this.#engine = engine;
    this.#parts = parts;
    this.#prefix = prefix;
    this.#cache = cache;
    const tuned = model.apeDefaults;
    this.defaults = { temperature: options.temperature ?? tuned?.temperature ?? 0.9, scale: options.scale ?? tuned?.scale ?? 0.9 };
    const eos = new Set<number>(model.model.config.eosTokenIds);
    const gen = model.model.generationConfig.eos_token_id;
    for (const e of Array.isArray(gen) ? gen : gen !== undefined ? [gen] : []) if (typeof e === "number") eos.add(e);
    if (model.tokenizer.eosId !== undefined) eos.add(model.tokenizer.eosId);
    this.#stopIds = [...eos];
  }

  static async create(model: ApeModel, options: ApeOptions = {}): Promise<Ape> {
    const { tokenizer } = model;
    const kvDtype = options.kvDtype ?? (model.model.gpu.hasF16 ? "f16" : "f32");
    const engine = new Engine(model.model, { kvBudgetBytes: options.gpuBudgetBytes, kvDtype });
    const docTemplate = options.documentTemplate ?? "{text}\n\n";
    if (!docTemplate.includes("{text}")) throw new InvalidArgumentError("documentTemplate must contain {text}");
    const queryTemplate = options.queryTemplate ?? (options.raw || !model.chatTemplate ? "{query}" : "Question: {query}");
    if (!queryTemplate.includes("{query}")) throw new InvalidArgumentError("queryTemplate must contain {query}");
    const wrapQuery = (q: string) => queryTemplate.replace("{query}", () => q);
    const plain = (s: string) => tokenizer.encode(s, { addSpecialTokens: false, allowSpecial: false });
    const special = (s: string) => tokenizer.encode(s, { addSpecialTokens: false, allowSpecial: true });
    const cat = (...a: Uint32Array[]) => {
      const out = new Uint32Array(a.reduce((n, x) => n + x.length, 0));
      let o = 0;
      for (const x of a) (out.set(x, o), o += x.length);
      return out;
    };
    let parts: Parts;
    if (options.raw || !model.chatTemplate) {
      const bos = tokenizer.bosId !== undefined && model.addBos ? Uint32Array.of(tokenizer.bosId) : new Uint32Array(0);
      parts = {
        prefixIds: cat(bos, plain(options.prefix ?? "")),
        documentIds: (t) => plain(docTemplate.replace("{text}", () => t)),
        queryIds: (q) => plain(wrapQuery(q)),
      };
    } else {
      const split = splitChatTemplate(model.chatTemplate, {
        system: options.system, instruction: options.prefix, bosToken: model.bosToken, eosToken: model.eosToken,
      });
      // the instruction is user text: split it out so special-token markers in it stay ordinary text
      const instr = options.prefix ?? "";
      const head = split.prefix.slice(0, split.prefix.length - instr.length);
      parts = {
        prefixIds: cat(special(head), plain(instr)),
        documentIds: (t) => plain(docTemplate.replace("{text}", () => t)),
        queryIds: (q) => cat(plain(wrapQuery(q)), special(split.queryTail)),
      };
    }
    try {
      const prefix = await encodePrefix(engine, parts.prefixIds);
      const store = typeof options.store === "object" ? options.store : await openStore(options.store ?? "memory:");
      const fp = model.model.fingerprint;
      const scope = { modelFingerprint: fp, tokenizerFingerprint: model.tokenizerFingerprint, prefixHash: prefixHash(fp, parts.prefixIds), prefix };
      const cache = new ContextCache(engine, store, kvCodec(model.model, engine.pool.dtype), scope, options.hostBudgetBytes);
      return new Ape(model, options, engine, parts, prefix, cache);
    } catch (e) {
      engine.destroy();
      throw e;
    }
  }

  #check(): void {
    if (this.#closed) throw new ApeError("E_CLOSED", "this Ape instance is closed");
  }

  #id(ids: Uint32Array): string {
    const s = this.#cache.scope;
    return contextId(s.modelFingerprint, s.tokenizerFingerprint, s.prefixHash, ids, this.#engine.pool.dtype.toUpperCase());
  }

  #handle(text: string): ContextHandle {
    const ids = this.#parts.documentIds(text);
    if (ids.length === 0) throw new InvalidArgumentError("a document is empty");
    return { id: this.#id(ids), tokens: ids.length, ids };
  }

  /** Encodes the documents that are not cached yet (in batched passes), stores them, returns handles. */
  async cache(texts: string[], opts: { onProgress?: (done: number, total: number) => void } = {}): Promise<ContextHandle[]> {
    this.#check();
    const handles = texts.map((t) => this.#handle(t));
    await this.#cache.acquire(handles, opts.onProgress);
    this.#cache.release(handles);
    return handles;
  }

  /** Parallel-encodes documents on the GPU without storing them; release() frees them. */
  async encode(texts: string[]): Promise<{ handles: ContextHandle[]; release(): void }> {
    this.#check();
    const handles = texts.map((t) => this.#handle(t));
    await this.#cache.acquire(handles);
    return { handles, release: () => this.#cache.release(handles) };
  }

  /** How this instance stores KV states (GPU blocks and cache files). */
  get kvDtype(): "f32" | "f16" {
    return this.#engine.pool.dtype;
  }

  stats(): CacheStats & { problems: string[] } {
    return { ...structuredClone(this.#cache.stats), problems: [...this.#cache.problems] };
  }

  /** Streams the answer to `query` over `contexts`. */
  async *generate(req: GenerateRequest): AsyncGenerator<GenerateEvent> {
    this.#check();
    const t0 = performance.now();
    const mode = req.mode ?? "ape";
    if (!["sequential", "parallel", "ape"].includes(mode)) throw new InvalidArgumentError(`mode must be sequential, parallel or ape (got '${mode}')`);
    const maxTokens = req.maxTokens ?? 256;
    const T = mode === "ape" ? req.temperature ?? this.defaults.temperature : 1;
    const S = mode === "ape" ? req.scale ?? this.defaults.scale : 1;
    if (!(T > 0 && S > 0)) throw new InvalidArgumentError(`temperature and scale must be > 0 (got ${T}, ${S})`);
    const handles = (req.contexts ?? []).map((c): ContextHandle => {
      if (typeof c === "string") return this.#handle(c);
      if (c instanceof Uint32Array) return { id: this.#id(c), tokens: c.length, ids: c };
      return c;
    });
    const query = this.#parts.queryIds(req.query);
    const before = structuredClone(this.#cache.stats);
    const stats: GenerateStats = {
      mode, promptTokens: 0, contextTokens: handles.reduce((n, h) => n + h.tokens, 0), generatedTokens: 0,
      timeToFirstTokenMs: 0, totalMs: 0, encodeMs: 0, loadMs: 0, prefillMs: 0, decodeMs: 0, cacheHits: 0, cacheMisses: 0, stopReason: "length",
    };
    let block;
    let group;
    let prompt: Uint32Array;
    let pinned = false;
    if (mode === "sequential") {
      const all = [this.#parts.prefixIds, ...handles.map((h) => h.ids), query];
      prompt = new Uint32Array(all.reduce((n, a) => n + a.length, 0));
      let o = 0;
      for (const a of all) (prompt.set(a, o), o += a.length);
      block = this.#engine.pool.allocate(prompt.length + maxTokens, 0);
      const b = block;
      group = (rows: number, writeAt: number) => ({ rows, write: b, writeAt, plain: [b] });
    } else {
      const tl = performance.now();
      const blocks = await this.#cache.acquire(handles);
      pinned = true;
      const after = this.#cache.stats;
      const elapsed = performance.now() - tl;
      if (after.misses > before.misses) stats.encodeMs = elapsed;
      else stats.loadMs = elapsed;
      prompt = query;
      const live = startQuery(this.#engine, { prefix: this.#prefix, contexts: blocks, query, temperature: T, scale: S, reserve: maxTokens });
      block = live.block;
      group = live.group;
    }
    stats.promptTokens = prompt.length;
    const after = this.#cache.stats;
    stats.cacheHits = after.hits.gpu + after.hits.host + after.hits.store - (before.hits.gpu + before.hits.host + before.hits.store);
    stats.cacheMisses = after.misses - before.misses;
    const stream = this.model.tokenizer.createStreamDecoder();
    const stops = req.stop ?? [];
    let text = "";
    const ids: number[] = [];
    const tDecode = performance.now();
    try {
      outer: for await (const chunk of decode(this.#engine, {
        prompt, block, group, temperature: T, scale: S, maxTokens, stopIds: this.#stopIds, sampling: req.sampling,
        signal: req.signal, stepsPerReadback: req.stepsPerReadback, firstChunk: 1,
      })) {
        if (ids.length === 0) {
          stats.timeToFirstTokenMs = performance.now() - t0;
          stats.prefillMs = performance.now() - tDecode;
        }
        let delta = "";
        const emitted: number[] = [];
        for (const id of chunk) {
          ids.push(id);
          emitted.push(id);
          if (this.#stopIds.includes(id)) {
            stats.stopReason = "eos";
            break;
          }
          delta += stream.push(id);
          const hit = stops.map((s) => (text + delta).indexOf(s)).filter((i) => i >= 0);
          if (hit.length > 0) {
            const cut = Math.min(...hit);
            delta = (text + delta).slice(text.length, cut);
            text += delta;
            stats.stopReason = "stop";
            if (delta || emitted.length) yield { type: "token", text: delta, ids: emitted };
            break outer;
          }
        }
        text += delta;
        yield { type: "token", text: delta, ids: emitted };
        if (stats.stopReason === "eos") break;
      }
      if (stats.stopReason !== "stop") {
        const tail = stream.flush();
        if (tail) {
          text += tail;
          yield { type: "token", text: tail, ids: [] };
        }
      }
    } finally {
      this.#engine.pool.release(block);
      if (pinned) this.#cache.release(handles);
    }
    const end = performance.now();
    stats.generatedTokens = ids.length;
    stats.decodeMs = end - tDecode - stats.prefillMs;
    stats.totalMs = end - t0;
    yield { type: "done", text, ids, stats };
  }

  /** The whole answer and its stats. */
  async generateText(req: GenerateRequest): Promise<GenerateResult> {
    for await (const ev of this.generate(req)) if (ev.type === "done") return { text: ev.text, ids: ev.ids, stats: ev.stats };
    throw new ApeError("E_INTERNAL", "generation ended without a result");
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#cache.clearGpu();
    if (this.#prefix.block) this.#engine.pool.release(this.#prefix.block);
    this.#engine.destroy();
    if (typeof this.options.store !== "object") await this.#cache.store.close();
  }
}
