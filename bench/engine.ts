/**
 * `ape bench engine [--dtype f16|f32|q8_0|q4_1|q4_0] [--compute f32|f16|int8] [--kv f32|f16] [--layers N] [--prefill 512] [--decode 128] [--shape llama-3.2-1b|tiny|smollm2-135m] [--layers-per-submit N]`
 *
 * Prefill tokens/s and batch-1 decode tokens/s for a model of the given shape with random weights,
 * and the fraction of the memory-bandwidth floor that decode reaches: (bytes of weights + KV read per
 * token) / (the card's copy bandwidth, measured in the same run with shaders/copy.wgsl).
 * `--compute f16` (with `--dtype f16`) runs the f16 linear layers in f16 arithmetic (shader-f16).
 */
import { getGpu, type Gpu } from "../src/gpu/device.ts";
import { readBuffer, storageBuffer } from "../src/gpu/buffers.ts";
import { buildModel } from "../src/model/model.ts";
import type { ModelConfig } from "../src/model/config.ts";
import type { HostTensor } from "../src/model/tensor.ts";
import type { GpuLinear } from "../src/model/weights.ts";
import { Engine } from "../src/engine/engine.ts";
import { decode } from "../src/engine/generate.ts";
import { sequentialLogits } from "../src/ape/ape.ts";
import { Params, Program } from "../src/engine/program.ts";
import { InvalidArgumentError } from "../src/errors.ts";
import { parseArgs } from "../sdk/commands/args.ts";
import { decodeBreakdown, replayBreakdown } from "./decode_breakdown.ts";
import { Forward } from "../src/engine/forward.ts";
import { fmaPeak } from "./fma_probe.ts";
import { randomWeightBytes, randomWords } from "./random_weights.ts";

/** Model shapes the benchmarks build with random weights (also used by `ape bench long`). */
export const SHAPES: Record<string, Partial<ModelConfig>> = {
  "llama-3.2-1b": { hidden: 2048, intermediate: 8192, layers: 16, heads: 32, kvHeads: 8, headDim: 64, vocabSize: 128256, tieEmbeddings: false },
  tiny: { hidden: 256, intermediate: 512, layers: 4, heads: 8, kvHeads: 2, headDim: 32, vocabSize: 4096, tieEmbeddings: false },
  // the default model's shape (SmolLM2-135M), for CPU adapters
  "smollm2-135m": { hidden: 576, intermediate: 1536, layers: 30, heads: 9, kvHeads: 3, headDim: 64, vocabSize: 49152, tieEmbeddings: false },
};

/** `--dtype` values and the GGML storage type each one benchmarks. */
export const DTYPES: Record<string, string> = { f32: "F32", f16: "F16", q8_0: "Q8_0", q4_1: "Q4_1", q4_0: "Q4_0" };
/**
 * Random weights in their storage format (bench/random_weights.ts), generated on demand by name. The
 * embedding is f32 (the gather reads f32 rows) and untied from an LM head in the benchmarked dtype, so
 * every matrix a decode step reads is in that dtype.
 */
export function randomSource(cfg: ModelConfig, dtype: string): { get(name: string): HostTensor | undefined } {
  const { hidden: H, intermediate: I, heads, kvHeads, headDim: hd, vocabSize: V } = cfg;
  const bits = randomWords();
  const shapeOf = (name: string): number[] | undefined => {
    if (name === "model.embed_tokens.weight" || name === "lm_head.weight") return [V, H];
    if (name === "model.norm.weight" || name.endsWith("layernorm.weight")) return [H];
    if (name.endsWith("q_proj.weight")) return [heads * hd, H];
    if (name.endsWith("k_proj.weight") || name.endsWith("v_proj.weight")) return [kvHeads * hd, H];
    if (name.endsWith("o_proj.weight")) return [H, heads * hd];
    if (name.endsWith("gate_proj.weight") || name.endsWith("up_proj.weight")) return [I, H];
    if (name.endsWith("down_proj.weight")) return [H, I];
    return undefined;
  };
  return {
    get(name) {
      const shape = shapeOf(name);
      if (!shape) return undefined;
      const n = shape.reduce((a, b) => a * b, 1);
      const type = shape.length === 1 || name === "model.embed_tokens.weight" ? "F32" : dtype;
      const data = randomWeightBytes(type, n, bits, shape.length === 1);
      return { name, dtype: type, shape, data };
    },
  };
}

