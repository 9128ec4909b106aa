/**
 * `ape bench attention-decode [--shape llama-3.2-1b|tiny] [--dtypes f16,f32] [--keys 64,8192,32768,131072]
 *  [--variants row,lanes,keys,keys:t=256:k=8,...] [--trials 3] [--peak 2000]`
 *
 * GPU time of ONE decode attention call (one layer, one query row) alone, for each kernel variant: the
 * row kernel (attention.wgsl), the lanes split kernel (attention_decode*.wgsl) and the keys split kernel
 * (attention_decode_keys*.wgsl) with override shapes, each followed by its combine pass where it has one.
 * The row attends `keys` keys in blocks of 512 (APE contexts; one block below 512), all visible. The
 * recorded call is replayed `reps` times in one pass minus one replay (no host round trip counted; reps
 * chosen for ~0.15 s of GPU work), best of --trials. Prints us per call, GB/s (K+V bytes of the call /
 * time) and its fraction of --peak GB/s (2000: the H200's WebGPU copy rate), and the largest error of
 * the output and lse of 4 heads against a float64 reference (relative to the values' largest magnitude).
 * Variant syntax: `keys:t=THREADS:k=KEYS_PER_THREAD:v=V_UNROLL:s=SPLITS:m=MIN_KEYS_PER_SPLIT:w=TARGET_WGS`
 * (`lanes:` takes t, s, m, w too, and kt=KEYS_PER_STEP); anything left out is the engine's choice for the adapter.
 */
import { getGpu } from "../src/gpu/device.ts";
import { readBuffer, storageBuffer, uploadF32, uploadU32 } from "../src/gpu/buffers.ts";
import { Kernels, unrollsLoops } from "../src/gpu/shaders.ts";
import { Program } from "../src/engine/program.ts";
import { type KvDtype, KvPool } from "../src/engine/kv_pool.ts";
import { type AttentionCall, recordRowAttention } from "../src/engine/attention.ts";
import { type DecodeKernel, type DecodeOptions, recordDecodeAttention } from "../src/engine/attention_decode.ts";
import type { Model } from "../src/model/model.ts";
import type { ModelConfig } from "../src/model/config.ts";
import { f32ToF16 } from "../src/model/quant.ts";
import { InvalidArgumentError } from "../src/errors.ts";
import { parseArgs } from "../sdk/commands/args.ts";
import { timeReplays } from "./kernel_timing.ts";

const SHAPES: Record<string, { heads: number; kvHeads: number; headDim: number; keys: number[] }> = {
  "llama-3.2-1b": { heads: 32, kvHeads: 8, headDim: 64, keys: [64, 8192, 32768, 131072] },
  tiny: { heads: 8, kvHeads: 2, headDim: 64, keys: [64, 2048] },
};
const BLOCK = 512;
const PATTERN = 509; // keys of the host pattern (block b, key t holds pattern key (t + 37 b) % PATTERN)

function config(s: { heads: number; kvHeads: number; headDim: number }): ModelConfig {
  return {
    architecture: "llama", vocabSize: 8, hidden: s.heads * s.headDim, intermediate: 8, layers: 1, ...s,
    rmsEps: 1e-5, ropeTheta: 10000, ropeScaling: { type: "none" }, maxPositions: 1 << 20, tieEmbeddings: false,
    qkvBias: false, oBias: false, qkNorm: false, slidingWindow: 0, eosTokenIds: [],
  };
}

interface Variant { label: string; kernel: "row" | DecodeKernel; opts: DecodeOptions }

