// f16 compute (model option `compute: "f16"`, adapter feature shader-f16): the *_f16c kernels against the
// CPU product, every HF fixture against transformers' float64 logits, and the option's errors.
// Where the adapter lacks shader-f16, the kernel and fixture tests are skipped (saying so); the error
// tests run everywhere.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readdirSync, readFileSync } from "node:fs";
import { getGpu } from "../src/gpu/device.ts";
import { readBuffer, storageBuffer, uploadF32 } from "../src/gpu/buffers.ts";
import { Kernels } from "../src/gpu/shaders.ts";
import { Program } from "../src/engine/program.ts";
import { kernelFormat, type MatvecLayout, recordLinear } from "../src/engine/linear.ts";
import { Engine } from "../src/engine/engine.ts";
import { sequentialLogits } from "../src/ape/ape.ts";
import { loadHfFolder, type Model } from "../src/model/model.ts";
import { f16ToF32, f32ToF16 } from "../src/model/quant.ts";
import { destroyLinear, uploadQuantLinear } from "../src/model/weights.ts";
import { GpuUnavailableError, InvalidArgumentError } from "../src/errors.ts";
import { runtimeName } from "../src/runtime.ts";
import { relError, rng } from "./reference/random_model.ts";
import { cpuLinear } from "./reference/cpu_linear.ts";
import { expectGreedyMatches, expectLanesDecodeMatches } from "./reference/fixture_decode.ts";

const gpu = await getGpu();
if (!gpu.hasF16) console.warn(`f16 compute: the adapter (${gpu.description}) lacks shader-f16; f16-compute kernel and fixture tests are skipped`);

const ROOT = new URL("../fixtures/models/", import.meta.url);
const MODELS = readdirSync(ROOT).filter((d) => !d.startsWith("."));

