/**
 * Where a decode step's time goes, for `ape bench engine`: the JavaScript cost of encoding one step's
 * dispatches, the cost of submitting it, and the GPU's own time for a step (the same step replayed
 * `reps` times in one submit, so no host round trip or encoding sits between them). When the GPU time
 * is far below the measured per-token time, decode is bound by the host, not by memory bandwidth.
 *
 * @example
 * ```ts
 * import { decodeBreakdown, replayBreakdown } from "./decode_breakdown.ts";
 * // const b = await decodeBreakdown(engine); console.log(b.gpuMs, b.encodeMs, b.dispatches);
 * // const r = await replayBreakdown(device, forward.program, forward.logits); // any recorded Forward
 * ```
 *
 * `replayBreakdown` does the same for any recorded program (a query prefill, an APE decode step with
 * contexts attached): the whole program's GPU time, and each kernel's, replayed back to back.
 */
import type { Engine } from "../src/engine/engine.ts";
import { Forward } from "../src/engine/forward.ts";
import { readBuffer } from "../src/gpu/buffers.ts";
import { Sampler } from "../src/engine/sampler.ts";
import type { Program } from "../src/engine/program.ts";

export interface DecodeBreakdown {
  /** Dispatches in one decode step (forward pass and LM head). */
  dispatches: number;
  /** Host time to encode one step's command buffer. */
  encodeMs: number;
  /** Host time of one queue.submit of a step. */
  submitMs: number;
  /** GPU time of one step (forward pass, LM head and greedy sampling), replayed back to back in one submit. */
  gpuMs: number;
  /** GPU time of the sampling dispatch alone (greedy, repetition penalty 1.1), replayed the same way. */
  sampleMs: number;
  /** Per kernel and grid (`name[grid]`): its dispatches in one step and their GPU time per step (replayed alone). */
  kernels: KernelTime[];
}

/** One kernel (name and grid) of a program: its dispatches per replay and their GPU time per replay. */
export interface KernelTime {
  name: string;
  dispatches: number;
  ms: number;
}

export interface ReplayBreakdown {
  dispatches: number;
  /** GPU time of one replay of the whole program (replays back to back in one pass). */
  gpuMs: number;
  /** Replays per measurement. */
  reps: number;
  /** Per kernel and grid, in program order. */
  kernels: KernelTime[];
}

/**
 * GPU time of `program` and of each of its kernels: the dispatches replayed `reps` + 1 times in one pass
 * minus a pass of one replay, over `reps`, so the submit and readback round trip cancel. Without
 * `reps`, it is chosen so that a measurement of the whole program takes about `budgetMs` of GPU time
 * (2 to 32 replays): long prefills stay affordable. `probe` is any buffer the program writes, read
 * back to wait for the GPU. Replaying a forward pass rewrites the same KV slots with the same values.
 */
export async function replayBreakdown(
  dev: GPUDevice, program: Program, probe: GPUBuffer, opts: { reps?: number; budgetMs?: number } = {},
): Promise<ReplayBreakdown> {
  const timeReplay = async (steps: Program["steps"], n: number) => {
    const enc = dev.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (let i = 0; i < n; i++) {
      for (const s of steps) {
        pass.setPipeline(s.pipeline);
        pass.setBindGroup(0, s.bind);
        pass.dispatchWorkgroups(...s.grid);
      }
    }
    pass.end();
    const c = enc.finish();
    const t0 = performance.now();
    dev.queue.submit([c]);
    await readBuffer(dev, probe, 4);
    return performance.now() - t0;
  };
  program.seal(); // its uniforms unmapped: the steps are encoded here, not through program.encode
  const all = program.steps;
  await timeReplay(all, 1); // warm-up
  let reps = opts.reps, gpuMs: number | undefined;
  if (reps === undefined) {
    const one = await timeReplay(all, 1), three = await timeReplay(all, 3);
    const estimate = Math.max((three - one) / 2, 1e-3);
    reps = Math.min(32, Math.max(2, Math.round((opts.budgetMs ?? 300) / estimate)));
    if (reps === 2) gpuMs = (three - one) / 2; // a long program: that estimate is the measurement
  }
  gpuMs ??= ((await timeReplay(all, reps + 1)) - (await timeReplay(all, 1))) / reps;
  const byKernel = new Map<string, Program["steps"]>();
  for (const s of all) {
    const key = `${s.pipeline.label}[${s.grid.filter((g, i) => i === 0 || g > 1).join("x")}]`; // the grid tells projections apart
    const list = byKernel.get(key) ?? [];
    list.push(s);
    byKernel.set(key, list);
  }
  const kernels: KernelTime[] = [];
  for (const [name, steps] of byKernel) {
    await timeReplay(steps, 1);
    const ms = ((await timeReplay(steps, reps + 1)) - (await timeReplay(steps, 1))) / reps;
    kernels.push({ name, dispatches: steps.length, ms });
  }
  return { dispatches: all.length, gpuMs, reps, kernels };
}

export async function decodeBreakdown(engine: Engine, contextTokens = 64, reps = 32): Promise<DecodeBreakdown> {
  const dev = engine.model.gpu.device;
  const block = engine.pool.allocate(contextTokens + 1, 0);
  block.tokens = contextTokens; // attend a context of this many (uninitialised) keys, as a decode step would
  const fwd = new Forward(engine.model, engine.pool, 1, {
    groups: [{ rows: 1, write: block, writeAt: contextTokens, plain: [block] }], logits: { from: 0, count: 1 },
  });
  const sampler = new Sampler(engine.model, { repetitionPenalty: 1.1 }, 1, Uint32Array.from({ length: 64 }, (_, i) => i * 997));
  sampler.record(fwd.program, fwd.logits);
  try {
    fwd.setIds(new Uint32Array([1]));
    const encodeOne = () => {
      const enc = dev.createCommandEncoder();
      const pass = enc.beginComputePass();
      fwd.program.encode(pass);
      pass.end();
      return enc.finish();
    };
    // warm-up (pipelines, first submit)
    dev.queue.submit([encodeOne()]);
    await readBuffer(dev, fwd.logits, 4);

    let t = performance.now();
    const cmds = Array.from({ length: reps }, encodeOne);
    const encodeMs = (performance.now() - t) / reps;
    t = performance.now();
    for (const c of cmds) dev.queue.submit([c]);
    const submitMs = (performance.now() - t) / reps;
    await readBuffer(dev, fwd.logits, 4);

    // GPU time: reps steps in one command buffer; minus one step's round trip measured alone
    const enc = dev.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (let i = 0; i < reps; i++) fwd.program.encode(pass);
    pass.end();
    const many = enc.finish();
    t = performance.now();
    dev.queue.submit([encodeOne()]);
    await readBuffer(dev, fwd.logits, 4);
    const single = performance.now() - t;
    t = performance.now();
    dev.queue.submit([many]);
    await readBuffer(dev, fwd.logits, 4);
    const gpuMs = (performance.now() - t - single) / (reps - 1);
    const { kernels } = await replayBreakdown(dev, fwd.program, fwd.logits, { reps });
    const sampleMs = kernels.find((k) => k.name.startsWith("sample["))?.ms ?? 0;
    return { dispatches: fwd.program.steps.length, encodeMs, submitMs, gpuMs, sampleMs, kernels };
  } finally {
    sampler.destroy();
    fwd.destroy();
    engine.pool.release(block);
  }
}
