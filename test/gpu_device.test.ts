import { describe, expect, it } from "vitest";
import { runtimeName } from "../src/runtime.ts";
import { getGpu } from "../src/gpu/device.ts";
import { foldsYIntoZ, Kernels, shaderSource, usesSubgroupMatrix } from "../src/gpu/shaders.ts";
import { Program } from "../src/engine/program.ts";
import { CapacityError, GpuUnavailableError } from "../src/errors.ts";
import { readdirSync } from "node:fs";
import { readBuffer, uploadF32, Usage } from "../src/gpu/buffers.ts";

describe(`GPU device on ${runtimeName()}`, () => {
  it("finds an adapter with its real limits", async () => {
    const gpu = await getGpu();
    expect(gpu.description.length).toBeGreaterThan(0);
    // the device runs with the adapter's own limits, not WebGPU's defaults (e.g. 16 KiB of workgroup
    // storage where lavapipe offers 32 KiB and the H200 48 KiB)
    const a = gpu.adapter.limits as unknown as Record<string, number>;
    for (const [key, value] of Object.entries(gpu.limits)) expect(value, key).toBe(a[key]);
    for (const [key, value] of Object.entries(gpu.limits)) expect((gpu.device.limits as unknown as Record<string, number>)[key], key).toBe(value);
    expect(gpu.limits.maxComputeWorkgroupStorageSize).toBeGreaterThan(16384); // lavapipe 32 KiB; a default device has 16 KiB
  });

  it("runs the add kernel and matches a CPU reference on random input", async () => {
    const gpu = await getGpu();
    const k = new Kernels(gpu.device);
    const n = 100_003;
    const a = new Float32Array(n), b = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      a[i] = Math.random() * 2 - 1;
      b[i] = Math.random() * 2 - 1;
    }
    const ga = uploadF32(gpu.device, a), gb = uploadF32(gpu.device, b);
    const params = gpu.device.createBuffer({ size: 16, usage: Usage.UNIFORM | Usage.COPY_DST });
    gpu.device.queue.writeBuffer(params, 0, new Uint32Array([n, 0, 0, 0]));
    const p = k.pipeline("add");
    const enc = gpu.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(p);
    pass.setBindGroup(0, k.bind(p, [ga, gb, params]));
    pass.dispatchWorkgroups(Math.ceil(n / 256));
    pass.end();
    gpu.device.queue.submit([enc.finish()]);
    const out = new Float32Array(await readBuffer(gpu.device, ga, n * 4));
    for (let i = 0; i < n; i++) expect(out[i]).toBe(Math.fround(a[i] + b[i]));
    for (const buf of [ga, gb, params]) buf.destroy();
  });

  it("every kernel in shaders/ compiles without errors and builds a pipeline", async () => {
    // a kernel that fails to compile would otherwise surface only as zeros (an invalid pipeline)
    const gpu = await getGpu();
    const k = new Kernels(gpu.device, gpu.hasF16);
    const names = readdirSync(new URL("../shaders/", import.meta.url)).filter((f) => f.endsWith(".wgsl")).map((f) => f.slice(0, -5));
    expect(names.length).toBeGreaterThan(40);
    for (const name of names) {
      if (name.endsWith("_f16c") && !gpu.hasF16) continue;
      if (usesSubgroupMatrix(shaderSource(name)) && !gpu.hasInt8Matrix) { // refused by name, never a broken pipeline
        expect(() => k.pipeline(name), name).toThrow(GpuUnavailableError);
        continue;
      }
      const module = gpu.device.createShaderModule({ code: shaderSource(name) });
      const info = await module.getCompilationInfo();
      const errors = info.messages.filter((m) => m.type === "error").map((m) => `${m.lineNum}:${m.linePos} ${m.message}`);
      expect(errors, name).toEqual([]);
      gpu.device.pushErrorScope("validation");
      k.pipeline(name);
      expect(await gpu.device.popErrorScope(), name).toBeNull();
    }
  });

  it("Program.dispatch folds grid y > 65535 into z only for kernels that read their row from z", async () => {
    const gpu = await getGpu();
    const k = new Kernels(gpu.device);
    const folds = ["rmsnorm", "rmsnorm_copy", "attention_combine", "attention"].map((n) => k.pipeline(n));
    const plain = ["swiglu", "embed", "add"].map((n) => k.pipeline(n));
    for (const p of folds) expect(foldsYIntoZ(p), p.label).toBe(true);
    for (const p of plain) expect(foldsYIntoZ(p), p.label).toBe(false);
    const bind = {} as GPUBindGroup; // never submitted
    const prog = new Program(gpu.device);
    prog.dispatch(folds[0], bind, 2, 70_000);
    expect(prog.steps[0].grid).toEqual([2, 65535, 2]);
    prog.dispatch(folds[0], bind, 2, 65535);
    expect(prog.steps[1].grid).toEqual([2, 65535, 1]);
    expect(() => prog.dispatch(plain[0], bind, 2, 70_000)).toThrow(CapacityError);
    expect(() => prog.dispatch(plain[0], bind, 2, 70_000)).toThrow(/kernel 'swiglu'.*does not fold y into z/);
    expect(() => prog.dispatch(folds[0], bind, 2, 70_000, 3)).toThrow(/folds y into z only when z = 1/);
    expect(() => prog.dispatch(folds[0], bind, 70_000, 1)).toThrow(CapacityError);
  });
});
