// compute "int8" (src/engine/linear_i8.ts): quantize_i8 against a CPU quantizer (exact: same bytes, same scales), for
// f32 rows (activations) and f16 rows (weights), a zero row and K not a multiple of the k step; attachInt8 over a
// weight in several row chunks. On adapters with int8 subgroup matrices (Dawn on NVIDIA), matmul_i8 through
// recordLinear against an exact product of the same int8 values (f32 rounding only) and against float64 (the
// quantization's error, within the bound linear_i8.ts documents), with bias, the fused residual add, row counts and
// columns off the tile; and a fixture model's prefill logits with compute "int8" against compute "f32". Elsewhere
// those are skipped (saying so) and compute "int8" must be refused with GpuUnavailableError.
import { describe, expect, it } from "vitest";
import { readdirSync } from "node:fs";
import { getGpu, type Gpu } from "../src/gpu/device.ts";
import { readBuffer, storageBuffer, uploadF32 } from "../src/gpu/buffers.ts";
import { Kernels } from "../src/gpu/shaders.ts";
import { Program } from "../src/engine/program.ts";
import { recordLinear } from "../src/engine/linear.ts";
import { attachInt8, I8_K_STEP, type I8Tile, I8_MIN_ROWS, i8Padded, i8ScratchBytes, I8_TILE_N, recordQuantize } from "../src/engine/linear_i8.ts";
import { loadHfFolder } from "../src/model/model.ts";
import { f16ToF32, f32ToF16 } from "../src/model/quant.ts";
import { destroyLinear, uploadQuantLinear } from "../src/model/weights.ts";
import { Engine } from "../src/engine/engine.ts";
import { sequentialLogits } from "../src/ape/ape.ts";
import { GpuUnavailableError } from "../src/errors.ts";
import { runtimeName } from "../src/runtime.ts";
import { relError, rng } from "./reference/random_model.ts";
import { cpuLinear } from "./reference/cpu_linear.ts";
import { roundEven } from "./reference/round_even.ts";

const gpu = await getGpu();
const k = new Kernels(gpu.device, gpu.hasF16);
if (!gpu.hasInt8Matrix) console.warn(`int8: the adapter (${gpu.description}) has no int8 subgroup matrices; matmul_i8 and the int8 model are not tested`);


/**
 * q from the GPU against the CPU quantizer's: equal, or one apart where v / s sits within a rounding of a half (GPU
 * division may be off by an ulp or two: WGSL allows 2.5), in at most 1% of the values; scales within 1e-6.
 */
function expectQuantized(got: Int8Array, gotS: Float32Array, want: { q: Int8Array; s: Float32Array }, sTol = 1e-6) {
  let off = 0;
  for (let i = 0; i < want.q.length; i++) {
    const d = Math.abs(got[i] - want.q[i]);
    expect(d).toBeLessThanOrEqual(1);
    off += d;
  }
  expect(off).toBeLessThanOrEqual(Math.ceil(want.q.length / 100));
  for (let r = 0; r < want.s.length; r++) expect(Math.abs(gotS[r] - want.s[r])).toBeLessThanOrEqual(sTol * want.s[r]);
}

/** The CPU quantizer quantize_i8 must match: per row s = max|v| / 127, q = clamp(round(v * (127 / max|v|))). */
function quantizeCpu(v: Float32Array, R: number, K: number, Kp: number): { q: Int8Array; s: Float32Array } {
  const q = new Int8Array(R * Kp), s = new Float32Array(R);
  for (let r = 0; r < R; r++) {
    const row = v.subarray(r * K, (r + 1) * K);
    const amax = row.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
    s[r] = amax / 127;
    const inv = amax > 0 ? Math.fround(127 / amax) : 0;
    for (let c = 0; c < K; c++) q[r * Kp + c] = Math.max(-127, Math.min(127, roundEven(Math.fround(row[c] * inv))));
  }
  return { q, s };
}

function randomRows(seed: number, R: number, K: number, zeroRow?: number): Float32Array {
  const rand = rng(seed);
  const v = Float32Array.from({ length: R * K }, () => (rand() * 2 - 1) * (1 + 3 * rand()));
  if (zeroRow !== undefined) v.fill(0, zeroRow * K, (zeroRow + 1) * K);
  return v;
}

