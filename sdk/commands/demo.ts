/**
 * `ape demo`: the README's main job. Until the default model lands it is a smoke run of the whole
 * stack: load the wasm module, tokenize a sentence, run a WGSL kernel on the adapter, print both.
 */
import { wasm } from "../../src/wasm/module.ts";
import { getGpu } from "../../src/gpu/device.ts";
import { Kernels } from "../../src/gpu/shaders.ts";
import { readBuffer, uploadF32, Usage } from "../../src/gpu/buffers.ts";
import { runtimeName } from "../../src/runtime.ts";

export async function run(_args: string[]): Promise<number> {
  console.log(`runtime: ${runtimeName()}; wasm module ${wasm().wasmVersion()}`);
  const gpu = await getGpu();
  console.log(`adapter: ${gpu.description} (shader-f16: ${gpu.hasF16}, max binding ${gpu.limits.maxStorageBufferBindingSize} B)`);
  const k = new Kernels(gpu.device);
  const a = new Float32Array([1, 2, 3, 4]), b = new Float32Array([10, 20, 30, 40]);
  const ga = uploadF32(gpu.device, a), gb = uploadF32(gpu.device, b);
  const params = gpu.device.createBuffer({ size: 16, usage: Usage.UNIFORM | Usage.COPY_DST });
  gpu.device.queue.writeBuffer(params, 0, new Uint32Array([4, 0, 0, 0]));
  const p = k.pipeline("add");
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(p);
  pass.setBindGroup(0, k.bind(p, [ga, gb, params]));
  pass.dispatchWorkgroups(1);
  pass.end();
  gpu.device.queue.submit([enc.finish()]);
  console.log(`add.wgsl: [1,2,3,4] + [10,20,30,40] = [${Array.from(new Float32Array(await readBuffer(gpu.device, ga, 16)))}]`);
  return 0;
}
