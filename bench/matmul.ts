/**
 * `ape bench matmul [--shape llama-3.2-1b|tiny] [--rows 512,2048,8192] [--formats f32,f16,f16c] [--layers qkv,o,...]
 *  [--tile BMxBNxBKxTMxTNxNB] [--reps N] [--trials 3] [--peak 67]`
 *
 * GPU time of one prefill linear layer alone (recordLinear: the engine's own kernel and tiling choice) on
 * the model's layer shapes (1B: qkv 3072x2048, o 2048x2048, gate_up fused 16384x2048, down 2048x8192, LM
 * head 128256x2048) at each row count, for each float format: f32 and f16 weights in f32 arithmetic, and
 * f16c (f16 weights in f16 arithmetic, where the adapter offers shader-f16). The recorded layer is encoded
 * `reps` times in one pass (default: ~0.25 s of work at 30 TFLOP/s on a GPU, 2 on a CPU adapter) and a
 * 1-dispatch submit is subtracted (no host round trip counted); the best of --trials measurements is kept.
 * Prints the tiling, microseconds per matmul, TFLOP/s (2 M N K per matmul) and its fraction of the adapter's f32 FMA
 * rate, measured first in the same run (bench/fma_probe.ts; --peak T overrides it), and the largest error of 64 sampled outputs against a
 * float64 CPU dot product (relative to their largest magnitude). On CPU adapters it also prints GFLOP per
 * CPU-second of the process (steadier than the wall clock on a shared machine).
 * `--tile` forces one tiling (recordLinear's `tile`) to compare tilings on an adapter.
 * Format i8 (adapters with int8 subgroup matrices: Gpu.hasInt8Matrix) runs compute "int8": f16 weights' int8
 * copy, x quantized per row in the same program (quantize_i8 + matmul_i8, both timed; TOP/s counts the same
 * 2 M N K), checked against float64 (the quantization's error) and against an exact CPU product of the same
 * int8 values (the kernel's own error: f32 rounding only).
 */
import process from "node:process";
import { getGpu } from "../src/gpu/device.ts";
import { readBuffer, storageBuffer, uploadF32 } from "../src/gpu/buffers.ts";
import { Kernels, unrollsLoops } from "../src/gpu/shaders.ts";
import { Program } from "../src/engine/program.ts";
import { kernelFormat, type MatmulTile, matmulTile, recordLinear } from "../src/engine/linear.ts";
import { attachInt8, I8_TILE, type I8Tile, i8ScratchBytes } from "../src/engine/linear_i8.ts";
import { destroyLinear, uploadQuantLinear } from "../src/model/weights.ts";
import { f16ToF32 } from "../src/model/quant.ts";
import { InvalidArgumentError } from "../src/errors.ts";
import { parseArgs } from "../sdk/commands/args.ts";
import { randomWeightBytes, randomWords } from "./random_weights.ts";
import { fmaPeak } from "./fma_probe.ts";
import { mmaPeak } from "./mma_probe.ts";

