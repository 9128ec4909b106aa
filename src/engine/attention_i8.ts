/**
 * Tiled attention on integer tensor cores, for compute "int8" (shaders/attention_tiled_i8_f16kv.wgsl): many query rows
 * (an APE query over long cached contexts, prefill) with Q.K^T and P.V as int8 x int8 -> i32 subgroup-matrix products,
 * SageAttention-style. Per layer-call, quantize_kv_i8.wgsl first gives every key vector of the call's listed blocks
 * an int8 copy with one scale (s = max|x| / 127) in a per-program shadow of the pool's slots; the kernel quantizes each
 * query vector the same way, rescales the scores' exact i32 sums by both scales, runs the softmax online in f32, folds
 * V's per-key scale into P and quantizes P per (row, 64-key tile) relative to its largest value: as one int8 by default
 * (I8_P_SPLIT), or as two int8 halves of a 14-bit fixed point. Output and log-sum-exp in attention_tiled's format, split-K
 * partials merged by attention_combine.wgsl.
 * The error is the quantization's: a score is off by at most (max|q| sum|k| + max|k| sum|q|) / 254 times the score
 * scale, an output value by P's rounding (1/254 of the row's tile maximum per key; 2^-15 with the 14-bit P) plus V's
 * (|v| / 254 per key, averaged over the keys); test/attention_i8.test.ts measures it against float64 on the H200
 * (outputs within 1e-4..6e-3, more for peaked scores: the score error grows with the scores' size).
 * Taken by recordAttention on adapters with int8 subgroup matrices (Gpu.hasInt8Matrix), for a model with compute
 * "int8", f16 KV pools, head_dim 64, at least I8_ATTENTION_MIN_ROWS rows, and a shadow that fits the device's binding
 * limit (APEKIT_INT8_ATTENTION=0 declines it); elsewhere the f32 tiled kernels (attention_tiled.ts).
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { I8_ATTENTION_MIN_ROWS, i8ShadowBytes } from "./attention_i8.ts";
 * const gpu = await getGpu();
 * console.log(I8_ATTENTION_MIN_ROWS, i8ShadowBytes(1024, 8, 64)); // 64 { ints: 524288, scales: 65536 }
 * ```
 */
import process from "node:process";
import type { Model } from "../model/model.ts";
import type { KvPool } from "./kv_pool.ts";
import { Params, type Program } from "./program.ts";
import type { AttentionCall } from "./attention.ts";
import { chooseSplits, splitTargets, tileBuffer } from "./attention_tiled.ts";

/** Calls of at least this many rows take the int8 kernel under compute "int8" (fewer: the f32 kernels). */
export const I8_ATTENTION_MIN_ROWS = 64;
/** P as one int8 (1: attention_tiled_i8_f16kv) or as two int8 halves of a 14-bit fixed point (2: attention_tiled_i8p2_f16kv). */
export const I8_P_SPLIT = 1;
/** Calls with at least this many workgroups run unsplit. */
export const I8_NO_SPLIT_WORKGROUPS = 512;
/** How the kernel's two lanes of a query vector exchange maxima and sums: 0 workgroup memory, 1 subgroupShuffleXor. */
export const I8_XCHG = 1;
// (one subgroup per workgroup, each copying its own K / V tiles, measured 2.4-2.8x slower on the H200)
const HD = 64, KEYS_PER_TILE = 64, VECTORS_PER_TILE = 64;

/** Bytes of one int8 shadow (K or V: one byte per element of every pool slot) and of both parts' scales. */
export function i8ShadowBytes(capacity: number, kvHeads: number, headDim: number): { ints: number; scales: number } {
  return { ints: capacity * kvHeads * headDim, scales: 2 * capacity * kvHeads * 4 };
}

/**
 * Whether the engine may take the int8 kernel at all: yes since its H200 tests pass (2026-12-03; before, two 4-byte
 * workgroup variables beside the staging arrays made the subgroup-matrix loads read 8 bytes early).
 */
export const I8_ATTENTION_READY = true;

/** Whether recordAttention takes the int8 kernel for this call (APEKIT_INT8_ATTENTION=0 declines it: the f32 tiled kernels). */
export function usesInt8Attention(model: Model, pool: KvPool, a: Pick<AttentionCall, "rows">): boolean {
  const { gpu, config: c } = model;
  if (!I8_ATTENTION_READY || process.env.APEKIT_INT8_ATTENTION === "0" || model.compute !== "int8" || !gpu.hasInt8Matrix || pool.dtype !== "f16" || c.headDim !== HD || a.rows < I8_ATTENTION_MIN_ROWS) return false;
  const s = i8ShadowBytes(pool.capacity, c.kvHeads, c.headDim);
  return Math.max(s.ints, s.scales) <= gpu.limits.maxStorageBufferBindingSize;
}

// Per program: the shadow (reused by every layer: the program's dispatches run in order) and each list set's
// quantize items (the same for every layer).
const shadows = new WeakMap<Program, { kq: GPUBuffer; vq: GPUBuffer; scales: GPUBuffer; slots: number }>();
const itemTables = new WeakMap<Program, Map<object, { buffer: GPUBuffer; count: number }>>();

