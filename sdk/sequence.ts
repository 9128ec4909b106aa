/**
 * Decode orchestration: lays out one request's live sequence (sequential: prefix + documents + query
 * in one block; parallel / APE: the cached documents' blocks pinned, the query attending to them) and
 * runs its decode in the instance's Batcher (one batched step with every other live request), filling
 * the request's timing and cache counters.
 *
 * @example
 * ```ts
 * import { loadModel } from "./load.ts";
 * import { Engine } from "../src/engine/engine.ts";
 * import { Batcher } from "../src/engine/batch.ts";
 * import { encodePrefix } from "../src/ape/ape.ts";
 * import { ContextCache } from "../src/cache/context_cache.ts";
 * import { kvCodec } from "../src/cache/kv_codec.ts";
 * import { openStore } from "../src/cache/store.ts";
 * import { promptLayout } from "./prompt.ts";
 * import { cacheScope } from "./context_id.ts";
 * import { Contexts } from "./contexts.ts";
 * import type { GenerateStats } from "./options.ts";
 * import { openSequence } from "./sequence.ts";
 * const model = await loadModel("fixtures/models/qwen2");
 * const engine = new Engine(model.model, { kvBudgetBytes: 4 << 20 });
 * const batcher = new Batcher(engine);
 * const layout = promptLayout(model, { prefix: "Answer from the documents.\n\n" });
 * const prefix = await encodePrefix(engine, layout.prefixIds);
 * const store = await openStore("memory:");
 * const cache = new ContextCache(engine, store, kvCodec(model.model, engine.pool.dtype), cacheScope(model, layout.prefixIds, prefix));
 * const contexts = new Contexts(cache, layout.documentIds, engine.pool.dtype);
 * const handles = [contexts.handle("The capital of Vermont is Montpelier.")];
 * const stats = {} as GenerateStats; // openSequence fills the prompt and cache fields
 * const seq = await openSequence(engine, batcher, contexts, prefix, { mode: "ape", prefixIds: layout.prefixIds, handles, query: layout.queryIds("Capital?"), temperature: 0.9, scale: 0.9, maxTokens: 4 }, stats);
 * const out: number[] = [];
 * try {
 *   for await (const ids of seq.decode({ stopIds: [model.tokenizer.eosId!] })) out.push(...ids);
 * } finally {
 *   seq.release();
 * }
 * console.log(stats.promptTokens === seq.prompt.length, stats.cacheMisses, out.length <= seq.maxTokens); // true 1 true
 * await batcher.close();
 * await store.close();
 * engine.destroy();
 * model.destroy();
 * ```
 */
import type { Engine } from "../src/engine/engine.ts";
import type { DecodeRequest } from "../src/engine/generate.ts";
import type { Batcher } from "../src/engine/batch.ts";
import type { AttendGroup } from "../src/engine/forward.ts";
import type { KvBlock } from "../src/engine/kv_pool.ts";
import { type EncodedPrefix, startQuery } from "../src/ape/ape.ts";
import { CapacityError } from "../src/errors.ts";
import type { ContextLease } from "../src/cache/context_cache.ts";
import type { Contexts } from "./contexts.ts";
import { concatIds } from "./prompt.ts";
import type { ContextHandle, GenerateStats, Mode } from "./options.ts";

export interface SequenceRequest {
  mode: Mode;
  /** Ids of the shared prefix (sequential mode prefills them with the documents). */
  prefixIds: Uint32Array;
  handles: ContextHandle[];
  query: Uint32Array;
  temperature: number;
  scale: number;
  maxTokens: number;
}

export interface Sequence {
  /** The ids prefilled by the decode loop (sequential: the whole prompt; else the query). */
  prompt: Uint32Array;
  /** Tokens it may generate: the request's maxTokens, or fewer where the model's positions end first. */
  maxTokens: number;
  /** Whether maxTokens was cut to the model's position limit (a "length" stop then is a "limit" stop). */
  limited: boolean;
  decode(opts: Omit<DecodeRequest, "prompt" | "block" | "group" | "temperature" | "scale" | "maxTokens">): AsyncGenerator<number[]>;
  /** Frees the live block and unpins the documents (once; later calls do nothing). */
  release(): void;
}

