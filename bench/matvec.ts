/**
 * `ape bench matvec [--types f16,q8_0,q4_1] [--shapes lanes,rows[,unroll];...] [--layers qkv,o,gate_up,down,lm_head] [--trials 3] [--batch M [--norm]]`
 *
 * GPU time of the decode matvec kernels (matvec_<format>, one row of x) alone, on the Llama-3.2-1B layer
 * shapes with random weights and the input stage a decode step uses (RMSNorm for qkv, gate/up and the
 * LM head; SwiGLU for down_proj; the fused residual add for o_proj and down_proj), recorded through
 * recordLinear as forward.ts records them: for each weight type and layer, the shape matvecShape picks
 * (the default, marked *) and every `--shapes` variant (lanes per row x rows per lane group), timed by
 * replaying the dispatch in one submit (bench/kernel_timing.ts). Prints microseconds per dispatch and the
 * weight bytes streamed per second (each dispatch of a replay reads its own copy of the weights, 256 MB in
 * all, so that small layers are timed from memory as in a forward pass, not from the L2 cache), and each
 * variant's max difference from
 * the default's output (a variant must not change the numbers beyond rounding).
 * With `--batch M` (2..32) it times the batched matvec (matvec_batch_<format>, M rows of x, no input stage)
 * instead: `--shapes` then lists lanes,rows,batch[,unroll] shapes, batchShape's pick is marked *, and the tiled
 * prefill matmul the batched kernel replaces is timed beside them (us per call and per row of x).
 * `--norm` (with `--batch`) gives the normed layers (qkv, gate_up, lm_head) their RMSNorm: on the fly in the batched
 * kernel's input stage (its NORM variant, marked "norm"), and beside it rmsnorm_copy's dispatch + the kernel without
 * it (forward.ts's path for layers past BATCH_NORM_MAX_ROWS; the matmul, too, runs after rmsnorm_copy).
 *
 * @example
 * ```sh
 * deno run -A sdk/cli.ts bench matvec --types f16 --shapes "32,1;32,2;64,4"
 * deno run -A sdk/cli.ts bench matvec --types f16 --batch 8 --norm --layers qkv,gate_up,lm_head
 * ```
 */
import { getGpu } from "../src/gpu/device.ts";
import { readBuffer, storageBuffer, uploadBytes, uploadF32 } from "../src/gpu/buffers.ts";
import { Kernels, unrollsLoops } from "../src/gpu/shaders.ts";
import { Params, Program } from "../src/engine/program.ts";
import { type BatchShape, batchShape, type MatvecShape, matvecShape, recordLinear } from "../src/engine/linear.ts";
import { parseArgs } from "../sdk/commands/args.ts";
import { InvalidArgumentError } from "../src/errors.ts";
import { FORMATS, rowBytes } from "../src/model/quant.ts";
import type { GpuLinear } from "../src/model/weights.ts";
import { RANDOM_TYPES, randomWeightBytes } from "./random_weights.ts";
import { timeReplays } from "./kernel_timing.ts";

const LAYERS = {
  qkv: { N: 3072, K: 2048, norm: true, swiglu: false, accumulate: false },
  o: { N: 2048, K: 2048, norm: false, swiglu: false, accumulate: true },
  gate_up: { N: 16384, K: 2048, norm: true, swiglu: false, accumulate: false },
  down: { N: 2048, K: 8192, norm: false, swiglu: true, accumulate: true },
  lm_head: { N: 128256, K: 2048, norm: true, swiglu: false, accumulate: false },
};
const DEFAULT_SHAPES = "32,1;32,2;32,4;64,1;64,2;64,4;128,1;128,2;128,4;256,1;256,2";

function parseShapes(s: string): MatvecShape[] {
  return s.split(";").filter((x) => x.trim()).map((x) => {
    const [lanes, rows, unroll = 2] = x.split(",").map(Number);
    if (![32, 64, 128, 256].includes(lanes) || ![1, 2, 4].includes(rows) || ![2, 4].includes(unroll)) {
      throw new InvalidArgumentError(`--shapes: '${x}' is not lanes,rows[,unroll] (lanes 32/64/128/256, rows 1/2/4, unroll 2/4)`);
    }
    return { lanes, rows, unroll };
  });
}

