import { defineConfig } from "vitest/config";

/**
 * The WGSL kernels against float64 references, kernel by kernel. Node and Bun run the same WebGPU
 * implementation (the npm `webgpu` package's Dawn) on the same adapter, so these files say nothing under
 * Bun that Node has not said; `APEKIT_KERNEL_TESTS=0` leaves them out (dev.sh does for its Bun run, which
 * still runs every engine, SDK, CLI, server and cache test). Deno (wgpu) runs them all.
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

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["**/node_modules/**", ...(process.env.APEKIT_KERNEL_TESTS === "0" ? KERNEL_TESTS : [])],
    // GPU work on lavapipe is slow and single-device: run files one at a time.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
