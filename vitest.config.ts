import { defineConfig } from "vitest/config";

/**
 * The WGSL kernels against float64 references, kernel by kernel. Their cost on a CPU adapter is compiling:
 * lavapipe compiles each pipeline variant at its first dispatch, 1-30 s apiece, and these files compile
 * hundreds. Node and Bun run the same WebGPU implementation (the npm `webgpu` package's Dawn) on the same
 * adapter, so these files say nothing under Bun that Node has not said. Deno's WebGPU (wgpu) translates the
 * same WGSL through another compiler (naga); every kernel the engine picks is still compiled and checked
 * there by the engine, SDK, CLI and model files (logits against transformers), and f16_compute (the f16
 * kernels and f16 models against transformers: compute "f16", the Deno figures of bench/) runs there too.
 * `APEKIT_KERNEL_TESTS=0` leaves the kernel files out (dev.sh does for its Bun run);
 * `APEKIT_KERNEL_TESTS=deno` keeps only DENO_KERNEL_TESTS of them (dev.sh's Deno run).
 */
export const KERNEL_TESTS = [
  "test/attention_decode.test.ts",
  "test/attention_tiled.test.ts",
  "test/matmul.test.ts",
  "test/matvec_batch.test.ts",
  "test/quant.test.ts",
  "test/f16_compute.test.ts",
  "test/attention_row.test.ts",
  "test/rope_fused.test.ts",
  "test/matmul_i8.test.ts",
];
/** The kernel files that run under Deno too. */
export const DENO_KERNEL_TESTS = ["test/f16_compute.test.ts"];

function excludedKernelTests(mode: string | undefined): string[] {
  if (mode === "0") return KERNEL_TESTS;
  if (mode === "deno") return KERNEL_TESTS.filter((f) => !DENO_KERNEL_TESTS.includes(f));
  return [];
}

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["**/node_modules/**", ...excludedKernelTests(process.env.APEKIT_KERNEL_TESTS)],
    // GPU work on lavapipe is slow and single-device: one file at a time. (Two at once, measured on 2 cores with a
    // cold shader cache on 2026-12-03: Node's run no shorter, 63 min, and four tests past their timeouts.)
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
