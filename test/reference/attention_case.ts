/**
 * The attention kernels' test case (test/attention_decode.test.ts, test/attention_tiled.test.ts): blocks
 * of a KvPool filled with random keys/values exactly representable in f16 (so f32 and f16 pools hold the
 * same numbers), query rows in groups that each attend a list of those blocks, the rowInfo / blocks
 * buffers the kernels read, and the float64 attention of every (row, head) under the engine's visibility
 * rule: key position kp is visible to query position qp iff kp <= qp and, with a sliding window w > 0,
 * qp - kp < w. Each test file subclasses KvCase with its own kernel recording and assertions.
 */
import { expect } from "vitest";
import { getGpu } from "../../src/gpu/device.ts";
import { buildModel, type Model } from "../../src/model/model.ts";
import type { ModelConfig } from "../../src/model/config.ts";
import { f32ToF16 } from "../../src/model/quant.ts";
import { readBuffer, storageBuffer, uploadF32, uploadU32 } from "../../src/gpu/buffers.ts";
import { type KvBlock, type KvDtype, KvPool } from "../../src/engine/kv_pool.ts";
import type { Program } from "../../src/engine/program.ts";
import { randomModel, rng, tinyConfig } from "./random_model.ts";

/** The lse the reference gives a row that sees no key (the kernels write <= -1e29). */
export const NEG = -1e30;

/** A block to build: its capacity, filled tokens and first position. */
export interface BlockSpec { capacity: number; tokens: number; firstPos: number }
/** A row group: its rows' positions and the blocks (indices into the case's blocks) they all attend. */
export interface GroupSpec { pos: number[]; list: number[] }

/** A case's GPU buffers: the kernels' inputs and outputs. */
export interface CaseBuffers { q: GPUBuffer; rowInfo: GPUBuffer; blocks: GPUBuffer; out: GPUBuffer; lse: GPUBuffer }

/** A tiny model of the attention shape (the kernels only read its config). */
export async function attentionModel(over: Partial<ModelConfig>, fingerprintSeed: string): Promise<Model> {
  const cfg = tinyConfig({ hidden: 16, intermediate: 16, layers: 1, vocabSize: 8, ...over });
  const { tensors } = randomModel(cfg, 1);
  return buildModel(await getGpu(), cfg, { get: (n) => tensors.get(n) }, { source: "random", fingerprintSeed });
}

/** n values k/256 (|k| <= 256): exact in f16, so f32 and f16 pools hold the same numbers. */
export function exactValues(rand: () => number, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => Math.round((rand() * 2 - 1) * 256) / 256);
}

/** Blocks with random keys/values in a pool, `rowCount` random query rows, and their float64 attention. */
export abstract class KvCase {
  readonly pool: KvPool;
  readonly blocks: KvBlock[];
  /** Host copy of every block's keys / values: [kvHeads, capacity, headDim]. */
  readonly k: Float32Array[] = [];
  readonly v: Float32Array[] = [];
  /** The query rows' fused qkv vectors (only the q part is read): [rowCount, qkvDim]. */
  readonly q: Float32Array;
  readonly qkvDim: number;

  /** Draws, from rng(seed), every block's keys then values (block by block), then the queries. */
  constructor(readonly model: Model, dtype: KvDtype, specs: BlockSpec[], readonly rowCount: number, seed: number) {
    const c = model.config;
    const rand = rng(seed);
    const slots = specs.reduce((n, s) => n + s.capacity, 0);
    this.pool = new KvPool(model.gpu, c, Math.max(1, slots) * c.kvHeads * c.headDim * 2 * (dtype === "f16" ? 2 : 4), dtype);
    this.blocks = specs.map((s) => {
      const b = this.pool.allocate(s.capacity, s.firstPos);
      b.tokens = s.tokens;
      return b;
    });
    for (const b of this.blocks) {
      const n = c.kvHeads * b.capacity * c.headDim;
      this.k.push(exactValues(rand, n));
      this.v.push(exactValues(rand, n));
      this.upload(b);
    }
    this.qkvDim = (c.heads + 2 * c.kvHeads) * c.headDim;
    this.q = Float32Array.from({ length: rowCount * this.qkvDim }, () => rand() * 2 - 1);
  }

  /** The row groups in row order, read at every call (a test may move rows or grow blocks between runs). */
  abstract rowGroups(): GroupSpec[];

  /** Writes block b's host keys/values into the pool (f32 or packed halves). */
  upload(b: KvBlock): void {
    const i = this.blocks.indexOf(b);
    const { offset } = this.pool.blockBytes(b);
    const dev = this.model.gpu.device;
    for (const [buf, data] of [[this.pool.k[0], this.k[i]], [this.pool.v[0], this.v[i]]] as const) {
      if (this.pool.dtype === "f32") dev.queue.writeBuffer(buf, offset, data);
      else dev.queue.writeBuffer(buf, offset, Uint16Array.from(data, (x) => f32ToF16(x)));
    }
  }

  /** The rowInfo and blocks buffers the kernels read, from the blocks' current token counts. */
  state(): { rowInfo: Uint32Array; blocks: Uint32Array } {
    const rowInfo = new Uint32Array(this.rowCount * 4), desc: number[] = [];
    let r = 0;
    for (const g of this.rowGroups()) {
      const start = desc.length / 4;
      for (const j of g.list) { const b = this.blocks[j]; desc.push(b.base, b.tokens, b.capacity, b.firstPos); }
      for (const pos of g.pos) rowInfo.set([pos, start, g.list.length, 0], 4 * r++);
    }
    return { rowInfo, blocks: new Uint32Array(desc.length ? desc : [0, 0, 0, 0]) };
  }