function shadow(prog: Program, pool: KvPool, kvHeads: number) {
  let s = shadows.get(prog);
  if (!s) {
    const b = i8ShadowBytes(pool.capacity, kvHeads, HD);
    s = { kq: prog.scratch(b.ints, "attention_i8.kq"), vq: prog.scratch(b.ints, "attention_i8.vq"), scales: prog.scratch(b.scales, "attention_i8.scales"), slots: pool.capacity * kvHeads };
    shadows.set(prog, s);
  }
  return s;
}

/** quantize_kv_i8's work items: (base * kvHeads, capacity, t0, n) per 64 keys of every block listed (once each). */
export function quantizeItems(lists: AttentionCall["lists"], kvHeads: number): Uint32Array {
  const seen = new Set<number>(), out: number[] = [];
  for (const g of lists) {
    for (const b of g.blocks) {
      if (seen.has(b.id)) continue;
      seen.add(b.id);
      for (let t0 = 0; t0 < b.tokens; t0 += KEYS_PER_TILE) out.push(b.base * kvHeads, b.capacity, t0, Math.min(KEYS_PER_TILE, b.tokens - t0));
    }
  }
  return new Uint32Array(out);
}

/**
 * Records the quantize pass, the int8 kernel and (when split) the combine for one attention call. `splits` forces the
 * split count (tests). Returns the splits.
 */
export function recordI8Attention(prog: Program, model: Model, pool: KvPool, a: AttentionCall, opts: { splits?: number; pSplit?: number; ablate?: number; debug?: number; xchg?: number } = {}): number {
  const { config: c, kernels: k, gpu } = model;
  if (c.headDim !== HD || pool.dtype !== "f16") throw new Error(`int8 attention: head_dim 64 and f16 KV only (got ${c.headDim}, ${pool.dtype})`);
  const group = c.heads / c.kvHeads;
  const sh = shadow(prog, pool, c.kvHeads);
  // the listed blocks' keys and values to int8 (after this layer's rope_store: the query's own block included)
  let byList = itemTables.get(prog);
  if (!byList) itemTables.set(prog, (byList = new Map()));
  let items = byList.get(a.lists);
  if (!items) {
    const table = quantizeItems(a.lists, c.kvHeads);
    const buffer = prog.scratch(Math.max(16, table.byteLength), "attention_i8.items");
    if (table.length) prog.device.queue.writeBuffer(buffer, 0, table);
    byList.set(a.lists, (items = { buffer, count: table.length / 4 }));
  }
  if (items.count > 65535) throw new Error(`int8 attention: ${items.count} key tiles to quantize exceed a grid dimension (65535)`);
  if (items.count > 0) {
    const qp = k.pipeline("quantize_kv_i8");
    const params = prog.uniform(new Params().u(c.kvHeads, sh.slots).bytes());
    prog.dispatch(qp, k.bind(qp, [pool.k[a.layer], pool.v[a.layer], items.buffer, sh.kq, sh.vq, sh.scales, params]), items.count, c.kvHeads);
  }

  const tiles = tileBuffer(prog, a, group, VECTORS_PER_TILE);
  if (tiles.count > 65535) throw new Error(`int8 attention: ${tiles.count} tiles exceed a grid dimension (65535); split the batch`);
  const keyTiles = Math.max(0, ...a.lists.map((g) => g.blocks.reduce((n, b) => n + Math.ceil(b.tokens / KEYS_PER_TILE), 0)));
  const perSplit = a.rows * c.heads * c.headDim * 4;
  // no split-K from I8_NO_SPLIT_WORKGROUPS workgroups on (H200, 2048-row prefill: 1024 workgroups, 0.475 ms unsplit
  // against 0.795 with 2 splits and their combine)
  const splits = opts.splits ?? (tiles.count * c.kvHeads >= I8_NO_SPLIT_WORKGROUPS ? 1 : chooseSplits({
    workgroups: tiles.count * c.kvHeads, keyTiles, isCpu: gpu.isCpu,
    maxSplitsByMemory: Math.floor(gpu.limits.maxStorageBufferBindingSize / perSplit),
  }));
  const name = (opts.pSplit ?? I8_P_SPLIT) === 2 ? "attention_tiled_i8p2_f16kv" : "attention_tiled_i8_f16kv";
  const pipe = k.pipeline(name, { ...(opts.ablate ? { ABLATE: opts.ablate } : {}), ...(opts.debug ? { DEBUG: opts.debug } : {}), XCHG: opts.xchg ?? I8_XCHG });
  const qkvDim = (c.heads + 2 * c.kvHeads) * c.headDim;
  const scale = Math.LOG2E / (Math.sqrt(c.headDim) * a.temperature);
  const params = prog.uniform(new Params().u(a.rows, c.heads, c.kvHeads, group, qkvDim).f(scale).u(c.slidingWindow, splits, sh.slots).bytes());
  const { out, stats, combine } = splitTargets(prog, model, a, splits);
  const bind = k.bind(pipe, [a.q, sh.kq, sh.vq, a.rowInfo, a.blocks, tiles.buffer, out, stats, params, sh.scales]);
  prog.dispatch(pipe, bind, c.kvHeads, tiles.count, splits);
  combine();
  return splits;
}