function parseVariant(v: string): Variant {
  const [kernel, ...kv] = v.split(":");
  if (!["row", "lanes", "keys"].includes(kernel)) throw new InvalidArgumentError(`--variants: row, lanes or keys[:t=..:k=..:v=..:s=..:m=..:w=..] (got '${v}')`);
  const opts: DecodeOptions = {};
  const names: Record<string, keyof DecodeOptions> = { t: "threads", k: "keysPerThread", v: "vUnroll", s: "splits", m: "minKeysPerSplit", w: "targetWorkgroups", kt: "keysPerStep" };
  for (const p of kv) {
    const [k, n] = p.split("=");
    if (!names[k] || !(Number(n) > 0)) throw new InvalidArgumentError(`--variants: bad setting '${p}' in '${v}'`);
    (opts as Record<string, number>)[names[k]] = Number(n);
  }
  return { label: v, kernel: kernel as Variant["kernel"], opts: kernel === "row" ? {} : { ...opts, kernel: kernel as DecodeKernel } };
}

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, { string: ["shape", "dtypes", "keys", "variants", "trials", "peak"] });
  const shapeName = a.string.shape ?? "llama-3.2-1b";
  const shape = SHAPES[shapeName];
  if (!shape) throw new InvalidArgumentError(`--shape: one of ${Object.keys(SHAPES).join(", ")} (got '${shapeName}')`);
  const keysList = a.string.keys ? a.string.keys.split(",").map(Number) : shape.keys;
  const dtypes = (a.string.dtypes ?? "f16,f32").split(",") as KvDtype[];
  const variants = (a.string.variants ?? "row,lanes,keys,keys:k=2,keys:k=8,keys:t=128,keys:t=512:k=2,keys:v=2,keys:v=8,keys:m=128,keys:m=512,keys:m=1024,keys:w=4096").split(",").map(parseVariant);
  const trials = Number(a.string.trials ?? 3), peak = Number(a.string.peak ?? 2000);
  const gpu = await getGpu();
  const dev = gpu.device;
  const c = config(shape);
  const model = { config: c, kernels: new Kernels(dev, gpu.hasF16, unrollsLoops(gpu)), gpu } as unknown as Model;
  const { heads, kvHeads, headDim: hd } = c;
  const qkvDim = (heads + 2 * kvHeads) * hd, group = heads / kvHeads;
  console.log(`adapter: ${gpu.description}; shape ${shapeName} (${heads} heads, ${kvHeads} kv heads, head_dim ${hd}); 1 row; peak ${peak} GB/s`);

  // host pattern [PATTERN keys][kvHeads][hd] of K and V, exact in f16; q of one row
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296);
  const pk = Float32Array.from({ length: PATTERN * kvHeads * hd }, () => Math.round((rand() * 2 - 1) * 256) / 256);
  const pv = Float32Array.from({ length: PATTERN * kvHeads * hd }, () => Math.round((rand() * 2 - 1) * 256) / 256);
  const qh = Float32Array.from({ length: qkvDim }, () => rand() * 2 - 1);
  const q = uploadF32(dev, qh);
  const out = storageBuffer(dev, heads * hd * 4), lse = storageBuffer(dev, heads * 4);

  for (const dtype of dtypes) {
    const el = dtype === "f16" ? 2 : 4;
    const slots = Math.max(...keysList.map((n) => n < BLOCK ? n : Math.ceil(n / BLOCK) * BLOCK));
    const pool = new KvPool(gpu, c, slots * kvHeads * hd * el * 2, dtype);
    for (const n of keysList) {
      const sizes = n < BLOCK ? [n] : Array.from({ length: Math.ceil(n / BLOCK) }, (_, i) => Math.min(BLOCK, n - i * BLOCK));
      const blocks = sizes.map((s) => { const b = pool.allocate(s, 0); b.tokens = s; return b; });
      // block b's [kvHeads, capacity, hd] from the pattern
      blocks.forEach((b, bi) => {
        for (const [buf, src] of [[pool.k[0], pk], [pool.v[0], pv]] as const) {
          const data = new Float32Array(kvHeads * b.capacity * hd);
          for (let h = 0; h < kvHeads; h++) {
            for (let t = 0; t < b.capacity; t++) {
              const pt = (t + 37 * bi) % PATTERN;
              data.set(src.subarray((pt * kvHeads + h) * hd, (pt * kvHeads + h + 1) * hd), (h * b.capacity + t) * hd);
            }
          }
          const { offset } = pool.blockBytes(b);
          if (dtype === "f32") dev.queue.writeBuffer(buf, offset, data);
          else dev.queue.writeBuffer(buf, offset, Uint16Array.from(data, (x) => f32ToF16(x)));
        }
      });
      const rowInfo = uploadU32(dev, new Uint32Array([BLOCK + n, 0, blocks.length, 0]));
      const desc = uploadU32(dev, Uint32Array.from(blocks.flatMap((b) => [b.base, b.tokens, b.capacity, b.firstPos])));
      // float64 reference of 4 heads
      const checkHeads = [0, Math.floor(heads / 3), Math.floor((2 * heads) / 3), heads - 1];
      const want = checkHeads.map((h) => {
        const kvh = Math.floor(h / group), scale = 1 / Math.sqrt(hd);
        const s: number[] = [], idx: number[] = [];
        blocks.forEach((b, bi) => {
          for (let t = 0; t < b.tokens; t++) {
            const o = (((t + 37 * bi) % PATTERN) * kvHeads + kvh) * hd;
            let d = 0;
            for (let e = 0; e < hd; e++) d += qh[h * hd + e] * pk[o + e];
            s.push(d * scale);
            idx.push(o);
          }
        });
        const m = s.reduce((x, y) => Math.max(x, y), -Infinity);
        let z = 0;
        const o = new Float64Array(hd);
        for (let j = 0; j < s.length; j++) {
          const p = Math.exp(s[j] - m);
          z += p;
          for (let e = 0; e < hd; e++) o[e] += p * pv[idx[j] + e];
        }
        return { out: o.map((x) => x / z), lse: m + Math.log(z) };
      });
      const bytes = 2 * n * kvHeads * hd * el;
      const call: AttentionCall = { layer: 0, q, rowInfo, blocks: desc, out, lse, temperature: 1, rows: 1, lists: [{ rows: 1, blocks }] };
      for (const v of variants) {
        if (v.kernel === "keys" && hd % 8 !== 0) continue;
        const prog = new Program(dev);
        let shapeText = "";
        if (v.kernel === "row") recordRowAttention(prog, model, pool, call);
        else {
          const s = recordDecodeAttention(prog, model, pool, call, v.opts);
          shapeText = `${s.kernel} ${s.splits}x${kvHeads * s.chunks} wg${s.threads}` + (s.kernel === "keys" ? ` k${s.keysPerThread} v${s.vUnroll}` : ` kt${s.keysPerStep}`);
        }
        const { ms, reps } = await timeReplays(dev, prog, lse, { trials, budgetMs: gpu.isCpu ? 100 : 150, maxReps: 2000, label: v.label });
        const us = ms * 1000;
        const o = new Float32Array(await readBuffer(dev, out, heads * hd * 4)), l = new Float32Array(await readBuffer(dev, lse, heads * 4));
        let e = 0, mag = 0;
        checkHeads.forEach((h, i) => {
          for (let d = 0; d < hd; d++) { e = Math.max(e, Math.abs(o[h * hd + d] - want[i].out[d])); mag = Math.max(mag, Math.abs(want[i].out[d])); }
          e = Math.max(e, Math.abs(l[h] - want[i].lse) / Math.max(1, Math.abs(want[i].lse)) * mag);
        });
        prog.destroy();
        const gbs = bytes / (us * 1e3);
        console.log(`${dtype} ${String(n).padStart(6)} keys  ${v.label.padEnd(20)} ${shapeText.padEnd(30)} ${us.toFixed(1).padStart(8)} us x${reps}  ${gbs.toFixed(0).padStart(5)} GB/s ${((100 * gbs) / peak).toFixed(1).padStart(5)}%  err ${(e / mag).toExponential(1)}`);
      }
      rowInfo.destroy();
      desc.destroy();
      for (const b of blocks) pool.release(b);
    }
    pool.destroy();
  }
  q.destroy();
  out.destroy();
  lse.destroy();
  return 0;
}
