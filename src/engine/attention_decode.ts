/**
 * Split-K ("flash-decoding") attention for the few rows of a decode step (shaders/attention_decode*.wgsl
 * and shaders/attention_combine.wgsl). Each workgroup takes one slice of a row's visible keys for one kv
 * head and reads every key and value once for all the query heads of its GQA group; a combine kernel
 * merges the slices. The number of slices is fixed here, at record time, from the capacities of the
 * rows' block lists; which keys each slice takes is worked out on the GPU from the block list as it is
 * when the step runs, so a recorded decode step stays right as its live block grows.
 *
 * @example
 * ```ts
 * import { recordDecodeAttention } from "./attention_decode.ts";
 * // recordDecodeAttention(program, model, pool, call);   // call: an AttentionCall with few rows
 * ```
 */
import type { Model } from "../model/model.ts";
import type { KvPool } from "./kv_pool.ts";
import type { AttentionCall } from "./attention.ts";
import { Params, type Program } from "./program.ts";

/** Most query rows this kernel takes (each row's workgroups read its keys once). */
export const DECODE_MAX_ROWS = 8;

/**
 * CPU adapters take the split kernel from this many keys (capacity of a row's list) on: below it both
 * kernels take about the same time there (lavapipe, 2 cores: 4.2 vs 4.3 ms at 256 keys, 5.2 vs 7.3 ms
 * at 1K, 20 vs 30 ms at 4K for SmolLM2's 9/3 heads, f16 KV), and on lavapipe every kernel costs
 * ~1-2 s of compile time before its first use.
 */
export const CPU_MIN_KEYS = 1024;

/** Most query heads one workgroup serves (the kernel's register arrays); larger GQA groups take several. */
const MAX_HEADS = 8;

export interface DecodeShape {
  /** Key splits, query heads per workgroup, workgroups per kv head, keys per lane group and step, threads. */
  splits: number;
  headsPerGroup: number;
  chunks: number;
  keysPerStep: number;
  threads: number;
  /** Load the next step's keys during the current step (GPUs). */
  prefetch: boolean;
}

/**
 * The kernel's shape for `rows` rows over lists of at most `keys` keys (their blocks' capacities). On a
 * GPU: enough workgroups to fill the machine (~2048: several rounds of those an H200's 132 SMs hold
 * at once) but no split under 128 keys; on a CPU adapter, which runs a few workgroups at a time, fewer and
 * longer splits.
 */
export function decodeShape(model: Model, rows: number, keys: number, splits?: number): DecodeShape {
  const { config: c, gpu } = model;
  const group = c.heads / c.kvHeads;
  const chunks = Math.ceil(group / MAX_HEADS);
  const headsPerGroup = Math.ceil(group / chunks);
  // GPU: 8+ lane groups (128 threads at head_dim 64, 256 from 128 on); CPU: 64 (fewer barrier rounds)
  const threads = gpu.isCpu ? Math.max(64, c.headDim / 4) : Math.min(256, Math.max(128, 2 * c.headDim));
  // 4 keys per lane group and step on GPUs (16-32 scores per group between barriers), 2 on CPU adapters
  // (as fast there, and quicker to compile); fewer where workgroup memory is short (tiny head_dim)
  let keysPerStep = gpu.isCpu ? 2 : 4;
  while (keysPerStep > 1 && workgroupBytes(c.headDim, headsPerGroup, keysPerStep, threads) > gpu.limits.maxComputeWorkgroupStorageSize) keysPerStep >>= 1;
  const [target, minKeys] = gpu.isCpu ? [8, 512] : [2048, 128];
  const wanted = Math.ceil(target / (c.kvHeads * chunks * rows));
  const n = splits ?? Math.max(1, Math.min(wanted, Math.ceil(keys / minKeys), 65535));
  return { splits: n, headsPerGroup, chunks, keysPerStep, threads, prefetch: !gpu.isCpu };
}

