/**
 * Where a decode step's time goes, for `ape bench engine`: the JavaScript cost of encoding one step's
 * dispatches, the cost of submitting it, and the GPU's own time for a step (the same step replayed
 * `reps` times in one submit, so no host round trip or encoding sits between them). When the GPU time
 * is far below the measured per-token time, decode is bound by the host, not by memory bandwidth.
 *
 * @example
 * ```ts
 * import { decodeBreakdown } from "./decode_breakdown.ts";
 * // const b = await decodeBreakdown(engine); console.log(b.gpuMs, b.encodeMs, b.dispatches);
 * ```
 */
import type { Engine } from "../src/engine/engine.ts";
import { Forward } from "../src/engine/forward.ts";
import { readBuffer } from "../src/gpu/buffers.ts";
import { Sampler } from "../src/engine/sampler.ts";

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
  kernels: { name: string; dispatches: number; ms: number }[];
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
    // each kernel's dispatches replayed `reps` times in one pass (a pass of 1 repetition subtracted)
    const timeReplay = async (steps: typeof fwd.program.steps, n: number) => {
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
      await readBuffer(dev, fwd.logits, 4);
      return performance.now() - t0;
    };
    const byKernel = new Map<string, typeof fwd.program.steps>();
    for (const s of fwd.program.steps) {
      const key = `${s.pipeline.label}[${s.grid.filter((g, i) => i === 0 || g > 1).join("x")}]`; // the grid tells projections apart
      const list = byKernel.get(key) ?? [];
      list.push(s);
      byKernel.set(key, list);
    }
    const kernels: DecodeBreakdown["kernels"] = [];
    for (const [name, steps] of byKernel) {
      await timeReplay(steps, 1);
      const ms = ((await timeReplay(steps, reps + 1)) - (await timeReplay(steps, 1))) / reps;
      kernels.push({ name, dispatches: steps.length, ms });
    }
    const sampleMs = kernels.find((k) => k.name.startsWith("sample["))?.ms ?? 0;
    return { dispatches: fwd.program.steps.length, encodeMs, submitMs, gpuMs, sampleMs, kernels };
  } finally {
    sampler.destroy();
    fwd.destroy();
    engine.pool.release(block);
  }
}
