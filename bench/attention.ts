/**
 * `ape bench attention [--shape llama-3.2-1b|tiny] [--cases ape128k,ape32k,prefill8k] [--kv f16,f32]
 *  [--variant auto,rows:128x64,...|sweep] [--reps N] [--trials 2] [--peak 67] [--check 4]`
 *
 * GPU time of the tiled attention kernel ALONE (src/engine/attention_tiled.ts: the kernel and, when split,
 * attention_combine), no model around it: a KvPool of one layer, the rowInfo / blocks buffers written
 * directly, random q, K and V. Cases (1B shape: 32 q heads, 8 kv heads, head_dim 64):
 *   ape128k   an APE query: 256 rows over 256 blocks of 512 keys (every key visible)
 *   ape32k    the same over 64 blocks
 *   prefill8k a causal sequential prefill of 8192 rows over their own block of 8192 keys (prefill2k: of 2048)
 * (`--shape tiny`: 4 q / 2 kv heads, head_dim 64, 32 rows over 16 blocks of 64 keys and a 512-row prefill,
 * for CPU adapters.) Each recorded call is encoded `reps` times in one pass (default: ~0.25 s of work at
 * 20 TFLOP/s on a GPU, 2 on a CPU adapter) minus a 1-call submit, best of --trials. Prints ms per
 * layer-call, TFLOP/s (2 FLOP per FMA, 2 * 2 * headDim FMAs... i.e. 4 * headDim FLOP per visible (query
 * vector, key) pair) and the fraction of --peak (the H200's fp32 rate, 67 TFLOP/s), and the largest error
 * of --check sampled (row, head) outputs against a float64 CPU reference (relative to their magnitude).
 *
 * Variants (`--variant`, comma-separated; `sweep` = all of the list below for the adapter):
 *   auto              the engine's own choice (kernel, tile shape, splits)
 *   rows[:NTxBC]      the rows kernel (one query vector per invocation) with NT invocations, BC keys per tile
 *   blocks[:TQxTK]    the blocks kernel (4x4 register blocks of scores)
 *   ...@S             a split target of S workgroups (default 2048), or ...=K: exactly K splits
 *   i8[w][:P[:M]][=K] compute "int8"'s kernel (src/engine/attention_i8.ts, f16 KV, adapters with int8 subgroup
 *                     matrices: the quantize pass and the kernel timed together), P = 1 or 2 int8 parts of P;
 *                     M: the kernel's ABLATE mask (phases left out, to time the rest; wrong results); w: the lanes
 *                     exchange through workgroup memory (XCHG 0; default subgroupShuffleXor)
 */
import process from "node:process";
import { getGpu } from "../src/gpu/device.ts";
import { readBuffer, storageBuffer, uploadF32, uploadU32 } from "../src/gpu/buffers.ts";
import { Kernels, unrollsLoops } from "../src/gpu/shaders.ts";
import { Program } from "../src/engine/program.ts";
import { type KvBlock, type KvDtype, KvPool } from "../src/engine/kv_pool.ts";
import type { AttentionCall } from "../src/engine/attention.ts";
import { recordTiledAttention, type TiledOptions } from "../src/engine/attention_tiled.ts";
import { recordI8Attention } from "../src/engine/attention_i8.ts";
import type { Model } from "../src/model/model.ts";
import { f16ToF32, f32ToF16 } from "../src/model/quant.ts";
import { InvalidArgumentError } from "../src/errors.ts";
import { parseArgs } from "../sdk/commands/args.ts";
import { SHAPES, shapeConfig } from "./engine.ts";
import { randomWords } from "./random_weights.ts";
import { timeReplays } from "./kernel_timing.ts";

interface Case { name: string; rows: number; blocks: number; keysPerBlock: number; causal: boolean }

const CASES: Record<string, Case[]> = {
  "llama-3.2-1b": [
    { name: "ape128k", rows: 256, blocks: 256, keysPerBlock: 512, causal: false },
    { name: "ape32k", rows: 256, blocks: 64, keysPerBlock: 512, causal: false },
    { name: "prefill8k", rows: 8192, blocks: 1, keysPerBlock: 8192, causal: true },
    { name: "prefill2k", rows: 2048, blocks: 1, keysPerBlock: 2048, causal: true },
  ],
  tiny: [
    { name: "ape1k", rows: 32, blocks: 16, keysPerBlock: 64, causal: false },
    { name: "prefill512", rows: 512, blocks: 1, keysPerBlock: 512, causal: true },
  ],
};

const SWEEP: Record<string, string[]> = {
  gpu: [
    "auto", "blocks", "rows:128x64", "rows:128x32", "rows:64x64", "rows:256x64", "rows:128x16",
    "rows:128x64@1024", "rows:128x64@4096", "rows:128x64@8192",
  ],
  cpu: ["auto", "blocks", "rows:128x32", "rows:64x16"],
};

