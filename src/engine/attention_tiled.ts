/**
 * Tiled (FlashAttention-2 style) attention for batches of many query rows: prefill, batched context
 * encoding, APE queries (shaders/attention_tiled*.wgsl). A workgroup owns a tile of query vectors (row,
 * query head) of ONE row group and ONE kv head, i.e. all the query heads sharing that kv head, so each
 * K/V tile streamed through workgroup memory serves up to 64 query vectors. The tile table is built here
 * at record time from the batch's row groups (tiles never cross groups: a group's rows share one block
 * list). When the tiles alone cannot fill the device (a few hundred query rows over a long list of
 * blocks), a third grid dimension splits the key tiles and attention_combine.wgsl merges the partials.
 * Two kernels: `rows` (attention_tiled_rows*.wgsl, head_dim <= 64: one query vector per invocation, its
 * query, output and softmax state in registers, K/V tiles read as broadcasts) and `blocks`
 * (attention_tiled*.wgsl, any head_dim the workgroup memory allows: 4x4 register blocks of scores).
 * Tile sizes come from the device's workgroup memory (override constants NT, BC; TQ, TK).
 *
 * @example
 * ```ts
 * import { loadEngineModel } from "../model/load.ts";
 * import { Engine } from "./engine.ts";
 * import { TILED_MIN_ROWS, tiledKernel, tiledPipelineName } from "./attention_tiled.ts";
 * const { model } = await loadEngineModel("fixtures/models/qwen2");
 * const engine = new Engine(model, { kvBudgetBytes: 4 << 20 });
 * const ids = Uint32Array.from({ length: TILED_MIN_ROWS }, (_, i) => i + 1); // enough rows for the tiled kernel
 * const block = engine.pool.allocate(ids.length, 0);
 * await engine.run(ids, { groups: [{ rows: ids.length, write: block, writeAt: 0, plain: [block] }], logits: { from: 0, count: 0 } });
 * const name = tiledPipelineName(tiledKernel(model.gpu, model.config.headDim)!, engine.pool.dtype); // "attention_tiled" on CPU adapters, "attention_tiled_rows" on GPUs
 * console.log(name, model.kernels.has(name)); // ... true
 * engine.destroy();
 * model.destroy();
 * ```
 */
import type { Model } from "../model/model.ts";
import type { Gpu } from "../gpu/device.ts";
import type { KvPool } from "./kv_pool.ts";
import { Params, type Program } from "./program.ts";
import type { AttentionCall } from "./attention.ts";

/** Batches of at least this many rows use the tiled kernel (fewer: the per-row / decode kernels). */
export const TILED_MIN_ROWS = 8;

/** Thread grid of a tile: TQ x TK threads, 4 * TQ query vectors, key tiles of 4 * TK keys. */
export interface TileShape {
  tq: number;
  tk: number;
}

// Preferred first: 64 query vectors x 32 keys with 128 threads (36 KiB at head_dim 64: fits the H200's
// 48 KiB, leaving room for several workgroups per SM), then smaller tiles for small workgroup memory
// (lavapipe: 32 KiB) or large head dims.
const SHAPES: TileShape[] = [
  { tq: 16, tk: 8 }, { tq: 16, tk: 4 }, { tq: 8, tk: 8 }, { tq: 8, tk: 4 }, { tq: 4, tk: 8 }, { tq: 4, tk: 4 },
  { tq: 4, tk: 2 }, { tq: 2, tk: 2 }, { tq: 1, tk: 1 },
];

/** Workgroup memory of the kernel for a shape (see the kernel's header). */
export function tiledWorkgroupBytes(headDim: number, s: TileShape): number {
  const hq = headDim / 4;
  return 16 * (4 * s.tq * (hq + 1) + 4 * s.tk * hq + 4 * s.tk * s.tq + s.tq * s.tk) + 48;
}

/**
 * The first preferred shape that fits the device and head_dim (undefined: none does). A thread holds
 * 4 x ceil(headDim / (4 * tk)) output quads: shapes keeping that at most 16 (64 registers) come first,
 * the kernel's limit is 32.
 */