describe.skipIf(!gpu.hasF16)(`f16-compute kernels (matmul_f16c, matvec_f16c, matvec_rows_f16c) on ${runtimeName()}`, () => {
  // K = 1000 and 104 are not multiples of 32 (a partial last tile step) and long enough that f16 running sums
  // would drift; M = 67 / 130 leave partial tiles of rows, N = 70 of columns.
  it.each([
    { N: 70, K: 1000, chunked: false, accumulate: false },
    { N: 37, K: 96, chunked: true, accumulate: false },
    { N: 70, K: 104, chunked: false, accumulate: true },
  ])("N=$N K=$K chunked=$chunked accumulate=$accumulate matches the CPU product of the f16 weights", async ({ N, K, chunked, accumulate }) => {
    const kernels = new Kernels(gpu.device, gpu.hasF16);
    const rand = rng(N * 131 + K);
    const h = Uint16Array.from({ length: N * K }, () => f32ToF16((rand() * 2 - 1) * 0.5));
    const w = Float32Array.from(h, (v) => f16ToF32(v));
    const bias = Float32Array.from({ length: N }, () => rand() - 0.5);
    // A small binding limit splits W into row chunks of 16 rows (the last one shorter).
    const g = chunked ? { ...gpu, limits: { ...gpu.limits, maxStorageBufferBindingSize: 16 * K * 2 + 4 } } : gpu;
    const W = uploadQuantLinear(g, "w", "f16", new Uint8Array(h.buffer), N, K, K * 2, bias);
    W.compute = "f16";
    expect(W.chunks.length).toBe(chunked ? Math.ceil(N / 16) : 1);
    expect(kernelFormat(W)).toBe("f16c");
    try {
      for (const [M, layout] of [[1, "lanes"], [1, "rows"], [67, "lanes"], [130, "rows"]] as [number, MatvecLayout][]) {
        const x = Float32Array.from({ length: M * K }, () => rand() * 2 - 1);
        const y0 = Float32Array.from({ length: M * N }, () => rand() * 2 - 1);
        const xb = uploadF32(gpu.device, x), yb = accumulate ? uploadF32(gpu.device, y0) : storageBuffer(gpu.device, M * N * 4);
        const prog = new Program(gpu.device);
        recordLinear(prog, kernels, xb, W, yb, M, layout, undefined, accumulate);
        prog.submit();
        const got = new Float32Array(await readBuffer(gpu.device, yb, M * N * 4));
        prog.destroy();
        xb.destroy();
        yb.destroy();
        const want = cpuLinear(x, w, M, N, K, bias, accumulate ? y0 : undefined);
        // x rounded to f16 (relative 2^-11 per element) and f16 products: ~1e-3 of the output's scale
        expect(relError(got, want), `M=${M} ${layout}`).toBeLessThan(3e-3);
        expect(relError(got, want), `M=${M} ${layout}: f16 arithmetic really ran`).toBeGreaterThan(1e-6);
      }
      for (const name of ["matmul_f16c", "matvec_f16c", "matvec_rows_f16c"]) expect(kernels.has(name), name).toBe(true);
      expect(kernels.has("matmul_f16") || kernels.has("matvec_f16") || kernels.has("matvec_rows_f16")).toBe(false);
    } finally {
      destroyLinear(W);
    }
  });

  // a residual stream far past the half-float range (massive activations): only the normalised input reaches f16
  it("matvec_f16c normalises before rounding to f16: inputs of magnitude 1e5 (past f16's 65504) stay finite and right", async () => {
    const kernels = new Kernels(gpu.device, gpu.hasF16);
    const rand = rng(7);
    const N = 33, K = 512, eps = 1e-5;
    const h = Uint16Array.from({ length: N * K }, () => f32ToF16((rand() * 2 - 1) * 0.5));
    const w = Float32Array.from(h, (v) => f16ToF32(v));
    const W = uploadQuantLinear(gpu, "w", "f16", new Uint8Array(h.buffer), N, K, K * 2);
    W.compute = "f16";
    const x = Float32Array.from({ length: K }, () => (rand() * 2 - 1) * 1e5);
    const g = Float32Array.from({ length: K }, () => rand() + 0.5);
    const ms = x.reduce((a, v) => a + v * v, 0) / K;
    const xin = Float32Array.from({ length: K }, (_, i) => (x[i] / Math.sqrt(ms + eps)) * g[i]);
    const xb = uploadF32(gpu.device, x), gb = uploadF32(gpu.device, g), yb = storageBuffer(gpu.device, N * 4);
    // (32 lanes x 4 rows: the shape the test below compiles too; one more kernel costs lavapipe minutes on a cold cache)
    const prog = new Program(gpu.device);
    recordLinear(prog, kernels, xb, W, yb, 1, "lanes", undefined, false, { norm: { weight: gb, eps } }, { lanes: 32, rows: 4 });
    prog.submit();
    const got = new Float32Array(await readBuffer(gpu.device, yb, N * 4));
    expect(got.every(Number.isFinite), "32 lanes, 4 rows").toBe(true);
    expect(relError(got, cpuLinear(xin, w, 1, N, K)), "32 lanes, 4 rows").toBeLessThan(3e-3);
    prog.destroy();
    for (const b of [xb, gb, yb]) b.destroy();
    destroyLinear(W);
  }, 400_000);

  it.each(["swiglu", "norm"] as const)("matvec_f16c transforms its input on the fly (%s), in f32 before rounding to f16", async (transform) => {
    const kernels = new Kernels(gpu.device, gpu.hasF16);
    const rand = rng(transform.length);
    const N = 45, K = 256, eps = 1e-5;
    const h = Uint16Array.from({ length: N * K }, () => f32ToF16((rand() * 2 - 1) * 0.5));
    const w = Float32Array.from(h, (v) => f16ToF32(v));
    const W = uploadQuantLinear(gpu, "w", "f16", new Uint8Array(h.buffer), N, K, K * 2);
    W.compute = "f16";
    const x = Float32Array.from({ length: transform === "swiglu" ? 2 * K : K }, () => rand() * 4 - 2);
    const g = Float32Array.from({ length: K }, () => rand() + 0.5);
    const ms = x.reduce((a, v) => a + v * v, 0) / K;
    const xin = Float32Array.from({ length: K }, (_, i) =>
      transform === "swiglu" ? (x[i] / (1 + Math.exp(-x[i]))) * x[K + i] : (x[i] / Math.sqrt(ms + eps)) * g[i]);
    const xb = uploadF32(gpu.device, x), gb = uploadF32(gpu.device, g), yb = storageBuffer(gpu.device, N * 4);
    // f16 arithmetic (matvec_f16c) and f32 (matvec_f16), with 32, 64 and 256 lanes per row, 1, 2 or 4 rows per lane group
    for (const compute of ["f16", "f32"] as const) {
      for (const [lanes, rows] of [[32, 1], [64, 2], [256, 1], [32, 4]]) {
        W.compute = compute;
        const prog = new Program(gpu.device);
        recordLinear(prog, kernels, xb, W, yb, 1, "lanes", undefined, false, transform === "swiglu" ? { swiglu: true } : { norm: { weight: gb, eps } }, { lanes, rows });
        prog.submit();
        const got = new Float32Array(await readBuffer(gpu.device, yb, N * 4));
        expect(relError(got, cpuLinear(xin, w, 1, N, K)), `${compute} compute, ${lanes} lanes, ${rows} rows`).toBeLessThan(compute === "f16" ? 3e-3 : 1e-5);
        prog.destroy();
      }
    }
    expect(kernels.has("matvec_f16c") && kernels.has("matvec_f16")).toBe(true);
    for (const b of [xb, gb, yb]) b.destroy();
    destroyLinear(W);
  }, 400_000); // the first of the two compiles 8 pipelines: past 120 s under Deno on a fresh machine's cold lavapipe
});

