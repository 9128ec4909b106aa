/**
 * The adapter's f32 FMA rate, measured in the run that quotes it (shaders/fma_probe.wgsl: chains of independent vec4
 * FMAs, no memory traffic), so a benchmark's "fraction of peak" is against this card as it runs now, not a datasheet.
 * 2 FLOP per FMA. GPUs: 4096 workgroups of 256 invocations x 2048 rounds of 32 FMAs (~137 GFLOP per dispatch); CPU
 * adapters: 64 workgroups x 256 rounds.
 *
 * @example
 * ```ts
 * import { getGpu } from "../src/gpu/device.ts";
 * import { Kernels } from "../src/gpu/shaders.ts";
 * import { fmaPeak } from "./fma_probe.ts";
 * const gpu = await getGpu();
 * const peak = await fmaPeak(gpu, new Kernels(gpu.device));
 * console.log(`${peak.tflops.toFixed(2)} TFLOP/s of f32 FMA`);
 * ```
 */
import type { Gpu } from "../src/gpu/device.ts";
import { storageBuffer } from "../src/gpu/buffers.ts";
import type { Kernels } from "../src/gpu/shaders.ts";
import { Params, Program } from "../src/engine/program.ts";
import { timeReplays } from "./kernel_timing.ts";

export interface FmaPeak {
  /** Measured TFLOP/s (2 per FMA). */
  tflops: number;
  /** GPU ms of one probe dispatch. */
  ms: number;
}

export async function fmaPeak(gpu: Gpu, k: Kernels, trials = 3): Promise<FmaPeak> {
  const groups = gpu.isCpu ? 64 : 4096, iters = gpu.isCpu ? 256 : 2048;
  const out = storageBuffer(gpu.device, groups * 256 * 4, "fma_probe.out");
  const prog = new Program(gpu.device);
  const pipe = k.pipeline("fma_probe");
  prog.dispatch(pipe, k.bind(pipe, [out, prog.uniform(new Params().u(iters).f(0.999, 1e-3).bytes())]), groups);
  try {
    const t = await timeReplays(gpu.device, prog, out, { trials, budgetMs: gpu.isCpu ? 200 : 100, label: "fma_probe" });
    const flop = groups * 256 * iters * 32 * 2;
    return { tflops: flop / (t.ms * 1e-3) / 1e12, ms: t.ms };
  } finally {
    prog.destroy();
    out.destroy();
  }
}