const DEFAULT_BATCH_SHAPES = "16,2,8;32,1,8;32,2,8;32,4,8;64,2,8;64,4,8;128,2,8;32,2,4;32,4,4;64,4,4";

function parseBatchShapes(s: string): BatchShape[] {
  return s.split(";").filter((x) => x.trim()).map((x) => {
    const [lanes, rows, batch, unroll = 2] = x.split(",").map(Number);
    if (![8, 16, 32, 64, 128, 256].includes(lanes) || ![1, 2, 4].includes(rows) || !(batch >= 1 && batch <= 8) || ![1, 2].includes(unroll)) {
      throw new InvalidArgumentError(`--shapes: '${x}' is not lanes,rows,batch[,unroll] (lanes 8..256, rows 1/2/4, batch 1..8, unroll 1/2)`);
    }
    return { lanes, rows, batch, unroll };
  });
}

/** --types: the weight types with random weights. */
function parseTypes(s = "f16"): (typeof RANDOM_TYPES)[number][] {
  return s.split(",").map((t) => {
    const type = RANDOM_TYPES.find((r) => r.toLowerCase() === t.trim().toLowerCase());
    if (!type) throw new InvalidArgumentError(`--types: '${t}' has no random weights (types: ${RANDOM_TYPES.join(", ")})`);
    return type;
  });
}

/** --layers: names of LAYERS. */
function parseLayers(s = Object.keys(LAYERS).join(",")): (keyof typeof LAYERS)[] {
  return s.split(",").map((l) => {
    if (!(l in LAYERS)) throw new InvalidArgumentError(`--layers: '${l}' is not one of ${Object.keys(LAYERS).join(", ")}`);
    return l as keyof typeof LAYERS;
  });
}

/**
 * A layer's random weights in `type`, uploaded once per dispatch of a replay: as in a forward pass, each dispatch
 * reads its own copy (16 layers), since a layer that fits the GPU's L2 cache (an H200's 50 MB) replayed alone
 * would be timed from the cache, not from memory.
 */
function layerCopies(dev: GPUDevice, type: (typeof RANDOM_TYPES)[number], L: (typeof LAYERS)[keyof typeof LAYERS]) {
  const fmt = FORMATS[type].gpu ?? type.toLowerCase();
  const rb = rowBytes(type, L.K);
  const padded = new Uint8Array(L.N * rb + 4); // block kernels may read one word past the end
  padded.set(randomWeightBytes(type, L.N * L.K));
  const bytes = L.N * rb;
  const copies = Math.max(1, Math.min(16, Math.ceil((256 << 20) / bytes)));
  const buffers = Array.from({ length: copies }, () => uploadBytes(dev, padded));
  const Ws: GpuLinear[] = buffers.map((buffer) => ({ format: fmt, rows: L.N, cols: L.K, chunks: [{ buffer, rowStart: 0, rows: L.N }] }));
  return { fmt, bytes, copies, Ws, destroy: () => buffers.forEach((b) => b.destroy()) };
}

/**
 * Times a recorded variant (`copies` dispatches) by replay, then runs it once and compares its first `count`
 * outputs with the layer's first variant's (kept in `ref`): us per dispatch, max |diff| and the reference's magnitude.
 */