export function tiledShape(gpu: Gpu, headDim: number): TileShape | undefined {
  const { maxComputeWorkgroupStorageSize: mem, maxComputeInvocationsPerWorkgroup: threads } = gpu.limits;
  const fits = (s: TileShape, quadsPerRow: number) =>
    headDim <= 4 * quadsPerRow * s.tk && s.tq * s.tk <= threads && tiledWorkgroupBytes(headDim, s) <= mem;
  return SHAPES.find((s) => fits(s, 4)) ?? SHAPES.find((s) => fits(s, 8));
}

/** Shape of the `rows` kernel: NT invocations (= query vectors) per tile, key tiles of BC keys. */
export interface RowsShape {
  nt: number;
  bc: number;
}

/** Workgroup memory of the `rows` kernel (K and V tiles as f32, see its header). */
export function rowsWorkgroupBytes(headDim: number, s: RowsShape): number {
  return 8 * s.bc * headDim + 24;
}

/** The `rows` kernel's shape for the device and head_dim (undefined: head_dim past 64 or not a multiple of 4). */
export function rowsShape(gpu: Gpu, headDim: number): RowsShape | undefined {
  if (headDim > 64 || headDim % 4 !== 0) return undefined;
  const nt = Math.min(128, gpu.limits.maxComputeInvocationsPerWorkgroup);
  // 16-key tiles first: measured on the H200 (`ape bench attention`, 1B shape, f16 KV, 2026-12-01) 128x16 ran
  // 68 ms per layer-call over 128K keys, 128x32 71 ms, 128x64 122 ms (bench/results-h200-long.txt)
  const bc = [16, 32, 64].find((bc) => rowsWorkgroupBytes(headDim, { nt, bc }) <= gpu.limits.maxComputeWorkgroupStorageSize);
  return bc === undefined ? undefined : { nt, bc };
}

export type TiledKernel = "rows" | "blocks";

/** Forced choices (tests, `ape bench attention`); anything left out is chosen for the device. */
export interface TiledOptions {
  splits?: number;
  kernel?: TiledKernel;
  /** `rows` kernel shape. */
  rows?: Partial<RowsShape>;
  /** `blocks` kernel shape. */
  blocks?: TileShape;
  /** Workgroups the split-K choice aims for on a GPU (default 2048). */
  splitTarget?: number;
}

/**
 * The kernel the engine takes: on GPUs `rows` where it applies (its broadcast K/V reads suit SIMT
 * hardware), else `blocks`; CPU adapters (lavapipe) take `blocks` first (its 4x4 register blocks reuse
 * each load 4 times per lane: 2-3x faster there).
 */
export function tiledKernel(gpu: Gpu, headDim: number): TiledKernel | undefined {
  const rows = rowsShape(gpu, headDim) !== undefined, blocks = tiledShape(gpu, headDim) !== undefined;
  if (gpu.isCpu && blocks) return "blocks";
  return rows ? "rows" : blocks ? "blocks" : undefined;
}

/** The pipeline name of a tiled kernel for a KV dtype. */
export function tiledPipelineName(kernel: TiledKernel, dtype: "f32" | "f16"): string {
  return `attention_tiled${kernel === "rows" ? "_rows" : ""}${dtype === "f16" ? "_f16kv" : ""}`;
}

export function usesTiledAttention(model: Model, a: AttentionCall): boolean {
  return a.rows >= TILED_MIN_ROWS && tiledKernel(model.gpu, model.config.headDim) !== undefined;
}

/**
 * The tile table: (first query vector, count) per tile, vector v = row * group + g over the rows of
 * one kv head; each group's vectors are cut into runs of `perTile`. Listed last tile first: in a causal
 * group the later rows see the most keys, and workgroups start roughly in dispatch order, so the
 * longest ones start first (less of a tail).
 */
export function tileTable(lists: AttentionCall["lists"], group: number, perTile: number): Uint32Array {
  const out: number[] = [];
  let row = 0;
  for (const g of lists) {
    const first = row * group, count = g.rows * group;
    for (let v = 0; v < count; v += perTile) out.push(first + v, Math.min(perTile, count - v));
    row += g.rows;
  }
  const table = new Uint32Array(out.length);
  for (let i = 0; i < out.length; i += 2) table.set([out[out.length - 2 - i], out[out.length - 1 - i]], i);
  return table;
}

