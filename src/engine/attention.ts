/**
 * Records one attention part of one layer: every query row of the batch attends its own list of KV
 * blocks (rowInfo: pos, listStart, listLen per row; blocks: base, tokens, capacity, firstPos), with
 * the one visibility rule (a key is visible iff its position <= the query's, within a sliding window
 * when set), scores scaled by 1/(sqrt(headDim) * temperature), and writes the softmax-weighted values
 * and the log-sum-exp APE's merge needs. This file only chooses the kernel for the batch's shape.
 *
 * @example
 * ```ts
 * import { loadEngineModel } from "../model/load.ts";
 * import { Engine } from "./engine.ts";
 * const { model } = await loadEngineModel("fixtures/models/qwen2");
 * const engine = new Engine(model, { kvBudgetBytes: 4 << 20 });
 * const ids = Uint32Array.from([1, 2, 3]); // Forward calls recordAttention once per layer: 3 rows, the row kernel
 * const block = engine.pool.allocate(ids.length, 0);
 * await engine.run(ids, { groups: [{ rows: ids.length, write: block, writeAt: 0, plain: [block] }], logits: { from: 0, count: 0 } });
 * console.log(model.kernels.has("attention")); // true
 * engine.destroy();
 * model.destroy();
 * ```
 */
import type { Model } from "../model/model.ts";
import type { KvBlock, KvPool } from "./kv_pool.ts";
import { Params, type Program } from "./program.ts";
import { decodeRows, recordDecodeAttention, recordDecodeSplits, usesDecodeAttention } from "./attention_decode.ts";
import { recordTiledAttention, usesTiledAttention } from "./attention_tiled.ts";

export interface AttentionCall {
  layer: number;
  /** Fused qkv rows ([rows, qkvDim] f32; q heads first). */
  q: GPUBuffer;
  /** Per query row (pos, listStart, listLen, _) and the block descriptors they index. */
  rowInfo: GPUBuffer;
  blocks: GPUBuffer;
  /** [rows, heads * headDim] values and [rows, heads] log-sum-exps (-1e30 where nothing is visible). */
  out: GPUBuffer;
  lse: GPUBuffer;
  temperature: number;
  rows: number;
  /**
   * The batch's row groups in order: each group's row count and the blocks its rows attend (the same
   * list for every row of a group). Block token counts may grow between replays (decode), never past
   * their capacity.
   */
  lists: { rows: number; blocks: KvBlock[] }[];
}

/**
 * The generic kernel: one workgroup of 64 threads per (query head, row), walking the row's whole list
 * (also the cheapest for decode rows over short lists: see GPU_MIN_KEYS).
 */
export function recordRowAttention(prog: Program, model: Model, pool: KvPool, a: AttentionCall): void {
  const { config: c, kernels: k } = model;
  const pipe = k.pipeline(pool.dtype === "f16" ? "attention_f16kv" : "attention", { HD: c.headDim });
  const qkvDim = (c.heads + 2 * c.kvHeads) * c.headDim;
  const scale = 1 / (Math.sqrt(c.headDim) * a.temperature);
  const params = prog.uniform(new Params().u(a.rows, c.heads, c.kvHeads, c.headDim, qkvDim).f(scale).u(c.slidingWindow).bytes());
  const bind = k.bind(pipe, [a.q, pool.k[a.layer], pool.v[a.layer], a.rowInfo, a.blocks, a.out, a.lse, params]);
  prog.dispatch(pipe, bind, c.heads, a.rows);
}

export function recordAttention(prog: Program, model: Model, pool: KvPool, a: AttentionCall): void {
  // a decode step (few rows) over a long list: split-K over the keys, each K/V read once per GQA group
  // (attention_decode.ts); over a short list the row kernel below
  if (usesDecodeAttention(model, a)) return void recordDecodeAttention(prog, model, pool, a);
  // many rows in groups (prefill, context encoding, APE queries): tiles of query rows share every K/V
  // load; a batched decode step's rows (each its own group) share none, and take the row kernel
  if (!decodeRows(a) && usesTiledAttention(model, a)) return void recordTiledAttention(prog, model, pool, a);
  recordRowAttention(prog, model, pool, a);
}

/**
 * APE's attention for one layer: the plain part (prefix + query / generated tokens, scores as they are)
 * and the context part (all selected contexts, scores / T), merged with w_C = sigmoid(S*T*LSE_C - LSE_O)
 * into `out`. A decode step whose context part runs split-K runs its plain part split-K too, and one
 * ape_combine pass combines both parts' splits and merges them (no per-part combine, no merge pass:
 * 3 dispatches instead of 5); otherwise each part takes recordAttention's kernel (into its call's out
 * and lse) and ape_merge merges them.
 */
export function recordApeAttention(prog: Program, model: Model, pool: KvPool, plain: AttentionCall, ctx: AttentionCall, out: GPUBuffer, st: number): void {
  const { config: c, kernels: k } = model;
  if (usesDecodeAttention(model, ctx)) { // plain has ctx's rows and groups
    const C = recordDecodeSplits(prog, model, pool, ctx, 0);
    const O = recordDecodeSplits(prog, model, pool, plain, 1);
    const pipe = k.pipeline("ape_combine");
    const params = prog.uniform(new Params().u(plain.rows, c.heads, c.headDim, C.splits, O.splits).f(st).bytes());
    prog.dispatch(pipe, k.bind(pipe, [C.ml, C.acc, O.ml, O.acc, out, params]), c.heads, plain.rows);
    return;
  }
  recordAttention(prog, model, pool, plain);
  recordAttention(prog, model, pool, ctx);
  const merge = k.pipeline("ape_merge");
  const mp = prog.uniform(new Params().u(plain.rows, c.heads, c.headDim).f(st).bytes());
  prog.dispatch(merge, k.bind(merge, [ctx.out, ctx.lse, plain.out, plain.lse, out, mp]), Math.ceil((c.heads * c.headDim) / 64), plain.rows);
}
