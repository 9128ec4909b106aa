// mma_probe: the int8 subgroup-matrix multiply-accumulate rate (Dawn's chromium_experimental_subgroup_matrix, i8 x i8
// -> i32, 16 x 16 x 32) with no memory traffic in the loop, for the benchmarks (bench/mma_probe.ts), in two code shapes:
// VARIANT 0 keeps its 8 accumulators in 8 named variables (straight-line code), VARIANT 1 in an array indexed by loops
// of constant trip count (the shape of matmul_i8.wgsl's PROBE): the difference is what the array costs the compiler.
// Inputs:  params { iters }: a uniform, so the loop is not folded.
// Outputs: out: array<i32> [workgroups * 4 subgroups * 8 * 256]: each subgroup's 8 accumulators (meaningless values:
//          they keep the work alive).
// Layout:  workgroups of 4 subgroups of 32; each subgroup loads 2 left and 4 right fragments once from workgroup memory
//          and runs `iters` rounds of 8 independent multiply-accumulates (2 x 4 accumulators): 8 * 16 * 16 * 32 * 2
//          integer operations per round.
// Bounds:  subgroups of 32 (Gpu.hasInt8Matrix); dispatch (groups).
diagnostic(off, chromium.subgroup_matrix_uniformity);
enable subgroups;
enable chromium_experimental_subgroup_matrix;

struct Params { iters: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<i32>;
@group(0) @binding(1) var<uniform> p: Params;
override VARIANT: u32 = 0u;
alias L = subgroup_matrix_left<i8, 32, 16>;
alias R = subgroup_matrix_right<i8, 16, 32>;
alias A = subgroup_matrix_result<i32, 16, 16>;

var<workgroup> st: array<i32, 1024>; // 4 KiB of small values the fragments are loaded from

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  for (var i = lid; i < 1024u; i += 128u) { st[i] = i32((i * 2654435761u) >> 29u) * 0x01010101; }
  workgroupBarrier();
  let sg = lid / 32u;
  let base = (wg.x * 4u + sg) * 8u * 256u;
  let a0 = subgroupMatrixLoad<L>(&st, 0u, false, 64u);
  let a1 = subgroupMatrixLoad<L>(&st, 1024u, false, 64u);
  let b0 = subgroupMatrixLoad<R>(&st, 2048u, true, 64u);
  let b1 = subgroupMatrixLoad<R>(&st, 3072u, true, 64u);
  let b2 = subgroupMatrixLoad<R>(&st, 32u, true, 64u);
  let b3 = subgroupMatrixLoad<R>(&st, 1056u, true, 64u);
  if (VARIANT == 0u) {
    var c0: A; var c1: A; var c2: A; var c3: A; var c4: A; var c5: A; var c6: A; var c7: A;
    for (var t = 0u; t < p.iters; t++) {
      c0 = subgroupMatrixMultiplyAccumulate(a0, b0, c0);
      c1 = subgroupMatrixMultiplyAccumulate(a0, b1, c1);
      c2 = subgroupMatrixMultiplyAccumulate(a0, b2, c2);
      c3 = subgroupMatrixMultiplyAccumulate(a0, b3, c3);
      c4 = subgroupMatrixMultiplyAccumulate(a1, b0, c4);
      c5 = subgroupMatrixMultiplyAccumulate(a1, b1, c5);
      c6 = subgroupMatrixMultiplyAccumulate(a1, b2, c6);
      c7 = subgroupMatrixMultiplyAccumulate(a1, b3, c7);
    }
    subgroupMatrixStore(&out, base, c0, false, 16u);
    subgroupMatrixStore(&out, base + 256u, c1, false, 16u);
    subgroupMatrixStore(&out, base + 512u, c2, false, 16u);
    subgroupMatrixStore(&out, base + 768u, c3, false, 16u);
    subgroupMatrixStore(&out, base + 1024u, c4, false, 16u);
    subgroupMatrixStore(&out, base + 1280u, c5, false, 16u);
    subgroupMatrixStore(&out, base + 1536u, c6, false, 16u);
    subgroupMatrixStore(&out, base + 1792u, c7, false, 16u);
  } else {
    var a = array<L, 2>(a0, a1);
    var b = array<R, 4>(b0, b1, b2, b3);
    var c: array<A, 8>;
    for (var t = 0u; t < p.iters; t++) {
      for (var j = 0u; j < 4u; j++) {
        for (var i = 0u; i < 2u; i++) { c[i * 4u + j] = subgroupMatrixMultiplyAccumulate(a[i], b[j], c[i * 4u + j]); }
      }
    }
    for (var f = 0u; f < 8u; f++) { subgroupMatrixStore(&out, base + 256u * f, c[f], false, 16u); }
  }
}