interface Reference {
  logits: { ids: number[]; logits: number[][] }[];
  greedy: { prompt: number[]; tokens: number[] };
}

describe.skipIf(!gpu.hasF16).each(MODELS)(`HF fixture %s in f16 compute on ${runtimeName()}`, (name) => {
  const dir = new URL(`${name}/`, ROOT).pathname;
  const ref: Reference = JSON.parse(readFileSync(`${dir}reference.json`, "utf8"));
  let model: Model, engine: Engine;
  beforeAll(async () => {
    model = await loadHfFolder(dir, undefined, { compute: "f16" });
    engine = new Engine(model, { kvBudgetBytes: 4 << 20 });
  });
  afterAll(() => {
    engine?.destroy();
    model?.destroy();
  });

  it("logits stay within 2e-2 of transformers at every position", async () => {
    const V = model.config.vocabSize;
    let worst = 0;
    for (const c of ref.logits) {
      const got = await sequentialLogits(engine, Uint32Array.from(c.ids), true);
      c.logits.forEach((want, p) => {
        const e = relError(got.subarray(p * V, (p + 1) * V), want);
        worst = Math.max(worst, e);
        expect(e, `${c.ids.length} ids, position ${p}`).toBeLessThan(2e-2);
      });
    }
    console.log(`f16 compute ${name} (${runtimeName()}): max relative logit error ${worst.toExponential(2)}`);
  });

  it("greedy generation reproduces transformers' tokens", async () => {
    await expectGreedyMatches(engine, ref);
  });

  // (it compiles every one-row matvec_f16c shape the GPU layout picks: minutes on a fresh machine's cold lavapipe cache;
  // it ran past 120 s on a fresh clone here)
  it("decode in the GPU 'lanes' layout (RMSNorm and SwiGLU fused into matvec_f16c's input) stays within 2e-2 at every position", async () => {
    await expectLanesDecodeMatches(engine, ref, 2e-2);
  }, 900_000);

  it("the linear layers ran the f16c kernels (f16 storage implied), with weightDtype f16's fingerprint", async () => {
    expect(model.compute).toBe("f16");
    for (const lin of [model.layers[0].qkv, model.layers[0].o, model.layers[0].gateUp, model.layers[0].down]) {
      expect(lin.format).toBe("f16");
      expect(kernelFormat(lin)).toBe("f16c");
    }
    // the tests above ran prefill (many rows) and decode (one row) in both matvec layouts
    for (const name of ["matmul_f16c", "matvec_f16c", "matvec_rows_f16c"]) expect(model.kernels.has(name), name).toBe(gpu.isCpu || name !== "matvec_rows_f16c");
    expect(model.kernels.has("matmul_f16") || model.kernels.has("matvec_rows_f16") || model.kernels.has("matvec_f16")).toBe(false);
    // compute is arithmetic, not weights: the same f16 weights fingerprint alike
    const half = await loadHfFolder(dir, undefined, { weightDtype: "f16" });
    try {
      expect(half.compute).toBe("f32");
      expect(kernelFormat(half.layers[0].qkv)).toBe("f16");
      expect(half.fingerprint).toBe(model.fingerprint);
    } finally {
      half.destroy();
    }
  });
});

describe(`compute option errors on ${runtimeName()}`, () => {
  const dir = new URL("llama3/", ROOT).pathname;

  it("weightDtype f32 with compute f16 is an InvalidArgumentError naming both options", async () => {
    const err = await loadHfFolder(dir, undefined, { weightDtype: "f32", compute: "f16" }).catch((e) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err.message).toMatch(/compute/);
    expect(err.message).toMatch(/weightDtype/);
    const bad = await loadHfFolder(dir, undefined, { compute: "bf16" as "f16" }).catch((e) => e);
    expect(bad).toBeInstanceOf(InvalidArgumentError);
  });

  it("an adapter without shader-f16 refuses compute f16 (GpuUnavailableError naming shader-f16), never falls back", async () => {
    const noF16 = { ...gpu, hasF16: false };
    const err = await loadHfFolder(dir, noF16, { compute: "f16" }).catch((e) => e);
    expect(err).toBeInstanceOf(GpuUnavailableError);
    expect(err.message).toMatch(/shader-f16/);
    // the kernel loader refuses f16 kernels on a device without the feature
    const k = new Kernels(gpu.device, false);
    for (const name of ["matmul_f16c", "matvec_f16c", "matvec_rows_f16c"]) expect(() => k.pipeline(name)).toThrow(GpuUnavailableError);
    // compute f32 still loads on such an adapter
    const m = await loadHfFolder(dir, noF16, { weightDtype: "f16" });
    expect(m.compute).toBe("f32");
    m.destroy();
  });
});
