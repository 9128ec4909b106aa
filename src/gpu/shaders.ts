/**
 * Loads WGSL kernels from `shaders/` (one kernel per file; shared pieces in `shaders/include/`) and caches
 * compiled pipelines.
 * Kernels are plain files, never strings assembled in TypeScript; per-use specialisation goes
 * through WGSL `override` constants. Kernels that `enable f16;` (the f16-compute `*_f16c` ones) compile
 * only on a device created with the `shader-f16` feature (`hasF16`), and those that enable
 * `chromium_experimental_subgroup_matrix` (matmul_i8) only on a device that has it. Loops a kernel marks
 * `//#unroll` are unrolled in the source on GPUs (unroll.ts: Deno's wgpu would leave them loops that
 * drivers do not unroll, and the private arrays they index in local memory; Dawn's kernels gain too, e.g.
 * the f16 prefill matmuls 22-24 -> 30 TFLOP/s on the H200). CPU adapters get them as written: lavapipe's
 * LLVM unrolls them itself, and takes twice as long or more to compile the unrolled text.
 *
 * @example
 * ```ts
 * import { getGpu } from "./device.ts";
 * import { Kernels } from "./shaders.ts";
 * const k = new Kernels((await getGpu()).device);
 * const pipeline = k.pipeline("add");
 * ```
 */
import { readFileSync } from "node:fs";
import { CapacityError, GpuUnavailableError } from "../errors.ts";
import { bufferLimits } from "./device.ts";
import { unrollLoops } from "./unroll.ts";

const UNIFORM_USAGE = 0x40;

const SHADER_DIR = new URL("../../shaders/", import.meta.url);
const sources = new Map<string, string>();
const includes = new Map<string, string>(); // shaders/include/ files, read once
const layouts = new WeakMap<GPUComputePipeline, GPUBindGroupLayout>(); // each pipeline's group 0, asked once

/**
 * The WGSL source of `shaders/<name>.wgsl`, with each `//#include <file>.wgsl` line replaced by
 * `shaders/include/<file>.wgsl` (code several kernels share: the matvec input stage, the GGUF block
 * decoders, the bodies the block formats' kernels have in common).
 */
export function shaderSource(name: string): string {
  let src = sources.get(name);
  if (src === undefined) {
    src = expandIncludes(readFileSync(new URL(`${name}.wgsl`, SHADER_DIR), "utf8"), name, []);
    sources.set(name, src);
  }
  return src;
}

/** Splices `shaders/include/<file>` for every `//#include <file>` line, recursively (each file once per kernel). */
function expandIncludes(code: string, from: string, seen: string[]): string {
  return code.replace(/^\/\/#include ([\w.]+\.wgsl)$/gm, (_, file: string) => {
    if (seen.includes(file)) throw new Error(`shaders: ${from} includes ${file} twice (or in a cycle)`);
    seen.push(file);
    let text = includes.get(file);
    if (text === undefined) includes.set(file, (text = readFileSync(new URL(`include/${file}`, SHADER_DIR), "utf8")));
    return expandIncludes(text, file, seen);
  });
}

/** Whether a kernel's source enables Dawn's subgroup matrices (matmul_i8: compiles only where the device has them). */
export function usesSubgroupMatrix(code: string): boolean {
  return /^\s*enable\s+chromium_experimental_subgroup_matrix\s*;/m.test(code);
}

/** Pipelines whose kernel folds grid y into z (reads its row as `wg.y + wg.z * 65535u`). */
const FOLDS_Y = new WeakSet<GPUComputePipeline>();

/** Whether `pipeline`'s kernel reads rows past 65535 from z (so Program.dispatch may fold y into z). */
export function foldsYIntoZ(pipeline: GPUComputePipeline): boolean {
  return FOLDS_Y.has(pipeline);
}