async function timeVariant(
  dev: GPUDevice, prog: Program, y: GPUBuffer, count: number, copies: number, trials: number, label: string, ref: { out?: Float32Array },
): Promise<{ us: number; diff: number; mag: number }> {
  const { ms } = await timeReplays(dev, prog, y, { trials, budgetMs: 100, maxReps: 2000, label });
  prog.submit();
  const out = new Float32Array(await readBuffer(dev, y, count * 4));
  const reference = (ref.out ??= out);
  let diff = 0, mag = 0;
  for (let i = 0; i < count; i++) {
    diff = Math.max(diff, Math.abs(out[i] - reference[i]));
    mag = Math.max(mag, Math.abs(reference[i]));
  }
  return { us: (ms * 1000) / copies, diff, mag };
}

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, { string: ["types", "shapes", "layers", "trials", "batch"], boolean: ["norm"] });
  const M = Number(a.string.batch ?? 1);
  if (!Number.isInteger(M) || M < 1 || M > 32) throw new InvalidArgumentError(`--batch: '${a.string.batch}' is not a row count 1..32`);
  if (a.boolean.norm && M === 1) throw new InvalidArgumentError(`--norm needs --batch M (2..32): the one-row sweep always runs its layers' input stage`);
  if (M > 1) return runBatch(a.string, M, !!a.boolean.norm);
  const types = parseTypes(a.string.types);
  const shapes = parseShapes(a.string.shapes ?? DEFAULT_SHAPES);
  const layers = parseLayers(a.string.layers);
  const trials = Number(a.string.trials ?? 3);
  const gpu = await getGpu();
  const k = new Kernels(gpu.device, gpu.hasF16, unrollsLoops(gpu));
  const dev = gpu.device;
  console.log(`adapter: ${gpu.description}`);
  const x = uploadF32(dev, Float32Array.from({ length: 2 * 8192 }, (_, i) => Math.sin(i)));
  const g = uploadF32(dev, new Float32Array(8192).fill(1));
  const y = storageBuffer(dev, 128256 * 4);
  for (const type of types) {
    for (const name of layers) {
      const L = LAYERS[name];
      const { fmt, bytes, copies, Ws, destroy } = layerCopies(dev, type, L);
      const byDefault = matvecShape(L.N, L.K);
      const same = (s: MatvecShape) => s.lanes === byDefault.lanes && s.rows === byDefault.rows && (s.unroll ?? 2) === (byDefault.unroll ?? 2);
      const variants = [byDefault, ...shapes.filter((s) => !same(s))];
      const ref: { out?: Float32Array } = {};
      for (const mv of variants) {
        const prog = new Program(dev);
        // accumulate is left off while timing (replays would grow y); the fused add costs one read of y
        for (const W of Ws) recordLinear(prog, k, x, W, y, 1, "lanes", undefined, false, { swiglu: L.swiglu, norm: L.norm ? { weight: g, eps: 1e-5 } : undefined }, mv);
        const label = `matvec_${fmt} ${name} lanes ${mv.lanes} rows ${mv.rows} unroll ${mv.unroll ?? 2}`;
        try {
          const { us, diff, mag } = await timeVariant(dev, prog, y, L.N, copies, trials, label, ref);
          const mark = mv === byDefault ? "*" : " ";
          console.log(
            `${`matvec_${fmt}`.padEnd(14)} ${name.padEnd(8)} ${mark} lanes ${String(mv.lanes).padStart(3)} rows ${mv.rows} unroll ${mv.unroll ?? 2}  ${us.toFixed(1).padStart(8)} us  ` +
              `${(bytes / us / 1e6).toFixed(2).padStart(6)} TB/s of weights (${(bytes / 1e6).toFixed(1)} MB)  max |diff| ${diff.toExponential(1)} of ${mag.toExponential(1)}`,
          );
        } catch (e) {
          console.log(`${label}: failed: ${(e as Error).message.split("\n")[0]}`);
        } finally {
          prog.destroy();
        }
      }
      destroy();
    }
  }
  for (const b of [x, g, y]) b.destroy();
  return 0;
}

/**
 * `--batch M`: the batched matvec variants and the tiled matmul on M rows of x, per layer; with `norm`, the normed
 * layers' RMSNorm fused into the batched kernels, and rmsnorm_copy + the batched kernel beside them.
 */