  /** The AttentionCall's lists: each group's row count and blocks. */
  lists(): { rows: number; blocks: KvBlock[] }[] {
    return this.rowGroups().map((g) => ({ rows: g.pos.length, blocks: g.list.map((j) => this.blocks[j]) }));
  }

  /** The kernels' inputs (q; rowInfo and blocks from the current state) and outputs (out, lse), on the GPU. */
  buffers(): CaseBuffers {
    const dev = this.model.gpu.device, c = this.model.config;
    const s = this.state();
    return {
      q: uploadF32(dev, this.q), rowInfo: uploadU32(dev, s.rowInfo), blocks: uploadU32(dev, s.blocks),
      out: storageBuffer(dev, this.rowCount * c.heads * c.headDim * 4), lse: storageBuffer(dev, this.rowCount * c.heads * 4),
    };
  }

  /** Submits prog (no validation error allowed) and reads out [rows, heads*headDim] and lse [rows, heads] back. */
  async submit(prog: Program, b: CaseBuffers): Promise<{ out: Float32Array; lse: Float32Array }> {
    const dev = this.model.gpu.device, c = this.model.config;
    dev.pushErrorScope("validation");
    prog.submit();
    expect(await dev.popErrorScope()).toBeNull();
    return {
      out: new Float32Array(await readBuffer(dev, b.out, b.out.size)).subarray(0, this.rowCount * c.heads * c.headDim),
      lse: new Float32Array(await readBuffer(dev, b.lse, b.lse.size)).subarray(0, this.rowCount * c.heads),
    };
  }

  /** float64 attention of every (row, head): out [rows, heads*headDim] and lse [rows, heads] (NEG: nothing visible). */
  reference(temperature: number): { out: Float64Array; lse: Float64Array } {
    const { heads, kvHeads, headDim: hd, slidingWindow: win } = this.model.config;
    const group = heads / kvHeads, scale = 1 / (Math.sqrt(hd) * temperature);
    const out = new Float64Array(this.rowCount * heads * hd), lse = new Float64Array(this.rowCount * heads);
    let ri = 0;
    for (const g of this.rowGroups()) {
      for (const pos of g.pos) {
        for (let h = 0; h < heads; h++) {
          const kvh = Math.floor(h / group), q = this.q.subarray(ri * this.qkvDim + h * hd);
          const s: number[] = [], vals: Float32Array[] = [];
          for (const j of g.list) {
            const b = this.blocks[j];
            for (let t = 0; t < b.tokens; t++) {
              const kp = b.firstPos + t;
              if (kp > pos || (win > 0 && pos - kp >= win)) continue;
              const o = (kvh * b.capacity + t) * hd;
              let d = 0;
              for (let e = 0; e < hd; e++) d += q[e] * this.k[j][o + e];
              s.push(d * scale);
              vals.push(this.v[j].subarray(o, o + hd));
            }
          }
          if (s.length === 0) { lse[ri * heads + h] = NEG; continue; }
          let m = -Infinity;
          for (const x of s) m = Math.max(m, x);
          const p = s.map((x) => Math.exp(x - m)), z = p.reduce((a, b) => a + b, 0);
          for (let j = 0; j < s.length; j++) for (let e = 0; e < hd; e++) out[(ri * heads + h) * hd + e] += (p[j] / z) * vals[j][e];
          lse[ri * heads + h] = m + Math.log(z);
        }
        ri++;
      }
    }
    return { out, lse };
  }

  destroy(): void {
    this.pool.destroy();
  }
}

/** out within 2e-5 absolute and lse within 2e-5 relative (>= 1) of the reference; rows that see nothing get lse <= -1e29. */
export function expectClose(got: { out: Float32Array; lse: Float32Array }, want: { out: Float64Array; lse: Float64Array }): void {
  let worst = 0, at = 0;
  for (let i = 0; i < want.out.length && !Number.isNaN(worst); i++) { // a NaN sticks (and fails)
    const d = Math.abs(got.out[i] - want.out[i]);
    if (!(d <= worst)) (worst = d), (at = i);
  }
  expect(worst, `out (worst at ${at}: ${got.out[at]} vs ${want.out[at]})`).toBeLessThan(2e-5);
  for (let i = 0; i < want.lse.length; i++) {
    if (want.lse[i] <= NEG) expect(got.lse[i], `lse ${i} (nothing visible)`).toBeLessThanOrEqual(-1e29);
    else expect(Math.abs(got.lse[i] - want.lse[i]), `lse ${i}`).toBeLessThan(2e-5 * Math.max(1, Math.abs(want.lse[i])));
  }
}

/**
 * Models of attentionModel's shape with config overrides, built once per override set for a test file; `destroy`
 * frees them all (call it from afterAll).
 */
export function attentionModels(fingerprintSeed: string): { get(over: Partial<ModelConfig>): Promise<Model>; destroy(): void } {
  const models = new Map<string, Model>();
  return {
    async get(over) {
      const key = JSON.stringify(over);
      if (!models.has(key)) models.set(key, await attentionModel(over, fingerprintSeed));
      return models.get(key)!;
    },
    destroy() {
      for (const m of models.values()) m.destroy();
    },
  };
}