/**
 * Opens a request's live sequence; fills `stats` (promptTokens, encodeMs / loadMs, cache hits / misses
 * and cached tokens: this request's own, from its lease). Its decode runs in `batcher`'s shared steps.
 */
export async function openSequence(
  engine: Engine, batcher: Batcher, contexts: Contexts, prefix: EncodedPrefix, req: SequenceRequest, stats: GenerateStats,
): Promise<Sequence> {
  const { maxTokens, limited } = positionBudget(engine, prefix, req);
  req = { ...req, maxTokens };
  let block: KvBlock;
  let group: (rows: number, writeAt: number) => AttendGroup;
  let prompt: Uint32Array;
  let lease: ContextLease | undefined;
  if (req.mode === "sequential") {
    prompt = concatIds(req.prefixIds, ...req.handles.map((h) => h.ids), req.query);
    const b = block = engine.pool.allocate(prompt.length + req.maxTokens, 0);
    group = (rows, writeAt) => ({ rows, write: b, writeAt, plain: [b] });
  } else {
    lease = await contexts.lease(req.handles);
    const own = lease.stats;
    stats.encodeMs = own.encodeMs;
    stats.loadMs = own.loadMs;
    stats.cacheHits = own.hits.gpu + own.hits.host + own.hits.store;
    stats.cacheMisses = own.misses;
    stats.cachedTokens = own.cachedTokens;
    prompt = req.query;
    try {
      const live = startQuery(engine, { prefix, contexts: lease.blocks, query: req.query, temperature: req.temperature, scale: req.scale, reserve: req.maxTokens });
      block = live.block;
      group = live.group;
    } catch (e) {
      lease.release();
      throw e;
    }
  }
  stats.promptTokens = prompt.length;
  let released = false;
  return {
    prompt,
    maxTokens,
    limited,
    // the repetition penalty sees the whole prompt in every mode: in parallel / APE mode the prefix and
    // documents are not in `prompt`, so they go in as history
    decode: (opts) => batcher.decode({
      history: req.mode === "sequential" ? undefined : concatIds(req.prefixIds, ...req.handles.map((h) => h.ids)),
      ...opts, prompt, block, group, temperature: req.temperature, scale: req.scale, maxTokens: req.maxTokens,
    }),
    release: () => {
      if (released) return;
      released = true;
      engine.pool.release(block);
      lease?.release();
    },
  };
}

/**
 * The model's position limit (max_position_embeddings) for a request: a prompt whose last position is
 * past it is refused with CapacityError naming the numbers; generation is cut where positions run out.
 * Sequential prompts start at 0; parallel / APE queries at P + max L_i (the prefix and longest document).
 */
function positionBudget(engine: Engine, prefix: EncodedPrefix, req: SequenceRequest): { maxTokens: number; limited: boolean } {
  const max = engine.model.config.maxPositions;
  const docs = req.handles.map((h) => h.tokens);
  let start: number, rows: number, what: string;
  if (req.mode === "sequential") {
    start = 0;
    rows = req.prefixIds.length + docs.reduce((a, b) => a + b, 0) + req.query.length;
    what = `prefix (${req.prefixIds.length}) + documents (${docs.reduce((a, b) => a + b, 0)}) + query (${req.query.length}) = ${rows} tokens`;
  } else {
    const longest = Math.max(0, ...docs);
    start = prefix.length + longest;
    rows = req.query.length;
    what = `prefix (${prefix.length}) + longest document (${longest}) + query (${rows}) = ${start + rows} positions`;
  }
  if (start + rows > max) throw new CapacityError(`the prompt needs ${what}, over the model's max_position_embeddings (${max})`);
  // the first token comes from the prompt's last position; each further one takes one more position
  const room = max - (start + rows) + 1;
  return req.maxTokens > room ? { maxTokens: room, limited: true } : { maxTokens: req.maxTokens, limited: false };
}
