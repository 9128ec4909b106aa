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
import { decodeRows, recordApeDecodeSplits, recordDecodeAttention, recordDecodeSplits, usesDecodeAttention } from "./attention_decode.ts";
import { recordTiledAttention, usesTiledAttention } from "./attention_tiled.ts";
import { recordI8Attention, usesInt8Attention } from "./attention_i8.ts";

export interface AttentionCall {
  layer: number;
  /** Fused qkv rows ([rows, qkvDim] f32; q heads first). */
  q: GPUBuffer;
  /**
   * Per query row (pos, listStart, listLen, _) and the block descriptors they index. rowInfo may be a range of
   * a buffer (Forward keeps APE's two parts' rows in one buffer, so that one dispatch can serve both).
   */
  rowInfo: GPUBuffer | GPUBufferBinding;
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

/** The row kernel's pipeline constants (shaders/include/attention_body.wgsl). */
export interface RowAttentionShape {
  /** Query heads per workgroup (of one kv head's group; <= 8) and the workgroups per kv head. */
  NH: number;
  chunks: number;
  /** Threads, keys per chunk (<= WG) and score lanes per key (1, 2 or 4, dividing headDim / 4). */
  WG: number;
  CH: number;
  KP: number;
}

/** Workgroup memory the row kernel declares for a shape (mirrors attention_body.wgsl's arrays). */
export function rowAttentionBytes(headDim: number, s: Pick<RowAttentionShape, "NH" | "WG" | "CH" | "KP">): number {
  const q4 = headDim / 4, ks = Math.floor(s.WG / q4), r = Math.min(Math.floor(s.WG / s.NH), 32);
  const floats = s.NH * q4 * 4 + s.CH + Math.max(s.CH * s.KP * s.NH, s.NH * ks * q4 * 4) + s.CH * s.NH + r * s.NH + 8 + 8 * ks + 2 * s.WG + 4;
  return 4 * floats;
}

/**
 * The row kernel's shape: a workgroup per (row, kv head) serving up to 8 heads of its GQA group; on GPUs
 * 256 threads and chunks of up to 256 keys (a decode step over a short list, < GPU_MIN_KEYS, is one chunk:
 * all its K and V loads in flight at once), 4 lanes per key in the score step (contiguous 64-byte reads);
 * on CPU adapters 64 threads, one lane per key. Shrunk until it fits the device's workgroup memory.
 */
export function rowAttentionShape(gpu: { isCpu: boolean; limits: { maxComputeWorkgroupStorageSize: number } }, headDim: number, heads: number, kvHeads: number): RowAttentionShape {
  const group = heads / kvHeads, q4 = headDim / 4;
  let chunks = Math.ceil(group / 8), NH = Math.ceil(group / chunks);
  let WG = gpu.isCpu ? 64 : 256;
  while (WG < q4) WG *= 2;
  // ceil(CH / KS) <= 16 values per lane, KS = WG / q4 value slices
  let CH = Math.min(WG, 16 * Math.floor(WG / q4));
  let KP = gpu.isCpu ? 1 : [4, 2, 1].find((k) => q4 % k === 0)!;
  const limit = gpu.limits.maxComputeWorkgroupStorageSize;
  // fewer score lanes per key, then fewer threads (the final sum is NH * WG * 16 bytes), shorter chunks, fewer heads
  while (rowAttentionBytes(headDim, { NH, WG, CH, KP }) > limit) {
    if (KP > 1) KP /= 2;
    else if (WG / 2 >= Math.max(q4, 32)) (WG /= 2), (CH = Math.min(CH, WG, 16 * Math.floor(WG / q4)));
    else if (CH > 8) CH = Math.ceil(CH / 2);
    else if (NH > 1) NH = Math.ceil(group / ++chunks);
    else break;
  }
  return { NH, chunks, WG, CH, KP };
}

/**
 * The generic kernel: one workgroup per (row, kv head [, chunk of its query heads]), walking the row's
 * whole list in chunks of visible keys (also the cheapest for decode rows over short lists: see
 * GPU_MIN_KEYS).
 */
export function recordRowAttention(prog: Program, model: Model, pool: KvPool, a: AttentionCall): void {
  const { config: c, kernels: k } = model;
  const { chunks, ...shape } = rowAttentionShape(model.gpu, c.headDim, c.heads, c.kvHeads);
  const pipe = k.pipeline(pool.dtype === "f16" ? "attention_f16kv" : "attention", { HD: c.headDim, ...shape });
  const qkvDim = (c.heads + 2 * c.kvHeads) * c.headDim;
  const scale = 1 / (Math.sqrt(c.headDim) * a.temperature);
  const params = prog.uniform(new Params().u(a.rows, c.heads, c.kvHeads, c.headDim, qkvDim).f(scale).u(c.slidingWindow).bytes());
  const bind = k.bind(pipe, [a.q, pool.k[a.layer], pool.v[a.layer], a.rowInfo, a.blocks, a.out, a.lse, params]);
  prog.dispatch(pipe, bind, c.kvHeads * chunks, a.rows);
}

export function recordAttention(prog: Program, model: Model, pool: KvPool, a: AttentionCall): void {
  // a decode step (few rows) over a long list: split-K over the keys, each K/V read once per GQA group
  // (attention_decode.ts); over a short list the row kernel below
  if (usesDecodeAttention(model, a)) return void recordDecodeAttention(prog, model, pool, a);
  // many rows in groups (prefill, context encoding, APE queries): tiles of query rows share every K/V
  // load (on integer tensor cores under compute "int8": attention_i8.ts); a batched decode step's rows
  // (each its own group) share none, and take the row kernel
  if (!decodeRows(a) && usesInt8Attention(model, pool, a)) return void recordI8Attention(prog, model, pool, a);
  if (!decodeRows(a) && usesTiledAttention(model, a)) return void recordTiledAttention(prog, model, pool, a);
  recordRowAttention(prog, model, pool, a);
}

/**
 * APE's attention for one layer: the plain part (prefix + query / generated tokens, scores as they are)
 * and the context part (all selected contexts, scores / T), merged with w_C = sigmoid(S*T*LSE_C - LSE_O)
 * into `out`. A decode step whose context part runs split-K runs its plain part split-K too (in the same
 * dispatch where both parts' rows share a buffer: recordApeDecodeSplits), and one ape_combine pass combines
 * both parts' splits and merges them (no per-part combine, no merge pass: 2 dispatches instead of 5); otherwise each part takes recordAttention's kernel (into its call's out
 * and lse) and ape_merge merges them.
 */
export function recordApeAttention(prog: Program, model: Model, pool: KvPool, plain: AttentionCall, ctx: AttentionCall, out: GPUBuffer, st: number): void {
  const { config: c, kernels: k } = model;
  if (usesDecodeAttention(model, ctx)) { // plain has ctx's rows and groups
    // both parts in one split dispatch where the buffers allow (Forward's layout), else one each
    const both = recordApeDecodeSplits(prog, model, pool, ctx, plain);
    let parts: [GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer], splitsC: number, splitsO: number, offO = 0;
    if (both) {
      ({ splitsC, splitsO, offO } = both);
      parts = [both.ml, both.acc, both.ml, both.acc];
    } else {
      const C = recordDecodeSplits(prog, model, pool, ctx, 0);
      const O = recordDecodeSplits(prog, model, pool, plain, 1);
      [splitsC, splitsO, parts] = [C.splits, O.splits, [C.ml, C.acc, O.ml, O.acc]];
    }
    const pipe = k.pipeline("ape_combine");
    const params = prog.uniform(new Params().u(plain.rows, c.heads, c.headDim, splitsC, splitsO).f(st).u(offO).bytes());
    prog.dispatch(pipe, k.bind(pipe, [...parts, out, params]), c.heads, plain.rows);
    return;
  }
  recordAttention(prog, model, pool, plain);
  recordAttention(prog, model, pool, ctx);
  const merge = k.pipeline("ape_merge");
  const mp = prog.uniform(new Params().u(plain.rows, c.heads, c.headDim).f(st).bytes());
  prog.dispatch(merge, k.bind(merge, [ctx.out, ctx.lse, plain.out, plain.lse, out, mp]), Math.ceil((c.heads * c.headDim) / 64), plain.rows);
}
