/**
 * APE on the engine (../shared/APE.md): the shared prefix encoded once at positions 0..P-1; contexts
 * encoded independently, all in ONE batched forward pass, each attending [prefix, itself] at positions
 * P..P+L_i-1; query (and generated) tokens at P + max L_i onward, attending prefix + themselves plainly
 * and all selected contexts with scores / T, merged with w_C = sigmoid(S*T*LSE_C - LSE_O) in every
 * layer and head. Modes: `sequential` (everything concatenated, causal: the baseline), `parallel`
 * (APE layout, T = S = 1) and `ape`.
 *
 * @example
 * ```ts
 * import { loadEngineModel } from "../model/load.ts";
 * import { Engine } from "../engine/engine.ts";
 * import { encodeContexts, encodePrefix, queryLogits } from "./ape.ts";
 * const { model } = await loadEngineModel("fixtures/models/qwen2");
 * const engine = new Engine(model, { kvBudgetBytes: 4 << 20 });
 * const prefix = await encodePrefix(engine, Uint32Array.from([1, 2])); // positions 0..1, shared
 * const contexts = await encodeContexts(engine, prefix, [Uint32Array.from([3, 4, 5]), Uint32Array.from([6, 7])]); // each from position 2, in one pass
 * const logits = await queryLogits(engine, { prefix, contexts, query: Uint32Array.from([8, 9]), temperature: 0.9, scale: 0.9 });
 * console.log(logits.indexOf(Math.max(...logits))); // APE's greedy next token
 * engine.destroy();
 * model.destroy();
 * ```
 */
import type { Engine } from "../engine/engine.ts";
import type { KvBlock } from "../engine/kv_pool.ts";
import type { AttendGroup } from "../engine/forward.ts";
import { InvalidArgumentError, NonFiniteError } from "../errors.ts";

export type ApeMode = "sequential" | "parallel" | "ape";

/** APE's temperature T and scale S. */
export interface TemperatureScale {
  temperature: number;
  scale: number;
}

/** The paper's T and S, for models without a tuned pair. */
export const PAPER_TEMPERATURE_SCALE: Readonly<TemperatureScale> = Object.freeze({ temperature: 0.9, scale: 0.9 });

/**
 * THE decision of T and S, for every caller (`Ape`, `ape logits`, `modeLogits`): in `ape` mode, each of
 * T and S from the first of `choices` that names it (e.g. the request, the instance's options, the
 * model's tuned pair), else the paper's 0.9; in `sequential` and `parallel` mode 1 and 1. Both must be
 * finite and > 0 (InvalidArgumentError).
 */
export function temperatureScale(mode: ApeMode, ...choices: (Partial<TemperatureScale> | undefined)[]): TemperatureScale {
  if (mode !== "ape") return { temperature: 1, scale: 1 };
  const pick = (k: keyof TemperatureScale) => choices.find((c) => c?.[k] !== undefined)?.[k] ?? PAPER_TEMPERATURE_SCALE[k];
  const out = { temperature: pick("temperature"), scale: pick("scale") };
  if (!(out.temperature > 0 && out.scale > 0 && Number.isFinite(out.temperature) && Number.isFinite(out.scale))) {
    throw new InvalidArgumentError(`temperature and scale must be finite and > 0 (got T=${out.temperature}, S=${out.scale})`);
  }
  return out;
}

/** The shared prefix: its block (undefined when the prefix is empty) and its length P. */
export interface EncodedPrefix {
  block?: KvBlock;
  length: number;
}

/** Encodes the prefix causally at positions 0..P-1 (stored once, shared by all contexts and queries). */
export async function encodePrefix(engine: Engine, ids: Uint32Array): Promise<EncodedPrefix> {
  if (ids.length === 0) return { length: 0 };
  const block = engine.pool.allocate(ids.length, 0);
  try {
    await engine.run(ids, { groups: [{ rows: ids.length, write: block, writeAt: 0, plain: [block] }], logits: { from: 0, count: 0 } });
  } catch (e) {
    engine.pool.release(block);
    throw e;
  }
  return { block, length: ids.length };
}

/**
 * Encodes many contexts in batched forward passes (not one per context): each context's rows form a
 * group with its own block, positions P.., attending [prefix, itself] causally. Whole contexts are
 * packed into passes of up to `engine.batchRows` rows; a longer context gets a pass of its own, which
 * Engine.run splits into chunks.
 */
