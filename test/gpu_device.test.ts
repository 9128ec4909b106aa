import { describe, expect, it } from "vitest";
import { runtimeName } from "../src/runtime.ts";
import { getGpu } from "../src/gpu/device.ts";
import { Kernels, shaderSource } from "../src/gpu/shaders.ts";
import { readdirSync } from "node:fs";
import { readBuffer, uploadF32, Usage } from "../src/gpu/buffers.ts";

describe(`GPU device on ${runtimeName()}`, () => {
  it("finds an adapter with its real limits", async () => {
    const gpu = await getGpu();
    expect(gpu.description.length).toBeGreaterThan(0);
    // Real limits were requested: lavapipe and real GPUs offer >= 128 MiB bindings (default is 128 MiB too,
    // but maxBufferSize default is 256 MiB; lavapipe offers far more).
    expect(gpu.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 1024 * 1024);
    expect(gpu.limits.maxBufferSize).toBeGreaterThanOrEqual(gpu.limits.maxStorageBufferBindingSize);
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
      const module = gpu.device.createShaderModule({ code: shaderSource(name) });
      const info = await module.getCompilationInfo();
      const errors = info.messages.filter((m) => m.type === "error").map((m) => `${m.lineNum}:${m.linePos} ${m.message}`);
      expect(errors, name).toEqual([]);
      gpu.device.pushErrorScope("validation");
      k.pipeline(name);
      expect(await gpu.device.popErrorScope(), name).toBeNull();
    }
  });
});