/** `--variant` item -> options for recordTiledAttention (or, `i8[w][:P[:M]][=K]`, for recordI8Attention). */
function parseVariant(v: string): TiledOptions & { i8?: { pSplit?: number; ablate?: number; xchg?: number } } {
  const i8 = /^i8(w)?(?::([12])(?::(\d+))?)?(?:=(\d+))?$/.exec(v);
  if (i8) return { i8: { xchg: i8[1] ? 0 : undefined, pSplit: i8[2] ? Number(i8[2]) : undefined, ablate: i8[3] ? Number(i8[3]) : undefined }, splits: i8[4] ? Number(i8[4]) : undefined };
  const m = /^(auto|rows|blocks)(?::(\d+)x(\d+))?(?:@(\d+)|=(\d+))?$/.exec(v);
  if (!m) throw new InvalidArgumentError(`--variant: auto, rows[:NTxBC], blocks[:TQxTK], each optionally @target or =splits; i8[w][:1|2[:mask]][=splits] (got '${v}')`);
  const o: TiledOptions = {};
  if (m[1] !== "auto") o.kernel = m[1] as "rows" | "blocks";
  if (m[2]) {
    if (m[1] === "rows") o.rows = { nt: Number(m[2]), bc: Number(m[3]) };
    else if (m[1] === "blocks") o.blocks = { tq: Number(m[2]), tk: Number(m[3]) };
    else throw new InvalidArgumentError(`--variant: auto takes no shape (got '${v}')`);
  }
  if (m[4]) o.splitTarget = Number(m[4]);
  if (m[5]) o.splits = Number(m[5]);
  return o;
}

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, { string: ["shape", "cases", "kv", "variant", "reps", "trials", "peak", "check"] });
  const shapeName = a.string.shape ?? "llama-3.2-1b";
  const cases = CASES[shapeName];
  if (!cases) throw new InvalidArgumentError(`--shape: one of ${Object.keys(CASES).join(", ")} (got '${shapeName}')`);
  const gpu = await getGpu();
  const dev = gpu.device;
  const pick = a.string.cases?.split(",");
  const kvs = (a.string.kv ?? "f16,f32").split(",") as KvDtype[];
  for (const kv of kvs) if (kv !== "f16" && kv !== "f32") throw new InvalidArgumentError(`--kv: f16, f32 (got '${kv}')`);
  const variantArg = a.string.variant ?? "sweep";
  const variants = variantArg === "sweep" ? SWEEP[gpu.isCpu ? "cpu" : "gpu"] : variantArg.split(",");
  for (const v of variants) parseVariant(v);
  const reps = a.string.reps === undefined ? undefined : Number(a.string.reps);
  const trials = Number(a.string.trials ?? 2);
  const peak = Number(a.string.peak ?? 67);
  const checks = Number(a.string.check ?? 4);
  const cfg = shapeConfig({ ...SHAPES["llama-3.2-1b"], ...(shapeName === "tiny" ? { heads: 4, kvHeads: 2 } : {}), layers: 1 });
  const { heads, kvHeads, headDim: hd } = cfg;
  const group = heads / kvHeads, qkvDim = (heads + 2 * kvHeads) * hd;
  const model = { config: cfg, gpu, kernels: new Kernels(dev, gpu.hasF16, unrollsLoops(gpu)) } as unknown as Model;
  console.log(`adapter: ${gpu.description}; shape ${shapeName} (${heads} q heads, ${kvHeads} kv heads, head_dim ${hd}); peak ${peak} TFLOP/s`);
  console.log(`variants: ${variants.join(" ")}`);
  const bits = randomWords();
  const rand = (n: number) => Float32Array.from(bits(n), (u) => u / 2147483648 - 1);

  for (const cs of cases) {
    if (pick && !pick.includes(cs.name)) continue;
    const keys = cs.blocks * cs.keysPerBlock;
    const prefix = cs.causal ? 0 : 16; // APE: contexts at positions 16.., the query after the longest
    // visible (vector, key) pairs: causal rows see pos + 1 keys
    const pairs = cs.causal ? (cs.rows * (cs.rows + 1)) / 2 : cs.rows * keys;
    const flops = 4 * hd * heads * pairs;
    const q = rand(cs.rows * qkvDim);
    const rowInfo = new Uint32Array(cs.rows * 4);
    for (let r = 0; r < cs.rows; r++) rowInfo.set([cs.causal ? r : prefix + cs.keysPerBlock + r, 0, cs.blocks, 0], 4 * r);
    // one random block's worth of K and V (repeated over the blocks: the kernel cannot tell)
    const blockElems = kvHeads * cs.keysPerBlock * hd;
    const kh = rand(blockElems), vh = rand(blockElems);
    for (const kv of kvs) {
      const pool = new KvPool(gpu, cfg, 2 * keys * kvHeads * hd * (kv === "f16" ? 2 : 4), kv);
      const blocks: KvBlock[] = [];
      const kBytes = kv === "f16" ? Uint16Array.from(kh, (x) => f32ToF16(x)) : kh;
      const vBytes = kv === "f16" ? Uint16Array.from(vh, (x) => f32ToF16(x)) : vh;
      const kf = kv === "f16" ? Float32Array.from(kBytes as Uint16Array, f16ToF32) : kh;
      const vf = kv === "f16" ? Float32Array.from(vBytes as Uint16Array, f16ToF32) : vh;
      for (let i = 0; i < cs.blocks; i++) {
        const b = pool.allocate(cs.keysPerBlock, cs.causal ? 0 : prefix);
        b.tokens = cs.keysPerBlock;
        blocks.push(b);
        const { offset } = pool.blockBytes(b);
        dev.queue.writeBuffer(pool.k[0], offset, kBytes);
        dev.queue.writeBuffer(pool.v[0], offset, vBytes);
      }
      const desc = new Uint32Array(blocks.flatMap((b) => [b.base, b.tokens, b.capacity, b.firstPos]));
      const qBuf = uploadF32(dev, q), infoBuf = uploadU32(dev, rowInfo), blockBuf = uploadU32(dev, desc);
      const out = storageBuffer(dev, cs.rows * heads * hd * 4), lse = storageBuffer(dev, cs.rows * heads * 4);
      const call: AttentionCall = { layer: 0, q: qBuf, rowInfo: infoBuf, blocks: blockBuf, out, lse, temperature: 1, rows: cs.rows, lists: [{ rows: cs.rows, blocks }] };
      const n = reps ?? (gpu.isCpu ? 2 : Math.min(400, Math.max(3, Math.ceil(5e12 / flops))));
      for (const variant of variants) {
        const label = `${cs.name.padEnd(10)} ${kv}  ${variant.padEnd(18)}`;
        const prog = new Program(dev);
        try {
          const o = parseVariant(variant);
          if (o.i8 && (kv !== "f16" || !gpu.hasInt8Matrix)) {
            console.log(`${label} skipped (int8 attention: f16 KV on an adapter with int8 subgroup matrices)`);
            continue;
          }
          const splits = o.i8 ? recordI8Attention(prog, model, pool, call, { splits: o.splits, ...o.i8 }) : recordTiledAttention(prog, model, pool, call, o);
          const { ms } = await timeReplays(dev, prog, lse, { trials, reps: n });
          const got = new Float32Array(await readBuffer(dev, out, out.size));
          const err = checkSamples(got, checks, { cs, q, kf, vf, rowInfo, heads, kvHeads, hd, qkvDim, group });
          const tflops = flops / ms / 1e9;
          const speed = tflops >= 0.1 ? `${tflops.toFixed(2).padStart(6)} TFLOP/s` : `${(tflops * 1000).toFixed(2).padStart(6)} GFLOP/s`;
          console.log(`${label} splits ${String(splits).padStart(3)}  ${ms.toFixed(3).padStart(9)} ms/call x${n}  ${speed} ${((100 * tflops) / peak).toFixed(1).padStart(5)}% of peak  max err ${err.toExponential(1)}`);
        } catch (e) {
          console.log(`${label} failed: ${(e as Error).message.split("\n")[0]}`);
        } finally {
          prog.destroy();
        }
      }
      for (const b of [qBuf, infoBuf, blockBuf, out, lse]) b.destroy();
      pool.destroy();
    }
  }
  process.exitCode = 0;
  return 0;
}

