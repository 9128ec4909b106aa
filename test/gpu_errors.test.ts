/**
 * GPU errors are never silent: real WebGPU validation errors provoked inside and outside the engine
 * come back as typed errors from the call that caused them (Engine.run, decode, readBuffer), the engine
 * keeps working afterwards, sizes over the device's limits are refused before WebGPU sees them, and a
 * lost device makes every later call fail fast.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGpu, getGpu, typedGpuError } from "../src/gpu/device.ts";
import { readBuffer, storageBuffer, uploadBytes, uploadF32, Usage } from "../src/gpu/buffers.ts";
import { Kernels } from "../src/gpu/shaders.ts";
import { Program } from "../src/engine/program.ts";
import { buildModel, type Model } from "../src/model/model.ts";
import { Engine } from "../src/engine/engine.ts";
import { decode } from "../src/engine/generate.ts";
import { sequentialLogits } from "../src/ape/ape.ts";
import { CapacityError, GpuDeviceLostError, GpuInternalError, GpuOutOfMemoryError, GpuValidationError } from "../src/errors.ts";
import { runtimeName } from "../src/runtime.ts";
import { CpuReference } from "./reference/cpu_model.ts";
import { randomModel, relError, rng, tinyConfig } from "./reference/random_model.ts";

function argmax(a: ArrayLike<number>): number {
  let b = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[b]) b = i;
  return b;
}

/** Submits a copy out of a buffer destroyed beforehand: a real validation error, outside any scope. */
function submitDestroyed(device: GPUDevice): void {
  const gone = storageBuffer(device, 64, "gone");
  const dst = storageBuffer(device, 64, "dst");
  gone.destroy();
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(gone, 0, dst, 0, 64);
  device.queue.submit([enc.finish()]);
  dst.destroy();
}

/** Makes the next bind group the model's kernels create bind one buffer past its end (WebGPU rejects it). */
function breakNextBind(model: Model): () => number {
  const k = model.kernels;
  const bind = Kernels.prototype.bind;
  let broken = 0;
  k.bind = (pipeline, buffers) => {
    if (broken++ > 0) return bind.call(k, pipeline, buffers);
    const [first, ...rest] = buffers;
    const buffer = "buffer" in first ? first.buffer : first;
    return bind.call(k, pipeline, [{ buffer, offset: 0, size: buffer.size + 256 }, ...rest]);
  };
  return () => {
    delete (k as { bind?: unknown }).bind; // back to the prototype's
    return broken;
  };
}