export async function encodeContexts(engine: Engine, prefix: EncodedPrefix, contexts: Uint32Array[]): Promise<KvBlock[]> {
  const blocks: KvBlock[] = [];
  try {
    let batch: { ids: Uint32Array; block: KvBlock }[] = [];
    let rows = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      const ids = new Uint32Array(rows);
      const groups: AttendGroup[] = [];
      let o = 0;
      for (const { ids: c, block } of batch) {
        ids.set(c, o);
        o += c.length;
        groups.push({ rows: c.length, write: block, writeAt: 0, plain: prefix.block ? [prefix.block, block] : [block] });
      }
      await engine.run(ids, { groups, logits: { from: 0, count: 0 } });
      batch = [];
      rows = 0;
    };
    for (const c of contexts) {
      if (c.length === 0) throw new InvalidArgumentError("contexts: a context has no tokens");
      if (rows + c.length > engine.batchRows) await flush();
      const block = engine.pool.allocate(c.length, prefix.length);
      blocks.push(block);
      batch.push({ ids: c, block });
      rows += c.length;
    }
    await flush();
  } catch (e) {
    for (const b of blocks) engine.pool.release(b);
    throw e;
  }
  return blocks;
}

export interface QueryInput {
  prefix: EncodedPrefix;
  contexts: KvBlock[];
  query: Uint32Array;
  temperature: number;
  scale: number;
  /** Extra token slots to reserve after the query (for generation). */
  reserve?: number;
}

/** The live sequence of a query: its block and the group description used for every step. */
export interface LiveQuery {
  block: KvBlock;
  group: (rows: number, writeAt: number) => AttendGroup;
}

/** Sets up the query's live block at position P + max L_i. */
export function startQuery(engine: Engine, q: QueryInput): LiveQuery {
  const maxL = Math.max(0, ...q.contexts.map((b) => b.tokens));
  const block = engine.pool.allocate(q.query.length + (q.reserve ?? 0), q.prefix.length + maxL);
  const plainBase = q.prefix.block ? [q.prefix.block] : [];
  return {
    block,
    group: (rows, writeAt) => ({ rows, write: block, writeAt, plain: [...plainBase, block], contexts: q.contexts }),
  };
}

/** `logits` unchanged, or NonFiniteError when a value is NaN or infinite (broken weights or config). */
export function checkFinite(logits: Float32Array, vocab: number): Float32Array {
  for (let i = 0; i < logits.length; i++) {
    if (!Number.isFinite(logits[i])) {
      throw new NonFiniteError(`logit ${i % vocab} of row ${Math.floor(i / vocab)} is ${logits[i]} (broken weights or config)`);
    }
  }
  return logits;
}

/** APE query prefill: logits of the last query token (a long query runs in chunks, see Engine.run). */
export async function queryLogits(engine: Engine, q: QueryInput): Promise<Float32Array> {
  if (q.query.length === 0) throw new InvalidArgumentError("query: no tokens");
  const live = startQuery(engine, q);
  try {
    return checkFinite(await engine.run(q.query, {
      groups: [live.group(q.query.length, 0)],
      temperature: q.temperature,
      scale: q.scale,
      logits: { from: q.query.length - 1, count: 1 },
    }), engine.model.config.vocabSize);
  } finally {
    engine.pool.release(live.block);
  }
}

/**
 * Sequential baseline: prefix + contexts + query concatenated, causal; logits of the last token, or of
 * every token with `all` ([ids.length, vocab]). Long inputs run in chunks (Engine.run).
 */
export async function sequentialLogits(engine: Engine, ids: Uint32Array, all = false): Promise<Float32Array> {
  if (ids.length === 0) throw new InvalidArgumentError("ids: no tokens");
  const block = engine.pool.allocate(ids.length, 0);
  try {
    return checkFinite(await engine.run(ids, {
      groups: [{ rows: ids.length, write: block, writeAt: 0, plain: [block] }],
      logits: all ? { from: 0, count: ids.length } : { from: ids.length - 1, count: 1 },
    }), engine.model.config.vocabSize);
  } finally {
    engine.pool.release(block);
  }
}

/**
 * One call for all three modes, as the CLI's `ape logits` uses it. T and S: `parts`', else `tuned`
 * (the model's tuned pair), else the paper's (see temperatureScale).
 */
export async function modeLogits(
  engine: Engine,
  mode: ApeMode,
  parts: { prefix: Uint32Array; contexts: Uint32Array[]; query: Uint32Array; temperature?: number; scale?: number },
  tuned?: TemperatureScale,
): Promise<Float32Array> {
  if (mode === "sequential") {
    const all = [parts.prefix, ...parts.contexts, parts.query];
    const ids = new Uint32Array(all.reduce((n, a) => n + a.length, 0));
    let o = 0;
    for (const a of all) (ids.set(a, o), o += a.length);
    return sequentialLogits(engine, ids);
  }
  const { temperature: T, scale: S } = temperatureScale(mode, parts, tuned);
  const prefix = await encodePrefix(engine, parts.prefix);
  const contexts = await encodeContexts(engine, prefix, parts.contexts).catch((e) => {
    if (prefix.block) engine.pool.release(prefix.block);
    throw e;
  });
  try {
    return await queryLogits(engine, { prefix, contexts, query: parts.query, temperature: T, scale: S });
  } finally {
    for (const b of contexts) engine.pool.release(b);
    if (prefix.block) engine.pool.release(prefix.block);
  }
}