/** A Llama-architecture config of the given shape (RoPE theta 500000, no scaling; positions up to `maxPositions`). */
export function shapeConfig(shape: Partial<ModelConfig>, maxPositions = 131072): ModelConfig {
  return {
    architecture: "llama", vocabSize: 0, hidden: 0, intermediate: 0, layers: 0, heads: 0, kvHeads: 0, headDim: 0,
    rmsEps: 1e-5, ropeTheta: 500000, ropeScaling: { type: "none" }, maxPositions, tieEmbeddings: true,
    qkvBias: false, oBias: false, qkNorm: false, slidingWindow: 0, eosTokenIds: [], ...shape,
  };
}

/**
 * Achievable copy bandwidth in bytes/s (read + write), from shaders/copy.wgsl on 512 MiB: the
 * difference of a 1-copy and a 21-copy submit, so the readback round trip (~12 ms in Deno) cancels.
 */
async function copyBandwidth(gpu: Gpu, kernels: import("../src/gpu/shaders.ts").Kernels): Promise<number> {
  const bytes = Math.min(512 << 20, gpu.limits.maxStorageBufferBindingSize);
  const src = storageBuffer(gpu.device, bytes), dst = storageBuffer(gpu.device, bytes);
  const pipe = kernels.pipeline("copy");
  const groups = Math.min(65535, Math.ceil(bytes / 16 / (1024 * 4))); // ~4 vec4 per thread
  const timed = async (reps: number) => {
    const prog = new Program(gpu.device);
    const params = prog.uniform(new Params().u(bytes / 16).bytes());
    for (let r = 0; r < reps; r++) prog.dispatch(pipe, kernels.bind(pipe, [src, dst, params]), groups);
    const t0 = performance.now();
    prog.submit();
    await readBuffer(gpu.device, dst, 16);
    prog.destroy();
    return performance.now() - t0;
  };
  await timed(2); // warm-up
  const one = await timed(1), many = await timed(21);
  src.destroy();
  dst.destroy();
  return (2 * bytes * 20) / ((many - one) / 1000);
}