/** Largest error of `count` sampled (row, head) outputs vs float64, relative to the largest magnitude. */
function checkSamples(got: Float32Array, count: number, c: {
  cs: Case; q: Float32Array; kf: Float32Array; vf: Float32Array; rowInfo: Uint32Array;
  heads: number; kvHeads: number; hd: number; qkvDim: number; group: number;
}): number {
  const { cs, hd } = c;
  let err = 0, mag = 0;
  for (let i = 0; i < count; i++) {
    const r = (i * 7919 + cs.rows - 1) % cs.rows, h = (i * 5) % c.heads, kvh = Math.floor(h / c.group);
    const pos = c.rowInfo[4 * r], first = cs.causal ? 0 : 16;
    const s: number[] = [], idx: number[] = [];
    for (let b = 0; b < cs.blocks; b++) {
      for (let t = 0; t < cs.keysPerBlock; t++) {
        if (first + t + (cs.causal ? b * cs.keysPerBlock : 0) > pos) continue;
        const o = (kvh * cs.keysPerBlock + t) * hd;
        let d = 0;
        for (let e = 0; e < hd; e++) d += c.q[r * c.qkvDim + h * hd + e] * c.kf[o + e];
        s.push(d / Math.sqrt(hd));
        idx.push(o);
      }
    }
    let m = -Infinity;
    for (const x of s) m = Math.max(m, x);
    let z = 0;
    const p = s.map((x) => { const e = Math.exp(x - m); z += e; return e; });
    for (let e = 0; e < hd; e++) {
      let y = 0;
      for (let j = 0; j < p.length; j++) y += p[j] * c.vf[idx[j] + e];
      y /= z;
      err = Math.max(err, Math.abs(got[(r * c.heads + h) * hd + e] - y));
      mag = Math.max(mag, Math.abs(y));
    }
  }
  return err / Math.max(mag, 1e-30);
}
