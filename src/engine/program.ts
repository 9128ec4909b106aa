/**
 * A Program is a recorded list of compute dispatches (pipeline, bind group, grid) that can be encoded
 * into a compute pass any number of times: the decode loop records one step once and replays it for
 * every token, changing only the small state buffers between submits.
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { readBuffer, uploadF32 } from "../gpu/buffers.ts";
 * import { Kernels } from "../gpu/shaders.ts";
 * import { Params, Program } from "./program.ts";
 * const { device } = await getGpu();
 * const kernels = new Kernels(device);
 * const a = uploadF32(device, new Float32Array([1, 2, 3])), b = uploadF32(device, new Float32Array([10, 20, 30]));
 * const prog = new Program(device);
 * const pipe = kernels.pipeline("add"); // a[i] += b[i]
 * prog.dispatch(pipe, kernels.bind(pipe, [a, b, prog.uniform(new Params().u(3).bytes())]), 1);
 * prog.submit(); // one compute pass; a recorded program can be submitted again
 * console.log(new Float32Array(await readBuffer(device, a, 12))); // [11, 22, 33]
 * prog.destroy();
 * ```
 */
import { storageBuffer, Usage } from "../gpu/buffers.ts";
import { deviceErrors } from "../gpu/device.ts";

/** Bytes of one page of a program's uniforms (256 slots at a 256-byte offset alignment). */
const UNIFORM_PAGE = 64 * 1024;
import { foldsYIntoZ } from "../gpu/shaders.ts";
import { CapacityError } from "../errors.ts";

export class Program {
  readonly steps: { pipeline: GPUComputePipeline; bind: GPUBindGroup; grid: [number, number, number] }[] = [];
  readonly owned: GPUBuffer[] = [];
  constructor(readonly device: GPUDevice) {}

  dispatch(pipeline: GPUComputePipeline, bind: GPUBindGroup, x: number, y = 1, z = 1): void {
    // WebGPU caps each grid dimension (65535): y is folded into z only for kernels that read their row
    // as wg.y + wg.z * 65535 (foldsYIntoZ); any other grid past the cap is refused, never clipped
    const name = pipeline.label || "unlabeled";
    if (x > 65535 || z > 65535) throw new CapacityError(`kernel '${name}': a dispatch grid of ${x} x ${y} x ${z} exceeds WebGPU's 65535 per dimension`);
    if (y > 65535) {
      if (z !== 1 || !foldsYIntoZ(pipeline) || y > 65535 * 65535) {
        throw new CapacityError(`kernel '${name}': a dispatch grid of ${x} x ${y} x ${z} exceeds WebGPU's 65535 per dimension (the kernel ${foldsYIntoZ(pipeline) ? "folds y into z only when z = 1" : "does not fold y into z"})`);
      }
      z = Math.ceil(y / 65535);
      y = 65535;
    }
    this.steps.push({ pipeline, bind, grid: [x, y, z] });
  }

  /**
   * A uniform binding holding `words` (u32 words; floats bit-cast by the caller), owned by this program.
   * Every uniform of a program lives in a few shared pages (64 KiB, slots at the device's
   * minUniformBufferOffsetAlignment), written while mapped and unmapped before the first encode: one
   * buffer per page instead of one per dispatch (creating a buffer costs tens of microseconds on the
   * host, which a 200-dispatch Forward paid at every recording).
   */
  uniform(words: ArrayBuffer): GPUBufferBinding {
    const size = Math.max(16, Math.ceil(words.byteLength / 16) * 16);
    const align = this.device.limits.minUniformBufferOffsetAlignment;
    let page = this.#page;
    if (!page || page.used + size > page.data.byteLength) {
      page = this.#page = this.#newPage(Math.max(UNIFORM_PAGE, size));
    }
    const offset = page.used;
    new Uint8Array(page.data, offset, words.byteLength).set(new Uint8Array(words));
    page.used = Math.ceil((offset + size) / align) * align;
    return { buffer: page.buffer, offset, size };
  }

  #page?: { buffer: GPUBuffer; data: ArrayBuffer; used: number };
  #mapped: GPUBuffer[] = [];

  #newPage(bytes: number) {
    const buffer = this.device.createBuffer({ size: bytes, usage: Usage.UNIFORM | Usage.COPY_DST, mappedAtCreation: true, label: "program.uniforms" });
    this.owned.push(buffer);
    this.#mapped.push(buffer);
    return { buffer, data: buffer.getMappedRange(), used: 0 };
  }

  /**
   * Unmaps the uniform pages written so far: done by encode(); a caller that encodes `steps` itself
   * (bench/decode_breakdown.ts) calls it first (a submit must not use a mapped buffer).
   */
  seal(): void {
    for (const b of this.#mapped) b.unmap();
    this.#mapped = [];
    this.#page = undefined;
  }

  /** A storage buffer of `bytes` owned by this program (destroyed with it): a kernel's scratch. */
  scratch(bytes: number, label?: string): GPUBuffer {
    const b = storageBuffer(this.device, bytes, label);
    this.owned.push(b);
    return b;
  }

  encode(pass: GPUComputePassEncoder, from = 0, to = this.steps.length): void {
    if (this.#mapped.length) this.seal();
    let current: GPUComputePipeline | undefined;
    for (let i = from; i < to; i++) {
      const s = this.steps[i];
      if (s.pipeline !== current) pass.setPipeline((current = s.pipeline)); // each call costs a few us in JS
      pass.setBindGroup(0, s.bind);
      pass.dispatchWorkgroups(s.grid[0], s.grid[1], s.grid[2]);
    }
  }

  /** Steps already submitted by submitRest (or submit). */
  #sent = 0;

  /**
   * Encodes the whole program in one compute pass and submits it. On a lost device it throws
   * GpuDeviceLostError instead (WebGPU would drop the work silently).
   */
  submit(): void {
    this.#submit(0, this.steps.length);
  }

  /**
   * Submits the steps recorded since the last submitRest (all of them the first time), so that the GPU runs the
   * first part of a program while the host still records the rest (Forward's streamed recording); a later submit()
   * replays the whole program. Nothing to submit: does nothing.
   */
  submitRest(): void {
    if (this.#sent < this.steps.length) this.#submit(this.#sent, this.steps.length);
  }

  #submit(from: number, to: number): void {
    deviceErrors(this.device).throwIfLost();
    const enc = this.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    this.encode(pass, from, to);
    pass.end();
    this.device.queue.submit([enc.finish()]);
    this.#sent = Math.max(this.#sent, to);
  }

  destroy(): void {
    for (const b of this.owned) b.destroy();
  }
}

/** Packs kernel parameters: integers as u32, values marked with f() as f32. */
export class Params {
  #words: number[] = [];
  #floats = new Set<number>();
  u(...v: number[]): this {
    for (const x of v) this.#words.push(x >>> 0);
    return this;
  }
  f(...v: number[]): this {
    for (const x of v) {
      this.#floats.add(this.#words.length);
      this.#words.push(x);
    }
    return this;
  }
  bytes(): ArrayBuffer {
    const buf = new ArrayBuffer(this.#words.length * 4);
    const u = new Uint32Array(buf), f = new Float32Array(buf);
    this.#words.forEach((w, i) => (this.#floats.has(i) ? (f[i] = w) : (u[i] = w)));
    return buf;
  }
}