const SHAPES: Record<string, { name: string; N: number; K: number }[]> = {
  "llama-3.2-1b": [
    { name: "qkv", N: 3072, K: 2048 },
    { name: "o", N: 2048, K: 2048 },
    { name: "gate_up", N: 16384, K: 2048 },
    { name: "down", N: 2048, K: 8192 },
    { name: "lm_head", N: 128256, K: 2048 },
  ],
  tiny: [
    { name: "qkv", N: 384, K: 256 },
    { name: "o", N: 256, K: 256 },
    { name: "gate_up", N: 1024, K: 256 },
    { name: "down", N: 256, K: 512 },
    { name: "lm_head", N: 4096, K: 256 },
  ],
};

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, { string: ["shape", "rows", "formats", "layers", "tile", "i8-tiles", "reps", "trials", "peak"] });
  const shapeName = a.string.shape ?? "llama-3.2-1b";
  const shapes = SHAPES[shapeName];
  if (!shapes) throw new InvalidArgumentError(`--shape: one of ${Object.keys(SHAPES).join(", ")} (got '${shapeName}')`);
  const layers = a.string.layers?.split(",");
  const rowsList = (a.string.rows ?? (shapeName === "tiny" ? "64,256" : "512,2048,8192")).split(",").map(Number);
  const formats = (a.string.formats ?? "f32,f16,f16c").split(",");
  const peakArg = a.string.peak === undefined ? undefined : Number(a.string.peak);
  let tile: MatmulTile | undefined;
  if (a.string.tile) {
    const v = a.string.tile.split("x").map(Number);
    if (v.length !== 6 || v.some((n) => !Number.isInteger(n) || n <= 0)) throw new InvalidArgumentError(`--tile: BMxBNxBKxTMxTNxNB, e.g. 128x128x16x8x8x2 (got '${a.string.tile}')`);
    tile = { BM: v[0], BN: v[1], BK: v[2], TM: v[3], TN: v[4], NB: v[5] };
  }
  // --i8-tiles FMxFNxSGMxSGNxBK,...: the int8 tilings to compare (default: the engine's)
  const i8Tiles: I8Tile[] = (a.string["i8-tiles"]?.split(",") ?? [null]).map((t) => {
    if (t === null) return I8_TILE;
    const named = t.endsWith("n"); // accumulators in named variables (FM 2, FN 4)
    const v = (named ? t.slice(0, -1) : t).split("x").map(Number);
    if (v.length < 5 || v.length > 6 || v.some((n) => !Number.isInteger(n) || n < 0)) throw new InvalidArgumentError(`--i8-tiles: FMxFNxSGMxSGNxBK[xPROBE][n], e.g. 2x4x4x2x64 (got '${t}')`);
    return { FM: v[0], FN: v[1], SGM: v[2], SGN: v[3], BK: v[4], probe: v[5], named };
  });
  const gpu = await getGpu();
  const dev = gpu.device;
  const k = new Kernels(dev, gpu.hasF16, unrollsLoops(gpu));
  const reps = a.string.reps === undefined ? undefined : Number(a.string.reps);
  const trials = Number(a.string.trials ?? 3);
  const probe = peakArg === undefined ? await fmaPeak(gpu, k) : undefined;
  const peak = peakArg ?? probe!.tflops;
  console.log(`adapter: ${gpu.description}; shape ${shapeName}; ${reps ?? "auto"} reps; peak ${peak.toFixed(2)} TFLOP/s (${probe ? `f32 FMA rate measured now, fma_probe ${probe.ms.toFixed(2)} ms` : "--peak"})`);
  const bits = randomWords();
  for (const fmt of formats) {
    if (!["f32", "f16", "f16c", "i8"].includes(fmt)) throw new InvalidArgumentError(`--formats: f32, f16, f16c, i8 (got '${fmt}')`);
    if (fmt === "f16c" && !gpu.hasF16) {
      console.log(`f16c: skipped (the adapter lacks shader-f16)`);
      continue;
    }
    if (fmt === "i8") {
      const info = gpu.adapterInfo as GPUAdapterInfo & { subgroupMatrixConfigs?: unknown; subgroupMinSize?: number; subgroupMaxSize?: number };
      console.log(`i8: subgroups ${info.subgroupMinSize}..${info.subgroupMaxSize}, subgroup matrices ${JSON.stringify(info.subgroupMatrixConfigs ?? "none")}`);
      if (!gpu.hasInt8Matrix) {
        console.log(`i8: skipped (the adapter has no int8 subgroup matrices)`);
        continue;
      }
      for (const shape of ["named", "array"] as const) {
        const m = await mmaPeak(gpu, k, shape);
        console.log(`i8: subgroup-matrix multiply rate (mma_probe, accumulators in ${shape === "named" ? "named variables" : "an array"}): ${m.tops.toFixed(1)} TOP/s (${m.ms.toFixed(2)} ms)`);
      }
    }
    for (const sh of shapes) {
      if (layers && !layers.includes(sh.name)) continue;
      const type = fmt === "f32" ? "F32" : "F16";
      const bytes = randomWeightBytes(type, sh.N * sh.K, bits);
      const W = uploadQuantLinear(gpu, sh.name, fmt === "f32" ? "f32" : "f16", bytes, sh.N, sh.K, sh.K * (type === "F32" ? 4 : 2));
      if (fmt === "f16c") W.compute = "f16";
      if (fmt === "i8") attachInt8(gpu, k, W);
      // W's row n as floats, for the sampled check
      const wRow = (n: number) => type === "F32"
        ? new Float32Array(bytes.buffer, bytes.byteOffset + n * sh.K * 4, sh.K)
        : Float32Array.from(new Uint16Array(bytes.buffer, bytes.byteOffset + n * sh.K * 2, sh.K), f16ToF32);
      for (const M of rowsList) for (const i8Tile of fmt === "i8" ? i8Tiles : [I8_TILE]) {
        const label = `${fmt.padEnd(5)} ${sh.name.padEnd(8)} ${`${M}x${sh.N}x${sh.K}`.padEnd(18)}`;
        if (M * sh.N * 4 > gpu.limits.maxStorageBufferBindingSize || M * sh.K * 4 > gpu.limits.maxStorageBufferBindingSize) {
          console.log(`${label} skipped: y or x exceeds the adapter's binding size`);
          continue;
        }
        const flops = 2 * M * sh.N * sh.K;
        // GPUs: enough repetitions for ~0.25 s of work at 30 TFLOP/s, so a readback's jitter (~12 ms in Deno) stays small
        const n = reps ?? (gpu.isCpu ? 2 : Math.min(1000, Math.max(5, Math.ceil(7.5e12 / flops))));
        const xh = Float32Array.from(bits(M * sh.K), (u) => u / 4294967296 - 0.5);
        const x = uploadF32(dev, xh), y = storageBuffer(dev, M * sh.N * 4);
        const prog = new Program(dev);
        const need = i8ScratchBytes(M, sh.K);
        const i8 = fmt === "i8" ? { q: storageBuffer(dev, need.q), s: storageBuffer(dev, need.s) } : undefined;
        recordLinear(prog, k, x, W, y, M, gpu.isCpu ? "rows" : "lanes", undefined, false, {}, undefined, tile, i8, i8Tile);
        // wall-clock ms of one submit of `count` matmuls (and, for CPU adapters, the process's CPU ms: on a
        // shared machine the CPU time a software adapter spends is steadier than the wall clock)
        const timed = async (count: number) => {
          const enc = dev.createCommandEncoder();
          const pass = enc.beginComputePass();
          for (let r = 0; r < count; r++) prog.encode(pass);
          pass.end();
          const c0 = process.cpuUsage(), t0 = performance.now();
          dev.queue.submit([enc.finish()]);
          await readBuffer(dev, y, 4);
          const ms = performance.now() - t0, c = process.cpuUsage(c0);
          return { ms, cpu: (c.user + c.system) / 1000 };
        };
        await timed(1);
        let us = Infinity, cpuUs = Infinity; // the best of `trials` measurements (other work on the machine only adds time)
        for (let i = 0; i < trials; i++) {
          const one = await timed(1), many = await timed(n + 1);
          us = Math.min(us, ((many.ms - one.ms) / n) * 1000);
          cpuUs = Math.min(cpuUs, ((many.cpu - one.cpu) / n) * 1000);
        }
        prog.destroy();
        const out = new Float32Array(await readBuffer(dev, y, M * sh.N * 4));
        let err = 0, mag = 0;
        for (let i = 0; i < 64; i++) {
          const m = (i * 7919) % M, col = (i * 104729 + 13) % sh.N;
          const w = wRow(col);
          let s = 0;
          for (let c = 0; c < sh.K; c++) s += xh[m * sh.K + c] * w[c];
          err = Math.max(err, Math.abs(out[m * sh.N + col] - s));
          mag = Math.max(mag, Math.abs(s));
        }
        // i8: the same 64 outputs from the int8 values themselves (x quantized here as quantize_i8 does, W's int8
        // copy read back): what the kernel must give up to f32 rounding
        let exact = "";
        if (i8) {
          const Kp = W.i8!.Kp;
          const wq = new Int8Array(await readBuffer(dev, W.i8!.chunks[0].buffer, W.i8!.chunks[0].buffer.size));
          const ws = new Float32Array(await readBuffer(dev, W.i8!.scales, sh.N * 4));
          let e8 = 0, m8 = 0;
          for (let i = 0; i < 64; i++) {
            const m = (i * 7919) % M, col = (i * 104729 + 13) % sh.N;
            const row = xh.subarray(m * sh.K, (m + 1) * sh.K);
            const amax = row.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
            const inv = Math.fround(127 / amax), sx = Math.fround(amax / 127);
            let acc = 0;
            for (let c = 0; c < sh.K; c++) acc += Math.max(-127, Math.min(127, roundEven(Math.fround(row[c] * inv)))) * wq[col * Kp + c];
            const ref = acc * sx * ws[col];
            e8 = Math.max(e8, Math.abs(out[m * sh.N + col] - ref));
            m8 = Math.max(m8, Math.abs(ref));
          }
          exact = `  vs int8 reference ${(e8 / m8).toExponential(1)}`;
          i8.q.destroy();
          i8.s.destroy();
        }
        const tflops = flops / us / 1e6;
        if (fmt === "i8") {
          const tl = `${i8Tile.FM}x${i8Tile.FN}x${i8Tile.SGM}x${i8Tile.SGN}x${i8Tile.BK}${i8Tile.probe ? `x${i8Tile.probe}` : ""}${i8Tile.named ? "n" : ""}`;
          console.log(`${label} tile ${tl.padEnd(10)} ${Math.max(0, us).toFixed(0).padStart(9)} us x${n}  ${tflops.toFixed(2).padStart(6)} TOP/s  max err ${(err / mag).toExponential(1)}${exact}`);
          x.destroy();
          y.destroy();
          continue;
        }
        const t = tile ?? matmulTile(dev, M, sh.N, sh.K, kernelFormat(W), k.unroll);
        const speed = tflops >= 0.1 ? `${tflops.toFixed(2).padStart(6)} TFLOP/s` : `${(tflops * 1000).toFixed(2).padStart(6)} GFLOP/s`;
        const rate = us > 0 ? `${speed} ${((100 * tflops) / peak).toFixed(2).padStart(6)}% of peak` : "(no difference measured: raise --reps)";
        const cpu = gpu.isCpu ? `  ${(flops / cpuUs / 1e3).toFixed(2)} GFLOP per CPU-second` : "";
        console.log(`${label} tile ${t.BM}x${t.BN}x${t.BK} ${t.TM}x${t.TN} nb${t.NB}  ${Math.max(0, us).toFixed(0).padStart(9)} us x${n}  ${rate}  max err ${(err / mag).toExponential(1)}${cpu}`);
        x.destroy();
        y.destroy();
      }
      destroyLinear(W);
    }
  }
  return 0;
}

/** Rounds half to even, as WGSL's round(). */
function roundEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