describe(`GPU errors on ${runtimeName()}`, () => {
  it("an error outside any scope is thrown, typed, by the next readback, once; readbacks work again after it", async () => {
    const { device } = await getGpu();
    const data = uploadF32(device, new Float32Array([1, 2, 3, 4]), "data");
    submitDestroyed(device);
    const err = await readBuffer(device, data, 16).catch((e) => e);
    expect(err).toBeInstanceOf(GpuValidationError);
    expect(err.code).toBe("E_GPU_VALIDATION");
    expect(err.gpuMessage).toMatch(/gone/); // WebGPU's own message names the destroyed buffer
    expect(Array.from(new Float32Array(await readBuffer(device, data, 16)))).toEqual([1, 2, 3, 4]);
    data.destroy();
  });

  it("a binding over maxStorageBufferBindingSize: Kernels.bind refuses it naming buffer, size and limit; bypassing that check, WebGPU's error reaches the next readback", async () => {
    const gpu = await getGpu();
    const { device } = gpu;
    const limit = gpu.limits.maxStorageBufferBindingSize;
    if (limit + 16 > gpu.limits.maxBufferSize || limit > 512 << 20) return; // needs a cheap oversized buffer (lavapipe: 128 MiB)
    const k = new Kernels(device);
    const pipe = k.pipeline("add");
    const big = storageBuffer(device, limit + 16, "big");
    const small = storageBuffer(device, 64, "small");
    const params = device.createBuffer({ size: 16, usage: Usage.UNIFORM | Usage.COPY_DST });
    try {
      let err = (() => {
        try {
          k.bind(pipe, [big, small, params]);
        } catch (e) {
          return e as Error;
        }
      })();
      expect(err).toBeInstanceOf(CapacityError);
      expect(err!.message).toContain(`buffer 'big' binds ${limit + 16} bytes`);
      expect(err!.message).toContain(`maxStorageBufferBindingSize (${limit} bytes)`);
      // the same binding straight to WebGPU: a validation error nobody scoped, recorded and thrown at the readback
      device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: [big, small, params].map((buffer, binding) => ({ binding, resource: { buffer } })) });
      err = await readBuffer(device, small, 16).catch((e) => e);
      expect(err).toBeInstanceOf(GpuValidationError);
      expect((err as GpuValidationError).gpuMessage).toMatch(new RegExp(String(limit)));
    } finally {
      for (const b of [big, small, params]) b.destroy();
    }
  });

  it("buffers over maxBufferSize are refused with CapacityError naming label, size and limit", async () => {
    const gpu = await getGpu();
    const max = gpu.limits.maxBufferSize;
    const over = Math.ceil((max + 1) / 4) * 4 + 4;
    expect(() => storageBuffer(gpu.device, over, "huge")).toThrow(CapacityError);
    expect(() => storageBuffer(gpu.device, over, "huge")).toThrow(`buffer 'huge' of ${over} bytes exceeds the device's maxBufferSize (${max} bytes)`);
    // uploadBytes checks the size before reading the data: a view claiming more bytes than the limit is not needed
    const fake = { byteLength: over, buffer: new ArrayBuffer(4), byteOffset: 0 } as unknown as ArrayBufferView;
    expect(() => uploadBytes(gpu.device, fake, "upload")).toThrow(/buffer 'upload' of \d+ bytes exceeds/);
  });

  it("WebGPU errors map to typed errors by kind", () => {
    class GPUOutOfMemoryError { constructor(readonly message: string) {} }
    class GPUInternalError { constructor(readonly message: string) {} }
    class GPUValidationError { constructor(readonly message: string) {} }
    const oom = typedGpuError(new GPUOutOfMemoryError("no memory") as unknown as GPUError, "ctx");
    expect(oom).toBeInstanceOf(GpuOutOfMemoryError);
    expect(oom.code).toBe("E_GPU_OUT_OF_MEMORY");
    expect(oom.message).toBe("GPU out of memory (ctx): no memory");
    expect(typedGpuError(new GPUInternalError("x") as unknown as GPUError)).toBeInstanceOf(GpuInternalError);
    expect(typedGpuError(new GPUValidationError("x") as unknown as GPUError)).toBeInstanceOf(GpuValidationError);
  });

  describe("inside the engine", () => {
    const cfg = tinyConfig({ vocabSize: 61 });
    let model: Model, engine: Engine, ref: CpuReference;
    const rand = rng(23);
    const ids = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * cfg.vocabSize));
    beforeAll(async () => {
      const { tensors, ref: w } = randomModel(cfg, 9, 0.5);
      model = buildModel(await getGpu(), cfg, { get: (n) => tensors.get(n) }, { source: "random", fingerprintSeed: "e" });
      engine = new Engine(model, { kvBudgetBytes: 2 << 20, maxBatchRows: 32 });
      ref = new CpuReference(cfg, w);
    });
    afterAll(() => {
      engine?.destroy();
      model?.destroy();
    });

    it("a validation error while recording a forward is thrown by Engine.run (never zeros); the next run is correct", async () => {
      const seq = ids(50); // two passes of 32 rows max
      const restore = breakNextBind(model);
      const err = await sequentialLogits(engine, Uint32Array.from(seq), true).catch((e) => e);
      expect(restore()).toBeGreaterThan(1);
      expect(err).toBeInstanceOf(GpuValidationError);
      expect(err.message).toMatch(/^GPU validation error \(forward of 50 rows\): /);
      expect(engine.pool.freeTokens()).toBe(engine.pool.capacity);
      const got = await sequentialLogits(engine, Uint32Array.from(seq), true);
      const want = ref.sequential(seq);
      for (let p = 0; p < seq.length; p++) expect(relError(got.subarray(p * cfg.vocabSize, (p + 1) * cfg.vocabSize), want[p])).toBeLessThan(1e-4);
    });

    async function generate(prompt: number[], n: number): Promise<number[]> {
      const block = engine.pool.allocate(prompt.length + n, 0);
      try {
        const out: number[] = [];
        for await (const c of decode(engine, {
          prompt: Uint32Array.from(prompt), block, maxTokens: n, stepsPerReadback: 2,
          group: (rows, writeAt) => ({ rows, write: block, writeAt, plain: [block] }),
        })) out.push(...c);
        return out;
      } finally {
        engine.pool.release(block);
      }
    }

    it("a validation error in decode's prefill is thrown by decode; an error between replayed steps by the next chunk's readback", async () => {
      const prompt = ids(40); // a chunked prefill (32 + 8 rows)
      const restore = breakNextBind(model);
      await expect(generate(prompt, 3)).rejects.toBeInstanceOf(GpuValidationError);
      restore();
      // an error outside any scope while tokens are being generated
      const block = engine.pool.allocate(prompt.length + 6, 0);
      let caught: unknown, chunks = 0;
      try {
        for await (const _ of decode(engine, {
          prompt: Uint32Array.from(prompt), block, maxTokens: 6, stepsPerReadback: 2,
          group: (rows, writeAt) => ({ rows, write: block, writeAt, plain: [block] }),
        })) {
          if (chunks++ === 0) submitDestroyed(model.gpu.device);
        }
      } catch (e) {
        caught = e;
      } finally {
        engine.pool.release(block);
      }
      expect(caught).toBeInstanceOf(GpuValidationError);
      expect(chunks).toBe(1);
      // and decoding works again: greedy tokens match the reference
      const seq = [...prompt], want: number[] = [];
      for (let i = 0; i < 4; i++) {
        const l = ref.sequential(seq);
        want.push(argmax(l[l.length - 1]));
        seq.push(want[i]);
      }
      expect(await generate(prompt, 4)).toEqual(want);
    });
  });

  it("a lost device: every later call fails fast with GpuDeviceLostError", async () => {
    const gpu = await createGpu(); // a device of its own, not the shared one
    const cfg = tinyConfig();
    const { tensors } = randomModel(cfg, 2);
    const model = buildModel(gpu, cfg, { get: (n) => tensors.get(n) }, { source: "random", fingerprintSeed: "lost" });
    const engine = new Engine(model, { kvBudgetBytes: 1 << 20 });
    const buf = uploadF32(gpu.device, new Float32Array([7, 8, 9, 10]));
    expect((await sequentialLogits(engine, Uint32Array.from([1, 2, 3]))).length).toBe(cfg.vocabSize);
    gpu.device.destroy();
    const info = await gpu.device.lost;
    expect(info.reason).toBe("destroyed");
    const t0 = performance.now();
    await expect(sequentialLogits(engine, Uint32Array.from([1, 2, 3]))).rejects.toBeInstanceOf(GpuDeviceLostError);
    await expect(readBuffer(gpu.device, buf, 16)).rejects.toBeInstanceOf(GpuDeviceLostError);
    const block = engine.pool.allocate(8, 0);
    const gen = decode(engine, { prompt: Uint32Array.from([1, 2]), block, maxTokens: 2, group: (rows, writeAt) => ({ rows, write: block, writeAt, plain: [block] }) });
    const err = await gen.next().catch((e) => e);
    expect(err).toBeInstanceOf(GpuDeviceLostError);
    expect(err.code).toBe("E_GPU_DEVICE_LOST");
    expect(() => new Program(gpu.device).submit()).toThrow(GpuDeviceLostError);
    expect(performance.now() - t0).toBeLessThan(1000);
    engine.destroy();
    model.destroy();
  });
});
