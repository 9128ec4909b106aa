/**
 * GPU time of one recorded program, for the kernel benches (`ape bench attention`, `attention-decode`):
 * the program replayed `reps` + 1 times in one compute pass and one submit, minus a submit of one
 * replay (so the submit and readback round trip cancel), over `reps`; best of `trials`.
 *
 * @example
 * ```ts
 * import { timeReplays } from "./kernel_timing.ts";
 * // const { ms, reps } = await timeReplays(device, prog, lse, { trials: 3, budgetMs: 150 });
 * ```
 */
import { readBuffer } from "../src/gpu/buffers.ts";
import type { Program } from "../src/engine/program.ts";

export interface ReplayTiming {
  /** GPU ms of one replay (best of the trials). */
  ms: number;
  /** Replays per measurement. */
  reps: number;
}

/**
 * Runs `prog` once under a validation scope (a validation error is thrown, after `label: ` when given),
 * then times it. `reps`, when not given, is chosen from a first estimate (5 replays minus 1) so that a
 * measurement takes about `budgetMs` of GPU time (2 to `maxReps` replays). `probe` is any buffer the
 * program writes, read back to wait for the GPU.
 */
export async function timeReplays(
  dev: GPUDevice, prog: Program, probe: GPUBuffer,
  opts: { trials: number; reps?: number; budgetMs?: number; maxReps?: number; label?: string },
): Promise<ReplayTiming> {
  const timed = async (count: number) => {
    const enc = dev.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (let r = 0; r < count; r++) prog.encode(pass);
    pass.end();
    const t0 = performance.now();
    dev.queue.submit([enc.finish()]);
    await readBuffer(dev, probe, 4);
    return performance.now() - t0;
  };
  dev.pushErrorScope("validation");
  await timed(1);
  const error = await dev.popErrorScope();
  if (error) throw new Error(opts.label ? `${opts.label}: ${error.message}` : error.message);
  let reps = opts.reps;
  if (reps === undefined) {
    const est = Math.max(1e-3, ((await timed(5)) - (await timed(1))) / 4);
    reps = Math.min(opts.maxReps ?? 2000, Math.max(2, Math.round((opts.budgetMs ?? 150) / est)));
  }
  let ms = Infinity;
  for (let i = 0; i < opts.trials; i++) {
    const one = await timed(1), many = await timed(reps + 1);
    ms = Math.min(ms, (many - one) / reps);
  }
  return { ms, reps };
}
