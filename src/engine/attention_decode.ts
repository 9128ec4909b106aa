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
 * import { loadEngineModel } from "../model/load.ts";
 * import { decodeShape, usesDecodeAttention } from "./attention_decode.ts";
 * const { model } = await loadEngineModel("fixtures/models/qwen2");
 * // the split-K shape of one decode row over 4096 cached keys on this adapter (kernel, splits, threads, ...)
 * console.log(decodeShape(model, 1, 4096));
 * // which calls take it: few rows over many keys (the lists' blocks hold the keys)
 * console.log(usesDecodeAttention(model, { rows: 1, lists: [{ rows: 1, blocks: [{ capacity: 4096 }] }] } as never)); // true
 * model.destroy();
 * ```
 */
import type { Model } from "../model/model.ts";
import type { KvPool } from "./kv_pool.ts";
import type { AttentionCall } from "./attention.ts";
import { Params, type Program } from "./program.ts";

/**
 * Most query rows this kernel takes when some row group has several rows (a short query): each row's
 * workgroups read its keys, so rows of one group do not share K/V loads and larger such batches go to the
 * tiled kernel, which does. A batched decode step (every group a single row, each attending its own list)
 * takes it at any row count (decodeRows).
 */
export const DECODE_MAX_ROWS = 8;

/** Most rows of one dispatch of the split and combine kernels (their grids' z / y dimension). */
const DECODE_ROW_LIMIT = 65535;

/**
 * Whether `a`'s rows are decode rows: at most DECODE_MAX_ROWS, or every row its own group (a batched
 * decode step, where no two rows share a list, so nothing is gained by tiling them together).
 */
export function decodeRows(a: Pick<AttentionCall, "rows" | "lists">): boolean {
  return a.rows <= DECODE_MAX_ROWS || (a.rows <= DECODE_ROW_LIMIT && a.lists.every((l) => l.rows === 1));
}

/**
 * CPU adapters take the split kernel from this many keys (capacity of a row's list) on: below it both
 * kernels take about the same time there (lavapipe, 2 cores: 4.2 vs 4.3 ms at 256 keys, 5.2 vs 7.3 ms
 * at 1K, 20 vs 30 ms at 4K for SmolLM2's 9/3 heads, f16 KV), and on lavapipe every kernel costs
 * ~1-2 s of compile time before its first use.
 */
export const CPU_MIN_KEYS = 1024;

/**
 * GPU adapters take the split kernels from this many keys (capacity of a row's list) on; below it the
 * row kernel (attention.wgsl, one workgroup per (head, row), no combine pass) costs less per call.
 * H200, Bun + Dawn, 1B shape, f16 KV, one layer-call with its combine (`ape bench attention-decode`):
 * 64 keys: row 9.1 us, lanes 13.2-14.3; 320 keys: row 24.8, lanes 13.6-15.6; 1024: row 67.7, lanes 14.2.
 */
export const GPU_MIN_KEYS = 256;

/** Most query heads one workgroup serves (the kernels' register arrays); larger GQA groups take several. */
const MAX_HEADS = 8;

/**
 * The split kernels: "lanes" (attention_decode*.wgsl: HD/4 lanes per key, partial dots reduced through
 * workgroup memory, 3 barriers per 4 keys of each lane group) and "keys" (attention_decode_keys*.wgsl:
 * threads own whole keys for the scores, then stream V rows for all heads; 3 barriers per chunk of
 * keysPerThread * threads keys; head_dim a multiple of 8).
 */
export type DecodeKernel = "lanes" | "keys";

export interface DecodeShape {
  kernel: DecodeKernel;
  /** Key splits, query heads per workgroup, workgroups per kv head, threads per workgroup. */
  splits: number;
  headsPerGroup: number;
  chunks: number;
  threads: number;
  /** lanes: keys per lane group and step; load the next step's keys during the current one (GPUs). */
  keysPerStep: number;
  prefetch: boolean;
  /** keys: keys per thread and chunk (chunks of keysPerThread * threads keys); V rows loaded ahead. */
  keysPerThread: number;
  vUnroll: number;
}

/** What a caller (bench, tests) may force; anything left out is chosen as for the engine. */
export interface DecodeOptions {
  kernel?: DecodeKernel;
  splits?: number;
  /** Fewest keys per split when the count is chosen (the count is also capped by targetWorkgroups). */
  minKeysPerSplit?: number;
  /** Workgroups per call the chosen split count aims at. */
  targetWorkgroups?: number;
  threads?: number;
  keysPerThread?: number;
  vUnroll?: number;
  /** lanes: keys per lane group and step (1, 2, 4 or 8). */
  keysPerStep?: number;
}

/**
 * The kernel and its shape for `rows` rows over lists of at most `keys` keys (their blocks' capacities).
 * Lanes on GPUs, keys on CPU adapters wherever head_dim allows. On a GPU: enough workgroups to fill the machine (~512
 * up to 64K keys, ~1024 past them: a few rounds of those an H200's 132 SMs hold at once) but no split under 256 keys; on a CPU adapter,
 * which runs a few workgroups at a time, fewer and longer splits. `opts` as a number: the split count.
 */
export function decodeShape(model: Model, rows: number, keys: number, opts: DecodeOptions | number = {}): DecodeShape {
  const o: DecodeOptions = typeof opts === "number" ? { splits: opts } : opts;
  const { config: c, gpu } = model;
  const group = c.heads / c.kvHeads;
  const chunks = Math.ceil(group / MAX_HEADS);
  const headsPerGroup = Math.ceil(group / chunks);
  const wgBytes = gpu.limits.maxComputeWorkgroupStorageSize;
  // GPUs: lanes (H200, 1B shape, f16 KV, `ape bench attention-decode`: 644 us per layer-call over 128K keys
  // vs 945 us for keys, 63 vs 109 us at 8K); CPU adapters: keys where head_dim allows (lavapipe: 1.3 vs 1.7 ms at 2K)
  const kernel = o.kernel ?? (!gpu.isCpu || c.headDim % 8 !== 0 ? "lanes" : "keys");
  if (kernel === "keys" && c.headDim % 8 !== 0) throw new Error(`decode attention: the keys kernel needs head_dim % 8 == 0 (got ${c.headDim})`);
  let threads: number, keysPerStep = 1, keysPerThread = 1;
  if (kernel === "lanes") {
    // GPU: 8+ lane groups (128 threads at head_dim 64, 256 from 128 on); CPU: 64 (fewer barrier rounds)
    threads = o.threads ?? (gpu.isCpu ? Math.max(64, c.headDim / 4) : Math.min(256, Math.max(128, 2 * c.headDim)));
    // 4 keys per lane group and step on GPUs (16-32 scores per group between barriers), 2 on CPU adapters
    // (as fast there, and quicker to compile); fewer where workgroup memory is short (tiny head_dim)
    keysPerStep = Math.min(8, o.keysPerStep ?? (gpu.isCpu ? 2 : 4));
    while (keysPerStep > 1 && workgroupBytes(c.headDim, headsPerGroup, keysPerStep, threads) > wgBytes) keysPerStep >>= 1;
  } else {
    // a multiple of head_dim/8 (the value pass's lanes per key) and of 16, at least 16 per head (reductions)
    const step = Math.max(16, c.headDim / 8);
    threads = Math.ceil(Math.max(o.threads ?? (gpu.isCpu ? 128 : 256), 16 * headsPerGroup) / step) * step;
    keysPerThread = Math.min(8, o.keysPerThread ?? (gpu.isCpu ? 2 : 4));
    while (keysPerThread > 1 && keysWorkgroupBytes(c.headDim, headsPerGroup, keysPerThread, threads) > wgBytes) keysPerThread >>= 1;
    while (threads > step && keysWorkgroupBytes(c.headDim, headsPerGroup, keysPerThread, threads) > wgBytes) threads -= step;
  }
  // fewest keys per split: on GPUs 128 for lanes (8K keys: 20.9 us vs 26.0 at 64 and 36.4 at 32), down to 32
  // for short lists, which need the workgroups (320 keys: 13.6 us at 32, 15.6 at 128; 1024: 14.2 at 64)
  const lanesMin = Math.min(128, Math.max(32, 2 ** Math.floor(Math.log2(Math.max(1, keys / 16)))));
  // (GPUs: ~1024 workgroups from 64K keys on, ~512 below; H200, lanes with its combine, one layer-call: 32K keys
  // 44.1 us at 512, 48.0 at 1024, 57.6-57.7 at 768 / 1536 (2026-12-02 22:03), 56.9 at 2048 and 56.8 at 4096;
  // 128K keys 138.7 at 1024 vs 147.0 at 2048 and 166.0 at 4096; 8K keys the same at 512 to 1536)
  const [target, minKeys] = gpu.isCpu ? [8, 512] : [keys <= 65536 ? 512 : 1024, kernel === "keys" ? 256 : lanesMin];
  const wanted = Math.ceil((o.targetWorkgroups ?? target) / (c.kvHeads * chunks * rows));
  const n = o.splits ?? Math.max(1, Math.min(wanted, Math.ceil(keys / (o.minKeysPerSplit ?? minKeys)), 65535));
  return { kernel, splits: n, headsPerGroup, chunks, threads, keysPerStep, prefetch: !gpu.isCpu, keysPerThread, vUnroll: Math.min(8, o.vUnroll ?? 4) };
}

/** Workgroup memory of the lanes kernel (its arrays red, sp, st, scan; see attention_decode_body.wgsl). */
export function workgroupBytes(headDim: number, heads: number, keysPerStep: number, threads: number): number {
  const q4 = headDim / 4, groups = Math.floor(threads / q4), pairs = keysPerStep * heads;
  return 4 * Math.max(groups * pairs * (q4 | 1), heads * groups * q4 * 4) + 4 * groups * pairs + 16 * groups * heads + 4 * threads + 16;
}

/** Workgroup memory of the keys kernel (sc, qs, red, red2, scan; see attention_decode_keys_body.wgsl). */
export function keysWorkgroupBytes(headDim: number, heads: number, keysPerThread: number, threads: number): number {
  return 4 * (Math.max(heads * keysPerThread * threads, 8 * threads) + heads * headDim + heads * threads + 16 * heads + threads) + 16;
}

/**
 * Whether recordAttention takes a split kernel for `a`: few rows, over lists long enough that it beats
 * the row kernel (GPU_MIN_KEYS, CPU_MIN_KEYS keys of capacity). (Each row's workgroups read its keys:
 * rows of one step do not share K/V loads, so batches of more rows go to the kernels that do.)
 */
export function usesDecodeAttention(model: Model, a: AttentionCall): boolean {
  if (!decodeRows(a) || model.config.headDim > 512) return false; // attention_combine: headDim <= 512
  return listKeys(a) >= (model.gpu.isCpu ? CPU_MIN_KEYS : GPU_MIN_KEYS);
}

/** Most keys any row's list can hold (its blocks' capacities). */
function listKeys(a: AttentionCall): number {
  return Math.max(0, ...a.lists.map((l) => l.blocks.reduce((n, b) => n + b.capacity, 0)));
}

/**
 * Partial-result buffers of one program, shared by all its attention calls (they run one after another):
 * one pair per part (0, 1: APE's context and plain parts, combined together by ape_combine).
 */
const partials = new WeakMap<Program, ({ ml: GPUBuffer; acc: GPUBuffer } | undefined)[]>();

function partialBuffers(prog: Program, part: number, mlBytes: number, accBytes: number): { ml: GPUBuffer; acc: GPUBuffer } {
  const parts = partials.get(prog) ?? [];
  partials.set(prog, parts);
  let p = parts[part];
  if (!p || p.ml.size < mlBytes || p.acc.size < accBytes) {
    p = parts[part] = {
      ml: prog.scratch(Math.max(mlBytes, p?.ml.size ?? 0), `attention.partialML${part}`),
      acc: prog.scratch(Math.max(accBytes, p?.acc.size ?? 0), `attention.partialAcc${part}`),
    };
  }
  return p;
}

/** A split kernel's partial results: (m, l) and un-normalised outputs per (split, row, head), and the split count. */
export interface DecodePartials {
  ml: GPUBuffer;
  acc: GPUBuffer;
  splits: number;
  shape: DecodeShape;
}

/**
 * Records the split kernel alone for `a` (decode rows: see decodeRows), writing its partials into the
 * program's buffers for `part` (combine_body.wgsl's layout); the caller records the combine. `opts`
 * overrides the shape chosen from the lists' capacities (a number: the split count).
 */
export function recordDecodeSplits(prog: Program, model: Model, pool: KvPool, a: AttentionCall, part = 0, opts?: DecodeOptions | number): DecodePartials {
  const { config: c, kernels: k } = model;
  if (!decodeRows(a)) throw new Error(`decode attention: ${a.rows} rows in groups of several (at most ${DECODE_MAX_ROWS})`);
  const s = decodeShape(model, a.rows, listKeys(a), opts);
  const n = s.splits * a.rows * c.heads;
  const { ml, acc } = partialBuffers(prog, part, n * 8, n * c.headDim * 4);
  const params = decodeParams(prog, model, a, s);
  const pipe = decodePipeline(model, pool, s, false);
  prog.dispatch(pipe, k.bind(pipe, [a.q, pool.k[a.layer], pool.v[a.layer], a.rowInfo, a.blocks, ml, acc, params]), s.splits, c.kvHeads * s.chunks, a.rows);
  return { ml, acc, splits: s.splits, shape: s };
}

/**
 * Records split-K attention for `a` (decode rows: see decodeRows): the split kernel, then the combine
 * kernel writing a.out and a.lse; the keys kernel with one split writes them itself (no combine).
 * `opts` overrides the shape chosen from the lists' capacities (a number: the split count).
 */
export function recordDecodeAttention(prog: Program, model: Model, pool: KvPool, a: AttentionCall, opts?: DecodeOptions | number): DecodeShape {
  const { config: c, kernels: k } = model;
  if (!decodeRows(a)) throw new Error(`decode attention: ${a.rows} rows in groups of several (at most ${DECODE_MAX_ROWS})`);
  const s = decodeShape(model, a.rows, listKeys(a), opts);
  if (s.kernel === "keys" && s.splits === 1) {
    const pipe = decodePipeline(model, pool, s, true);
    const params = decodeParams(prog, model, a, s);
    prog.dispatch(pipe, k.bind(pipe, [a.q, pool.k[a.layer], pool.v[a.layer], a.rowInfo, a.blocks, a.lse, a.out, params]), 1, c.kvHeads * s.chunks, a.rows);
    return s;
  }
  const { ml, acc } = recordDecodeSplits(prog, model, pool, a, 0, opts); // the same shape (decodeShape is a function of its inputs)
  const combine = k.pipeline("attention_combine");
  const cp = prog.uniform(new Params().u(a.rows, c.heads, c.headDim, s.splits).bytes());
  prog.dispatch(combine, k.bind(combine, [ml, acc, a.out, a.lse, cp]), c.heads, a.rows);
  return s;
}

/** The split kernel's pipeline for a shape; `direct`: the keys kernel writing out and lse itself (one split). */
function decodePipeline(model: Model, pool: KvPool, s: DecodeShape, direct: boolean): GPUComputePipeline {
  const { config: c, kernels: k } = model;
  const f16 = pool.dtype === "f16";
  return s.kernel === "keys"
    ? k.pipeline(f16 ? "attention_decode_keys_f16kv" : "attention_decode_keys", {
      HD: c.headDim, NH: s.headsPerGroup, WG: s.threads, KPT: s.keysPerThread, VU: s.vUnroll, DIRECT: direct ? 1 : 0,
    })
    : k.pipeline(f16 ? "attention_decode_f16kv" : "attention_decode", {
      HD: c.headDim, NH: s.headsPerGroup, KT: s.keysPerStep, WG: s.threads, PREFETCH: s.prefetch ? 1 : 0,
    });
}

/** The kernels' uniforms; `second`: the lanes kernel's second part in the same dispatch (APE's plain part). */
function decodeParams(prog: Program, model: Model, a: AttentionCall, s: DecodeShape, rowOff = 0, second?: { a: AttentionCall; splits: number; rowOff: number }): GPUBufferBinding {
  const c = model.config;
  const qkvDim = (c.heads + 2 * c.kvHeads) * c.headDim;
  const scale = (t: number) => 1 / (Math.sqrt(c.headDim) * t);
  return prog.uniform(
    new Params().u(a.rows, c.heads, c.kvHeads, qkvDim).f(scale(a.temperature)).u(c.slidingWindow, s.splits, s.chunks, rowOff)
      .f(second ? scale(second.a.temperature) : 1).u(second?.splits ?? 0, second?.rowOff ?? 0).bytes(),
  );
}

/** A call's rowInfo as (buffer, first row): a binding's offset in 16-byte rows. */
function rowsOf(a: AttentionCall): { buffer: GPUBuffer; row: number } {
  const b = a.rowInfo;
  return "buffer" in b ? { buffer: b.buffer, row: (b.offset ?? 0) / 16 } : { buffer: b, row: 0 };
}

/**
 * APE's two parts (context `ctx`, plain `plain`: the same rows and q) split-K in ONE dispatch of the lanes
 * kernel, when their rowInfo rows sit in one buffer and their lists index one blocks buffer (Forward's
 * layout): the context part's splits first, the plain part's after them in the same partials (entry offO on).
 * Undefined where that does not hold (another kernel, separate buffers): the caller records the parts apart.
 */
export function recordApeDecodeSplits(prog: Program, model: Model, pool: KvPool, ctx: AttentionCall, plain: AttentionCall): { ml: GPUBuffer; acc: GPUBuffer; splitsC: number; splitsO: number; offO: number } | undefined {
  const { config: c, kernels: k } = model;
  const rc = rowsOf(ctx), ro = rowsOf(plain);
  if (rc.buffer !== ro.buffer || ctx.blocks !== plain.blocks || ctx.q !== plain.q || ctx.rows !== plain.rows || !decodeRows(ctx) || !decodeRows(plain)) return undefined;
  const C = decodeShape(model, ctx.rows, listKeys(ctx)), O = decodeShape(model, plain.rows, listKeys(plain));
  if (C.kernel !== "lanes" || O.kernel !== "lanes" || C.threads !== O.threads || C.keysPerStep !== O.keysPerStep || C.chunks !== O.chunks) return undefined;
  const splits = C.splits + O.splits;
  if (splits > DECODE_ROW_LIMIT) return undefined;
  const n = splits * ctx.rows * c.heads;
  const { ml, acc } = partialBuffers(prog, 0, n * 8, n * c.headDim * 4);
  const params = decodeParams(prog, model, ctx, C, rc.row, { a: plain, splits: O.splits, rowOff: ro.row });
  const pipe = decodePipeline(model, pool, C, false);
  prog.dispatch(pipe, k.bind(pipe, [ctx.q, pool.k[ctx.layer], pool.v[ctx.layer], { buffer: rc.buffer }, ctx.blocks, ml, acc, params]), splits, c.kvHeads * C.chunks, ctx.rows);
  return { ml, acc, splitsC: C.splits, splitsO: O.splits, offO: C.splits * ctx.rows * c.heads };
}