/**
 * Whether kernels compiled for `gpu` have their `//#unroll` loops unrolled: on GPUs under every runtime, not on
 * CPU adapters; `APEKIT_UNROLL=1` or `0` decides instead (tests and benchmarks). Measured on the H200
 * (bench/results-h200-engine.txt run 17), unrolled vs as written: Deno f16 prefill 6,241 -> 9,823 tokens/s at 2K
 * (before the unrolled tilings), Bun (Dawn) f32 compute 10,079 -> 12,445; decode unchanged (802-822 tok/s).
 */
export function unrollsLoops(gpu: { isCpu: boolean }): boolean {
  const env = process.env.APEKIT_UNROLL;
  return env === "1" ? true : env === "0" ? false : !gpu.isCpu;
}

/** Compiles each (kernel, constants) pair once per device. */
export class Kernels {
  #pipelines = new Map<string, GPUComputePipeline>();
  /** `unroll`: unroll the kernels' `//#unroll` loops (callers pass unrollsLoops(gpu)). */
  constructor(readonly device: GPUDevice, readonly hasF16 = false, readonly unroll = false) {}

  pipeline(name: string, constants: Record<string, number> = {}, entryPoint = "main"): GPUComputePipeline {
    const key = `${name}:${entryPoint}:${JSON.stringify(constants)}`;
    let p = this.#pipelines.get(key);
    if (!p) {
      const code = this.unroll ? unrollLoops(shaderSource(name), constants, name) : shaderSource(name);
      if (!this.hasF16 && /^\s*enable\s+f16\s*;/m.test(code)) {
        throw new GpuUnavailableError(`kernel '${name}' computes in f16 and needs the WebGPU feature 'shader-f16', which this device lacks`);
      }
      if (usesSubgroupMatrix(code) && !this.device.features.has("chromium-experimental-subgroup-matrix" as GPUFeatureName)) {
        throw new GpuUnavailableError(`kernel '${name}' multiplies on subgroup matrices and needs the WebGPU feature 'chromium-experimental-subgroup-matrix' (Dawn), which this device lacks`);
      }
      const module = this.device.createShaderModule({ label: name, code });
      p = this.device.createComputePipeline({
        label: name,
        layout: "auto",
        compute: { module, entryPoint, constants },
      });
      if (/\.y \+ \w+\.z \* 65535u/.test(code)) FOLDS_Y.add(p);
      this.#pipelines.set(key, p);
    }
    return p;
  }

  /** Whether kernel `name` has been compiled on this device (with any constants / entry point). */
  has(name: string): boolean {
    for (const key of this.#pipelines.keys()) if (key.startsWith(`${name}:`)) return true;
    return false;
  }

  /**
   * A bind group for `pipeline` with the buffers bound at 0..n-1 of group 0. A binding larger than the
   * device allows (maxStorageBufferBindingSize, or maxUniformBufferBindingSize for uniforms) is refused
   * with CapacityError naming the kernel, buffer and sizes, before WebGPU would reject it.
   */
  bind(pipeline: GPUComputePipeline, buffers: (GPUBuffer | GPUBufferBinding)[]): GPUBindGroup {
    const limits = bufferLimits(this.device);
    const entries = buffers.map((b, i) => {
      const resource: GPUBufferBinding = "buffer" in b ? b : { buffer: b };
      const size = resource.size ?? resource.buffer.size - (resource.offset ?? 0);
      const uniform = (resource.buffer.usage & UNIFORM_USAGE) !== 0;
      const limit = uniform ? limits.maxUniformBufferBindingSize : limits.maxStorageBufferBindingSize;
      if (size > limit) {
        throw new CapacityError(
          `kernel '${pipeline.label || "unlabeled"}' binding ${i}: buffer '${resource.buffer.label || "unlabeled"}' binds ${size} bytes, ` +
            `over the device's ${uniform ? "maxUniformBufferBindingSize" : "maxStorageBufferBindingSize"} (${limit} bytes)`,
        );
      }
      return { binding: i, resource };
    });
    let layout = layouts.get(pipeline);
    if (!layout) layouts.set(pipeline, (layout = pipeline.getBindGroupLayout(0)));
    return this.device.createBindGroup({ layout, entries });
  }
}