/** The model options `bench engine` and `bench long` share: --shape, --dtype, --compute (checked). */
export function modelArgs(s: Record<string, string | undefined>) {
  const shapeName = s.shape ?? "llama-3.2-1b";
  const shape = SHAPES[shapeName];
  if (!shape) throw new InvalidArgumentError(`--shape must be one of ${Object.keys(SHAPES).join(", ")}`);
  const dtype = s.dtype ?? "f16";
  if (!DTYPES[dtype]) throw new InvalidArgumentError(`--dtype must be one of ${Object.keys(DTYPES).join(", ")} (got '${dtype}')`);
  const compute = s.compute ?? "f32";
  if (compute !== "f32" && compute !== "f16" && compute !== "int8") throw new InvalidArgumentError(`--compute must be f32, f16 or int8 (got '${compute}')`);
  if (compute === "f16" && dtype !== "f16") throw new InvalidArgumentError(`--compute f16 needs --dtype f16 (got '${dtype}')`);
  return { shapeName, shape, dtype, compute: compute as "f32" | "f16" | "int8" };
}

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, { string: ["dtype", "compute", "layers", "prefill", "decode", "shape", "context", "kv", "layers-per-submit"] });
  const kvDtype = a.string.kv ?? "f32";
  if (kvDtype !== "f32" && kvDtype !== "f16") throw new InvalidArgumentError(`--kv must be f32 or f16 (got '${kvDtype}')`);
  const { shapeName, shape, dtype, compute } = modelArgs(a.string);
  const cfg = shapeConfig(shape);
  if (a.string.layers) cfg.layers = Number(a.string.layers);
  const prefillN = Number(a.string.prefill ?? 512), decodeN = Number(a.string.decode ?? 128);
  const gpu = await getGpu();
  console.log(`adapter: ${gpu.description}`);
  console.log(`model: ${shapeName} shape (${cfg.layers} layers, hidden ${cfg.hidden}, vocab ${cfg.vocabSize}), random ${dtype} weights, ${compute} compute, KV ${kvDtype}`);
  let t = performance.now();
  const model = buildModel(gpu, cfg, randomSource(cfg, DTYPES[dtype]), { source: "random", fingerprintSeed: "bench", compute });
  console.log(`load: ${((performance.now() - t) / 1000).toFixed(1)} s`);
  const lps = a.string["layers-per-submit"] === undefined ? undefined : Number(a.string["layers-per-submit"]);
  const engine = new Engine(model, { kvBudgetBytes: 2 * 2 ** 30, maxBatchRows: 8192, kvDtype, layersPerSubmit: lps });
  console.log(`prefill recording: ${engine.layersPerSubmit ? `submitted every ${engine.layersPerSubmit} layers while recorded` : "whole, then submitted"}`);
  const bw = await copyBandwidth(gpu, model.kernels);
  console.log(`copy bandwidth (read+write): ${(bw / 1e12).toFixed(3)} TB/s`);
  const peak = await fmaPeak(gpu, model.kernels);
  console.log(`f32 FMA rate (fma_probe, this run): ${peak.tflops.toFixed(2)} TFLOP/s`);

  const ids = Uint32Array.from({ length: prefillN }, (_, i) => (i * 7919) % cfg.vocabSize);
  // warm-up at the timed length: the prefill matmul's tile (and so its pipeline) depends on the row count
  await sequentialLogits(engine, ids);
  t = performance.now();
  await sequentialLogits(engine, ids);
  const prefillS = (performance.now() - t) / 1000;
  console.log(`prefill: ${prefillN} tokens in ${(prefillS * 1000).toFixed(1)} ms = ${(prefillN / prefillS).toFixed(0)} tokens/s`);
  // the linear layers' arithmetic (2 per multiply-add; the LM head for the one logit row): achieved rate and fraction of the probe's
  const linearFlop = 2 * prefillN * model.layers.reduce((n, L) => n + [L.qkv, L.o, L.gateUp, L.down].reduce((m, W) => m + W.rows * W.cols, 0), 0) +
    2 * model.lmHead.rows * model.lmHead.cols;
  const achieved = linearFlop / prefillS / 1e12;
  console.log(`prefill linear layers: ${(linearFlop / 1e12).toPrecision(3)} TFLOP in the wall-clock time above = ${achieved.toPrecision(3)} TFLOP/s, ${(100 * achieved / peak.tflops).toFixed(1)}% of the f32 FMA rate${compute === "int8" ? " (int8 operations counted as FLOP)" : ""}`);
  { // where a prefill's GPU time goes: the same forward pass recorded alone, each kernel replayed back to back
    const pblock = engine.pool.allocate(prefillN, 0);
    const t0 = performance.now();
    const fwd = new Forward(model, engine.pool, prefillN, { groups: [{ rows: prefillN, write: pblock, writeAt: 0, plain: [pblock] }], logits: { from: prefillN - 1, count: 1 } });
    fwd.setIds(ids);
    const recordMs = performance.now() - t0;
    const t1 = performance.now();
    fwd.program.submit();
    const submitMs = performance.now() - t1;
    await fwd.readLogits();
    const onceMs = performance.now() - t1;
    const t2 = performance.now();
    fwd.program.submit();
    await fwd.readLogits();
    const againMs = performance.now() - t2;
    console.log(`prefill forward: recorded in ${recordMs.toFixed(1)} ms (buffers, bind groups, uniforms), submitted in ${submitMs.toFixed(1)} ms; submit to logits read ${onceMs.toFixed(1)} ms, the same forward again ${againMs.toFixed(1)} ms`);
    const r = await replayBreakdown(gpu.device, fwd.program, fwd.logits);
    const each = r.kernels.map((k) => `${k.name} x${k.dispatches} ${(k.ms * 1000).toFixed(0)} us`).join(", ");
    console.log(`prefill forward: ${r.dispatches} dispatches, GPU ${r.gpuMs.toFixed(2)} ms; per kernel: ${each}`);
    fwd.destroy();
    engine.pool.release(pblock);
  }

  const prompt = ids.subarray(0, 32);
  const block = engine.pool.allocate(prompt.length + 16 + decodeN, 0);
  const group = (rows: number, writeAt: number) => ({ rows, write: block, writeAt, plain: [block] });
  // decode speed as a difference of two runs (16 and 16 + N tokens), so prefill, the first readback
  // and pipeline start-up cancel out
  const timed = async (n: number) => {
    const t0 = performance.now();
    let got = 0;
    for await (const chunk of decode(engine, { prompt, block, group, maxTokens: n, stepsPerReadback: 16 })) got += chunk.length;
    if (got !== n) throw new Error(`decode produced ${got} of ${n} tokens`);
    return performance.now() - t0;
  };
  await timed(16); // warm-up
  const short = await timed(16), long = await timed(16 + decodeN);
  const perToken = (long - short) / 1000 / decodeN;
  const n = decodeN;
  // bytes of weights a decode step reads: every linear layer's GPU buffers, and the LM head
  const bytesOf = (l: GpuLinear) => l.chunks.reduce((n, c) => n + c.buffer.size, 0);
  const weights = model.layers.reduce((n, L) => n + bytesOf(L.qkv) + bytesOf(L.o) + bytesOf(L.gateUp) + bytesOf(L.down), 0) + bytesOf(model.lmHead);
  const kv = cfg.layers * 2 * cfg.kvHeads * cfg.headDim * 4 * (prompt.length + decodeN / 2);
  const floor = (weights + kv) / bw; // a copy's read+write traffic rate is the memory system's rate
  console.log(`decode: ${n} tokens, ${(1 / perToken).toFixed(1)} tokens/s (${(perToken * 1000).toFixed(2)} ms/token, difference of a 16- and a ${16 + decodeN}-token run)`);
  console.log(`bytes read per token: ${((weights + kv) / 1e9).toFixed(3)} GB; floor at copy bandwidth: ${(floor * 1000).toFixed(3)} ms/token; fraction of floor reached: ${(floor / perToken * 100).toFixed(1)}%`);
  const b = await decodeBreakdown(engine, prompt.length + decodeN / 2);
  console.log(`decode step: ${b.dispatches} dispatches; host encode ${b.encodeMs.toFixed(3)} ms, submit ${b.submitMs.toFixed(3)} ms; GPU ${b.gpuMs.toFixed(3)} ms (${(b.gpuMs * 1000 / b.dispatches).toFixed(1)} us per dispatch; steps replayed in one submit), of which sampling ${(b.sampleMs * 1000).toFixed(1)} us`);
  const each = b.kernels.map((k) => `${k.name} x${k.dispatches} ${(k.ms * 1000).toFixed(0)} us`).join(", ");
  console.log(`per kernel (dispatches replayed alone, GPU time per step): ${each}; sum ${(b.kernels.reduce((n, k) => n + k.ms, 0)).toFixed(3)} ms`);
  engine.pool.release(block);
  engine.destroy();
  model.destroy();
  return 0;
}