/** Workgroup memory of the kernel (its arrays red, sp, st, scan; see attention_decode_body.wgsl). */
export function workgroupBytes(headDim: number, heads: number, keysPerStep: number, threads: number): number {
  const q4 = headDim / 4, groups = Math.floor(threads / q4), pairs = keysPerStep * heads;
  return 4 * Math.max(groups * pairs * (q4 | 1), heads * groups * q4 * 4) + 4 * groups * pairs + 16 * groups * heads + 4 * threads + 16;
}

/**
 * Whether recordAttention takes this kernel for `a`: few rows, and on a CPU adapter long lists only.
 * (Each row's workgroups read its keys: rows of one step do not share K/V loads, so batches of more
 * rows go to the kernels that do.)
 */
export function usesDecodeAttention(model: Model, a: AttentionCall): boolean {
  if (a.rows > DECODE_MAX_ROWS || model.config.headDim > 512) return false; // attention_combine: headDim <= 512
  return !model.gpu.isCpu || listKeys(a) >= CPU_MIN_KEYS;
}

/** Most keys any row's list can hold (its blocks' capacities). */
function listKeys(a: AttentionCall): number {
  return Math.max(0, ...a.lists.map((l) => l.blocks.reduce((n, b) => n + b.capacity, 0)));
}

/** Partial-result buffers of one program, shared by all its attention calls (they run one after another). */
const partials = new WeakMap<Program, { ml: GPUBuffer; acc: GPUBuffer }>();

function partialBuffers(prog: Program, mlBytes: number, accBytes: number): { ml: GPUBuffer; acc: GPUBuffer } {
  let p = partials.get(prog);
  if (!p || p.ml.size < mlBytes || p.acc.size < accBytes) {
    p = {
      ml: prog.scratch(Math.max(mlBytes, p?.ml.size ?? 0), "attention.partialML"),
      acc: prog.scratch(Math.max(accBytes, p?.acc.size ?? 0), "attention.partialAcc"),
    };
    partials.set(prog, p);
  }
  return p;
}

/**
 * Records split-K attention for `a` (at most DECODE_MAX_ROWS rows): the split kernel, then the combine
 * kernel writing a.out and a.lse. `splits` overrides the count chosen from the lists' capacities.
 */
export function recordDecodeAttention(prog: Program, model: Model, pool: KvPool, a: AttentionCall, splits?: number): void {
  const { config: c, kernels: k } = model;
  if (a.rows > DECODE_MAX_ROWS) throw new Error(`decode attention: ${a.rows} rows (at most ${DECODE_MAX_ROWS})`);
  const s = decodeShape(model, a.rows, listKeys(a), splits);
  const pipe = k.pipeline(pool.dtype === "f16" ? "attention_decode_f16kv" : "attention_decode", {
    HD: c.headDim, NH: s.headsPerGroup, KT: s.keysPerStep, WG: s.threads, PREFETCH: s.prefetch ? 1 : 0,
  });
  const qkvDim = (c.heads + 2 * c.kvHeads) * c.headDim;
  const scale = 1 / (Math.sqrt(c.headDim) * a.temperature);
  const n = s.splits * a.rows * c.heads;
  const { ml, acc } = partialBuffers(prog, n * 8, n * c.headDim * 4);
  const params = prog.uniform(new Params().u(a.rows, c.heads, c.kvHeads, qkvDim).f(scale).u(c.slidingWindow, s.splits, s.chunks).bytes());
  prog.dispatch(pipe, k.bind(pipe, [a.q, pool.k[a.layer], pool.v[a.layer], a.rowInfo, a.blocks, ml, acc, params]), s.splits, c.kvHeads * s.chunks, a.rows);
  const combine = k.pipeline("attention_combine");
  const cp = prog.uniform(new Params().u(a.rows, c.heads, c.headDim, s.splits).bytes());
  prog.dispatch(combine, k.bind(combine, [ml, acc, a.out, a.lse, cp]), c.heads, a.rows);
}
