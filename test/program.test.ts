// Program's uniform pages (src/engine/program.ts): every dispatch's parameters land in shared, mapped
// pages that are unmapped before the first encode. Checked with a kernel whose result depends on each
// dispatch's own parameters: enough dispatches to fill several pages, a program that records more after
// it was submitted (a new page, sealed at the next encode), and replays of the same program.
import { describe, expect, it } from "vitest";
import { getGpu } from "../src/gpu/device.ts";
import { readBuffer, storageBuffer, uploadF32 } from "../src/gpu/buffers.ts";
import { Kernels } from "../src/gpu/shaders.ts";
import { Params, Program } from "../src/engine/program.ts";
import { runtimeName } from "../src/runtime.ts";

describe(`Program uniform pages on ${runtimeName()}`, () => {
  it("each dispatch reads its own parameters across several pages, also after more are recorded and on replay", async () => {
    const gpu = await getGpu();
    const dev = gpu.device;
    const k = new Kernels(dev);
    const pipe = k.pipeline("add"); // a[i] += b[i] for i < n
    // slots per 64 KiB page at the device's offset alignment: three pages' worth of dispatches
    const perPage = (64 * 1024) / dev.limits.minUniformBufferOffsetAlignment;
    const count = 3 * perPage + 5;
    const n = 64;
    const a = storageBuffer(dev, n * 4), b = uploadF32(dev, new Float32Array(n).fill(1));
    const prog = new Program(dev);
    try {
      // dispatch d adds 1 to elements [0, 1 + d % n): element j gains one per dispatch with d % n >= j
      const record = (from: number, to: number) => {
        for (let d = from; d < to; d++) prog.dispatch(pipe, k.bind(pipe, [a, b, prog.uniform(new Params().u(1 + (d % n)).bytes())]), 1);
      };
      const expected = (runs: number[]) => {
        const want = new Float32Array(n);
        for (const upTo of runs) for (let d = 0; d < upTo; d++) for (let j = 0; j <= d % n; j++) want[j] += 1;
        return want;
      };
      record(0, count);
      dev.pushErrorScope("validation");
      prog.submit();
      expect(await dev.popErrorScope()).toBeNull();
      expect(Array.from(new Float32Array(await readBuffer(dev, a, n * 4)))).toEqual(Array.from(expected([count])));
      expect(prog.steps.length).toBe(count);
      // more dispatches after a submit: a new page, unmapped at the next encode; the whole program replays
      record(count, count + 7);
      dev.pushErrorScope("validation");
      prog.submit();
      expect(await dev.popErrorScope()).toBeNull();
      expect(Array.from(new Float32Array(await readBuffer(dev, a, n * 4)))).toEqual(Array.from(expected([count, count + 7])));
      // the pages are buffers the program owns: a handful, not one per dispatch
      const pages = prog.owned.filter((buf) => buf.label === "program.uniforms").length;
      expect(pages).toBeGreaterThanOrEqual(4);
      expect(pages).toBeLessThanOrEqual(5);
    } finally {
      prog.destroy();
      a.destroy();
      b.destroy();
    }
  });
});