/**
 * The split target (workgroups) for unrolled kernels (GPUs: Kernels.unroll). From `bench attention --variant
 * rows:128x16@128,rows:128x16@512` on the H200 under Deno (bench/results-h200-engine.txt run 17), ms per layer-call
 * against the default 2048: ape128k 11.11 vs 11.44, ape32k 2.81 vs 2.92, prefill2k 0.685 (unsplit) vs 1.01 (4 splits
 * and their combine); 128 is slower for the APE queries (19.4, 4.9). Bun + Dawn, auto as written vs unrolled with
 * this target: ape128k 11.71 -> 11.04, prefill8k 11.37 -> 10.58, prefill2k 1.031 -> 0.682.
 */
export const UNROLLED_SPLIT_TARGET = 512;

/** Key-range splits: enough workgroups to fill the device, each split keeping a few key tiles. */
export function chooseSplits(opts: { workgroups: number; keyTiles: number; isCpu: boolean; maxSplitsByMemory: number; target?: number }): number {
  // lavapipe: a few threads; H200: 132 SMs x ~5 resident workgroups, several rounds of them (a short tail)
  const target = opts.isCpu ? 8 : opts.target ?? 2048;
  const minTilesPerSplit = opts.isCpu ? 2 : 4;
  if (opts.workgroups >= target) return 1;
  const want = Math.ceil(target / opts.workgroups);
  return Math.max(1, Math.min(want, Math.floor(opts.keyTiles / minTilesPerSplit), opts.maxSplitsByMemory, 256));
}

// Per program: the tile table of each list set (the same for every layer) and the split-K partials
// (reused by every attention of the program: its dispatches run in order).
const tileTables = new WeakMap<Program, Map<object, Map<number, { buffer: GPUBuffer; count: number }>>>();
const partials = new WeakMap<Program, { ml: GPUBuffer; acc: GPUBuffer; mlBytes: number; accBytes: number }>();

/** The program's tile table for a list set and tile size (built once, the same for every layer). */
export function tileBuffer(prog: Program, a: AttentionCall, group: number, perTile: number) {
  let byList = tileTables.get(prog);
  if (!byList) tileTables.set(prog, (byList = new Map()));
  let byTile = byList.get(a.lists);
  if (!byTile) byList.set(a.lists, (byTile = new Map()));
  let t = byTile.get(perTile);
  if (!t) {
    const table = tileTable(a.lists, group, perTile);
    const buffer = prog.scratch(table.byteLength, "attention.tiles");
    prog.device.queue.writeBuffer(buffer, 0, table);
    byTile.set(perTile, (t = { buffer, count: table.length / 2 }));
  }
  return t;
}

function partialBuffers(prog: Program, mlBytes: number, accBytes: number) {
  let p = partials.get(prog);
  if (!p || p.mlBytes < mlBytes || p.accBytes < accBytes) {
    mlBytes = Math.max(mlBytes, p?.mlBytes ?? 0);
    accBytes = Math.max(accBytes, p?.accBytes ?? 0);
    p = { ml: prog.scratch(mlBytes, "attention.pML"), acc: prog.scratch(accBytes, "attention.pAcc"), mlBytes, accBytes };
    partials.set(prog, p);
  }
  return p;
}

/**
 * Records the tiled kernel (and the combine when split). `opts` forces choices (a number: the split
 * count). Returns the splits.
 */
