/**
 * The adapter's int8 subgroup-matrix multiply rate, measured in the run that quotes it (shaders/mma_probe.wgsl: 8
 * independent 16 x 16 x 32 multiply-accumulates per round on fragments loaded once, no memory traffic), in the
 * kernel's two code shapes: accumulators in named variables ("named") and in an array ("array", matmul_i8's shape).
 * Only where the device has int8 subgroup matrices (Gpu.hasInt8Matrix). TOP/s counts 2 operations per multiply-add.
 *
 * @example
 * ```ts
 * import { getGpu } from "../src/gpu/device.ts";
 * import { Kernels } from "../src/gpu/shaders.ts";
 * import { mmaPeak } from "./mma_probe.ts";
 * const gpu = await getGpu();
 * if (gpu.hasInt8Matrix) console.log(`${(await mmaPeak(gpu, new Kernels(gpu.device), "named")).tops.toFixed(1)} TOP/s`);
 * ```
 */
import type { Gpu } from "../src/gpu/device.ts";
import { storageBuffer } from "../src/gpu/buffers.ts";
import type { Kernels } from "../src/gpu/shaders.ts";
import { Params, Program } from "../src/engine/program.ts";
import { timeReplays } from "./kernel_timing.ts";

export interface MmaPeak {
  /** Measured int8 TOP/s (2 per multiply-add). */
  tops: number;
  /** GPU ms of one probe dispatch. */
  ms: number;
}

export async function mmaPeak(gpu: Gpu, k: Kernels, shape: "named" | "array", trials = 3): Promise<MmaPeak> {
  const groups = 132 * 16, iters = 2048;
  const out = storageBuffer(gpu.device, groups * 4 * 8 * 256 * 4, "mma_probe.out");
  const prog = new Program(gpu.device);
  const pipe = k.pipeline("mma_probe", { VARIANT: shape === "named" ? 0 : 1 });
  prog.dispatch(pipe, k.bind(pipe, [out, prog.uniform(new Params().u(iters).bytes())]), groups);
  try {
    const t = await timeReplays(gpu.device, prog, out, { trials, budgetMs: 100, label: "mma_probe" });
    const ops = groups * 4 * iters * 8 * 16 * 16 * 32 * 2;
    return { tops: ops / (t.ms * 1e-3) / 1e12, ms: t.ms };
  } finally {
    prog.destroy();
    out.destroy();
  }
}