describe(`int8 prefill (compute "int8") on ${runtimeName()}`, () => {
  it("quantize_i8 gives the CPU quantizer's bytes and scales: f32 rows (K = 100, Kp = 128, a zero row) and f16 rows", async () => {
    for (const f16 of [false, true]) {
      const R = 5, K = f16 ? 96 : 100, Kp = i8Padded(K, I8_K_STEP);
      let v = randomRows(f16 ? 7 : 3, R, K, 2);
      let src: GPUBuffer;
      if (f16) {
        const h = Uint16Array.from(v, (x) => f32ToF16(x));
        v = Float32Array.from(h, (x) => f16ToF32(x));
        src = storageBuffer(gpu.device, h.byteLength);
        gpu.device.queue.writeBuffer(src, 0, h);
      } else src = uploadF32(gpu.device, v);
      const q = storageBuffer(gpu.device, R * Kp), s = storageBuffer(gpu.device, R * 4);
      const prog = new Program(gpu.device);
      recordQuantize(prog, k, src, q, s, { rows: R, K, Kp, f16 });
      prog.submit();
      const got = new Int8Array(await readBuffer(gpu.device, q, R * Kp)), gotS = new Float32Array(await readBuffer(gpu.device, s, R * 4));
      expectQuantized(got, gotS, quantizeCpu(v, R, K, Kp));
      expect(gotS[2]).toBe(0);
      for (let c = K; c < Kp; c++) expect(got[2 * Kp + c]).toBe(0);
      prog.destroy();
      for (const b of [src, q, s]) b.destroy();
    }
  });

  it("quantize_i8 reads rows from fromRow with a row stride (x rows inside a wider buffer)", async () => {
    const R = 3, K = 64, stride = 80, from = 2;
    const all = randomRows(11, from + R, stride);
    const src = uploadF32(gpu.device, all), q = storageBuffer(gpu.device, R * K), s = storageBuffer(gpu.device, R * 4);
    const prog = new Program(gpu.device);
    recordQuantize(prog, k, src, q, s, { rows: R, K, Kp: K, fromRow: from, rowStride: stride });
    prog.submit();
    const rows = new Float32Array(R * K);
    for (let r = 0; r < R; r++) rows.set(all.subarray((from + r) * stride, (from + r) * stride + K), r * K);
    expectQuantized(new Int8Array(await readBuffer(gpu.device, q, R * K)), new Float32Array(await readBuffer(gpu.device, s, R * 4)), quantizeCpu(rows, R, K, K));
    prog.destroy();
    for (const b of [src, q, s]) b.destroy();
  });

  it("quantize_i8 with SwiGLU quantizes silu(gate) * up of gate_up's [gate | up] rows (down_proj's int8 input)", async () => {
    const R = 5, K = 96, Kp = 128;
    const gu = randomRows(13, R, 2 * K);
    const h = new Float32Array(R * K);
    for (let r = 0; r < R; r++) {
      for (let c = 0; c < K; c++) {
        const g = gu[r * 2 * K + c], u = gu[r * 2 * K + K + c];
        h[r * K + c] = g / (1 + Math.exp(-g)) * u;
      }
    }
    const src = uploadF32(gpu.device, gu), q = storageBuffer(gpu.device, R * Kp), s = storageBuffer(gpu.device, R * 4);
    const prog = new Program(gpu.device);
    recordQuantize(prog, k, src, q, s, { rows: R, K, Kp, swiglu: true });
    prog.submit();
    // the GPU's exp is within a few ulp: scales within 1e-5, bytes one apart at most near a half
    expectQuantized(new Int8Array(await readBuffer(gpu.device, q, R * Kp)), new Float32Array(await readBuffer(gpu.device, s, R * 4)), quantizeCpu(h, R, K, Kp), 1e-5);
    prog.destroy();
    for (const b of [src, q, s]) b.destroy();
  });

  it("attachInt8 quantizes every row chunk of a weight (rows padded to the tile, scales in W's row order)", async () => {
    const N = 300, K = 64, chunkRows = 128;
    const rand = rng(5);
    const h = Uint16Array.from({ length: N * K }, () => f32ToF16((rand() * 2 - 1) * 0.5));
    const w = Float32Array.from(h, (x) => f16ToF32(x));
    const g: Gpu = { ...gpu, hasInt8Matrix: true, limits: { ...gpu.limits, maxStorageBufferBindingSize: chunkRows * K * 2 + 4 } };
    const W = uploadQuantLinear(g, "w", "f16", new Uint8Array(h.buffer), N, K, K * 2);
    expect(W.chunks.length).toBe(3);
    attachInt8(g, k, W);
    const want = quantizeCpu(w, N, K, K);
    const scales = new Float32Array(await readBuffer(gpu.device, W.i8!.scales, N * 4));
    const got = new Int8Array(N * K);
    for (const ch of W.i8!.chunks) {
      expect(ch.buffer.size).toBe(i8Padded(ch.rows, I8_TILE_N) * K);
      got.set(new Int8Array(await readBuffer(gpu.device, ch.buffer, ch.rows * K)), ch.rowStart * K);
    }
    expectQuantized(got, scales, want);
    destroyLinear(W);
  });

  it.skipIf(!gpu.hasInt8Matrix)("matmul_i8 equals the exact int8 product and is within the quantization bound of float64 (bias, residual add, edges)", async () => {
    const tilings: (I8Tile | undefined)[] = [undefined, { FM: 4, FN: 4, SGM: 2, SGN: 2, BK: 32 }, { FM: 2, FN: 2, SGM: 2, SGN: 4, BK: 64 }];
    for (const [M, N, K, bias, acc, tiling] of [
      [128, 128, 64, false, false, 0], [70, 200, 96, true, false, 0], [300, 384, 2080, true, true, 0], [70, 200, 96, true, true, 1], [300, 384, 2080, false, true, 2],
    ] as const) {
      const rand = rng(M + N + K);
      const h = Uint16Array.from({ length: N * K }, () => f32ToF16((rand() * 2 - 1) * 0.5));
      const w = Float32Array.from(h, (x) => f16ToF32(x));
      const b = bias ? Float32Array.from({ length: N }, () => rand() - 0.5) : undefined;
      const W = uploadQuantLinear(gpu, "w", "f16", new Uint8Array(h.buffer), N, K, K * 2, b);
      attachInt8(gpu, k, W);
      const xh = randomRows(M * 3 + 1, M, K);
      const y0 = Float32Array.from({ length: M * N }, () => rand() - 0.5);
      const x = uploadF32(gpu.device, xh), y = uploadF32(gpu.device, y0);
      const need = i8ScratchBytes(M, K);
      const i8 = { q: storageBuffer(gpu.device, need.q), s: storageBuffer(gpu.device, need.s) };
      const prog = new Program(gpu.device);
      recordLinear(prog, k, x, W, y, M, "lanes", undefined, acc, {}, undefined, undefined, i8, tilings[tiling]);
      prog.submit();
      const got = new Float32Array(await readBuffer(gpu.device, y, M * N * 4));
      // exact: the int8 values the GPU multiplied (x's quantized rows in the scratch, W's int8 copy), on the CPU
      const Kp = W.i8!.Kp;
      const qx = { q: new Int8Array(await readBuffer(gpu.device, i8.q, M * Kp)), s: new Float32Array(await readBuffer(gpu.device, i8.s, M * 4)) };
      const qw = { q: new Int8Array(await readBuffer(gpu.device, W.i8!.chunks[0].buffer, N * Kp)), s: new Float32Array(await readBuffer(gpu.device, W.i8!.scales, N * 4)) };
      expectQuantized(qx.q, qx.s, quantizeCpu(xh, M, K, Kp));
      const exact = new Float64Array(M * N);
      for (let m = 0; m < M; m++) {
        for (let n = 0; n < N; n++) {
          let s = 0;
          for (let c = 0; c < K; c++) s += qx.q[m * Kp + c] * qw.q[n * Kp + c];
          exact[m * N + n] = s * qx.s[m] * qw.s[n] + (b ? b[n] : 0) + (acc ? y0[m * N + n] : 0);
        }
      }
      expect(relError(got, exact)).toBeLessThan(1e-6);
      // float64: within the documented bound of quantizing both operands
      const ref = cpuLinear(xh, w, M, N, K, b, acc ? y0 : undefined);
      for (let m = 0; m < M; m += 7) {
        for (let n = 0; n < N; n += 5) {
          let bound = 0;
          for (let c = 0; c < K; c++) bound += (Math.abs(w[n * K + c]) * qx.s[m] + Math.abs(xh[m * K + c]) * qw.s[n]) / 2;
          expect(Math.abs(got[m * N + n] - ref[m * N + n])).toBeLessThanOrEqual(bound * 1.01 + 1e-5);
        }
      }
      prog.destroy();
      destroyLinear(W);
      for (const buf of [x, y, i8.q, i8.s]) buf.destroy();
    }
  });

  const ROOT = new URL("../fixtures/models/", import.meta.url);
  const dir = new URL(readdirSync(ROOT).filter((d) => !d.startsWith("."))[0] + "/", ROOT).pathname;

  it.skipIf(!gpu.hasInt8Matrix)(`a fixture model's prefill of ${I8_MIN_ROWS * 2} tokens: compute int8 logits close to compute f32`, async () => {
    const ids = Uint32Array.from({ length: I8_MIN_ROWS * 2 }, (_, i) => (i * 37 + 5) % 200);
    const logitsOf = async (compute: "f32" | "int8") => {
      const model = await loadHfFolder(dir, undefined, { compute, weightDtype: "f16" });
      const engine = new Engine(model);
      const logits = await sequentialLogits(engine, ids);
      engine.destroy();
      model.destroy();
      return logits;
    };
    const f32 = await logitsOf("f32"), i8 = await logitsOf("int8");
    const err = relError(i8, f32);
    console.log(`int8 vs f32 logits: relative error ${err.toExponential(2)}`);
    expect(err).toBeGreaterThan(0); // the int8 kernels ran
    expect(err).toBeLessThan(5e-2);
  });

  it.skipIf(gpu.hasInt8Matrix)("an adapter without int8 subgroup matrices refuses compute int8 (GpuUnavailableError), never falls back", async () => {
    const err = await loadHfFolder(dir, undefined, { compute: "int8" }).catch((e) => e);
    expect(err).toBeInstanceOf(GpuUnavailableError);
    expect(err.message).toMatch(/int8 subgroup matrices/);
    expect(() => attachInt8(gpu, k, { format: "f16", rows: 1, cols: 8, chunks: [] })).toThrow(/no int8 subgroup matrices/);
  });
});