export function recordTiledAttention(prog: Program, model: Model, pool: KvPool, a: AttentionCall, opts: TiledOptions | number = {}): number {
  if (typeof opts === "number") opts = { splits: opts };
  const { config: c, kernels: k, gpu } = model;
  const kernel = opts.kernel ?? tiledKernel(gpu, c.headDim);
  if (!kernel) throw new Error(`tiled attention: no kernel for head_dim ${c.headDim} (usesTiledAttention is false)`);
  const group = c.heads / c.kvHeads;
  let perTile: number, keysPerTile: number, constants: Record<string, number>;
  if (kernel === "rows") {
    const auto = rowsShape(gpu, c.headDim);
    if (!auto) throw new Error(`tiled attention: the rows kernel takes head_dim <= 64 (a multiple of 4), not ${c.headDim}`);
    const s = { ...auto, ...opts.rows };
    if (rowsWorkgroupBytes(c.headDim, s) > gpu.limits.maxComputeWorkgroupStorageSize || s.bc % 16 !== 0) {
      throw new Error(`tiled attention: rows shape ${s.nt}x${s.bc} does not fit head_dim ${c.headDim} in ${gpu.limits.maxComputeWorkgroupStorageSize} bytes (or BC not a multiple of 16)`);
    }
    perTile = s.nt;
    keysPerTile = s.bc;
    constants = { HD: c.headDim, NT: s.nt, BC: s.bc };
  } else {
    const shape = opts.blocks ?? tiledShape(gpu, c.headDim);
    if (!shape) throw new Error(`tiled attention: no tile shape fits head_dim ${c.headDim} in ${gpu.limits.maxComputeWorkgroupStorageSize} bytes`);
    perTile = 4 * shape.tq;
    keysPerTile = 4 * shape.tk;
    constants = { HD: c.headDim, TQ: shape.tq, TK: shape.tk };
  }
  const tiles = tileBuffer(prog, a, group, perTile);
  const keyTiles = Math.max(0, ...a.lists.map((g) => g.blocks.reduce((n, b) => n + Math.ceil(b.tokens / keysPerTile), 0)));
  const perSplit = a.rows * c.heads * c.headDim * 4;
  const splits = opts.splits ?? chooseSplits({
    workgroups: tiles.count * c.kvHeads, keyTiles, isCpu: gpu.isCpu, target: opts.splitTarget ?? (k.unroll ? UNROLLED_SPLIT_TARGET : undefined),
    maxSplitsByMemory: Math.floor(gpu.limits.maxStorageBufferBindingSize / perSplit),
  });

  const pipe = k.pipeline(tiledPipelineName(kernel, pool.dtype), constants);
  const qkvDim = (c.heads + 2 * c.kvHeads) * c.headDim;
  const scale = 1 / (Math.sqrt(c.headDim) * a.temperature);
  const params = prog.uniform(new Params().u(a.rows, c.heads, c.kvHeads, group, qkvDim).f(scale).u(c.slidingWindow, splits).bytes());
  const { out, stats, combine } = splitTargets(prog, model, a, splits);
  const bind = k.bind(pipe, [a.q, pool.k[a.layer], pool.v[a.layer], a.rowInfo, a.blocks, tiles.buffer, out, stats, params]);
  // x = kv head: consecutive workgroups are the kv heads of one tile (heaviest tiles first over all heads)
  if (tiles.count > 65535) throw new Error(`tiled attention: ${tiles.count} tiles exceed a grid dimension (65535); split the batch`);
  prog.dispatch(pipe, bind, c.kvHeads, tiles.count, splits);
  combine();
  return splits;
}

/**
 * Where a tiled kernel with `splits` key splits writes: the call's out and lse (one split), or the program's split-K
 * partials; `combine` records attention_combine into the call's out and lse after the kernel (nothing for one split).
 */
export function splitTargets(prog: Program, model: Model, a: AttentionCall, splits: number): { out: GPUBuffer; stats: GPUBuffer; combine: () => void } {
  const { config: c, kernels: k } = model;
  if (splits <= 1) return { out: a.out, stats: a.lse, combine: () => {} };
  const part = partialBuffers(prog, splits * a.rows * c.heads * 8, splits * a.rows * c.heads * c.headDim * 4);
  const combine = () => {
    const pipe = k.pipeline("attention_combine");
    const cp = prog.uniform(new Params().u(a.rows, c.heads, c.headDim, splits).bytes());
    prog.dispatch(pipe, k.bind(pipe, [part.ml, part.acc, a.out, a.lse, cp]), c.heads, a.rows);
  };
  return { out: part.acc, stats: part.ml, combine };
}