async function runBatch(opts: Record<string, string | undefined>, M: number, norm: boolean): Promise<number> {
  const types = parseTypes(opts.types);
  const shapes = parseBatchShapes(opts.shapes ?? DEFAULT_BATCH_SHAPES);
  const layers = parseLayers(opts.layers);
  const trials = Number(opts.trials ?? 3);
  const gpu = await getGpu();
  const k = new Kernels(gpu.device, gpu.hasF16, unrollsLoops(gpu));
  const dev = gpu.device;
  console.log(`adapter: ${gpu.description}; ${M} rows of x${norm ? "; RMSNorm for qkv, gate_up, lm_head" : ""}`);
  const x = uploadF32(dev, Float32Array.from({ length: 33 * 8192 }, (_, i) => Math.sin(i))); // 33 rows: the matmul's call
  const y = storageBuffer(dev, 33 * 128256 * 4);
  const g = uploadF32(dev, Float32Array.from({ length: 8192 }, (_, i) => 1 + 0.5 * Math.cos(i))), xn = storageBuffer(dev, 33 * 8192 * 4);
  const eps = 1e-5;
  // forward.ts's rmsnorm_copy: xn's `rows` rows = RMSNorm(x) * g
  const rmsnormCopy = (prog: Program, rows: number, width: number) => {
    const pipe = k.pipeline("rmsnorm_copy");
    prog.dispatch(pipe, k.bind(pipe, [x, g, xn, prog.uniform(new Params().u(rows, width, 0).f(eps).bytes())]), 1, rows);
  };
  for (const type of types) {
    for (const name of layers) {
      const L = LAYERS[name];
      const normed = norm && L.norm;
      const { fmt, bytes, copies, Ws, destroy } = layerCopies(dev, type, L);
      const byDefault = batchShape(L.N, L.K, M);
      const same = (s: BatchShape) => s.lanes === byDefault.lanes && s.rows === byDefault.rows && s.batch === byDefault.batch && (s.unroll ?? 2) === (byDefault.unroll ?? 2);
      // "matmul": the tiled prefill kernel (the lanes layout past BATCH_MAX_ROWS), through the rows it would get;
      // "copy": with the norm, rmsnorm_copy's dispatch then batchShape's pick without it (the unfused batched step)
      const variants: (BatchShape | "matmul" | "copy")[] = [byDefault, ...shapes.filter((s) => !same(s)), ...(normed ? ["copy" as const] : []), "matmul"];
      const input = normed ? { norm: { weight: g, eps } } : {};
      const ref: { out?: Float32Array } = {};
      for (const v of variants) {
        const prog = new Program(dev);
        if (v === "matmul") {
          // recordLinear sends <= BATCH_MAX_ROWS rows to the batched kernel: pad the call to 33 rows of which M are read back
          for (const W of Ws) {
            if (normed) rmsnormCopy(prog, Math.max(M, 33), L.K);
            recordLinear(prog, k, normed ? xn : x, W, y, Math.max(M, 33), "lanes");
          }
        } else if (v === "copy") {
          for (const W of Ws) {
            rmsnormCopy(prog, M, L.K);
            recordLinear(prog, k, xn, W, y, M, "lanes", undefined, false, {}, byDefault);
          }
        } else for (const W of Ws) recordLinear(prog, k, x, W, y, M, "lanes", undefined, false, input, v);
        const label = v === "matmul" ? `matmul_${fmt} ${name} (33 rows)` : v === "copy" ? `rmsnorm_copy + matvec_batch_${fmt} ${name}` : `matvec_batch_${fmt} ${name} ${v.lanes},${v.rows},${v.batch},${v.unroll ?? 2}`;
        try {
          const { us, diff, mag } = await timeVariant(dev, prog, y, M * L.N, copies, trials, label, ref);
          const what = v === "matmul" ? "matmul (33 rows)   " : v === "copy" ? "rmsnorm_copy + *   "
            : `${v === byDefault ? "*" : " "} lanes ${String(v.lanes).padStart(3)} rows ${v.rows} batch ${v.batch} unroll ${v.unroll ?? 2}${normed ? " norm" : ""}`;
          console.log(
            `${`${v === "matmul" ? "matmul" : "batch"}_${fmt}`.padEnd(12)} ${name.padEnd(8)} ${what}  ${us.toFixed(1).padStart(8)} us  ${(us / M).toFixed(2).padStart(7)} us/row  ` +
              `${(bytes / us / 1e6).toFixed(2).padStart(6)} TB/s of weights  max |diff| ${diff.toExponential(1)} of ${mag.toExponential(1)}`,
          );
        } catch (e) {
          console.log(`${label}: failed: ${(e as Error).message.split("\n")[0]}`);
        } finally {
          prog.destroy();
        }
      }
      destroy();
    }
  }
  for (const b of [x, y, g, xn]) b.destroy();
  return 0;
}
