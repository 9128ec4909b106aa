// matmul_i8: y[m, colOffset + n] = xs[m] * ws[colOffset + n] * sum_k xq[m, k] * wq[n, k] (+ bias, + y) — a linear
// layer for prefill on integer tensor cores (Dawn's chromium_experimental_subgroup_matrix, i8 x i8 -> i32,
// 16 x 16 x 32): x and W quantized to int8 with one scale per row (quantize_i8.wgsl), products summed exactly
// in i32 over the whole of K, rescaled once in the epilogue.
// Inputs:  xq: array<i32> [Mp, Kp] int8 (four per word, little-endian), Mp = M rounded up to BM, rows past M
//          any values; wq: array<i32> [Np, Kp] int8, this chunk's rows, Np = the chunk's N rounded up to BN;
//          xs: array<f32> [M] and ws: array<f32> [W's rows] (indexed colOffset + n): the rows' scales;
//          bias: array<f32> (bound always; read only when flags bit 0 set); params (Kp: K rounded up to 32).
// Outputs: y: array<f32> [M, ldy], columns colOffset .. colOffset+N-1 written (linear_store.wgsl).
// Layout:  a workgroup of SGM x SGN subgroups computes a BM x BN tile (BM = 16 FM SGM, BN = 16 FN SGN); each
//          subgroup holds FM x FN 16 x 16 i32 accumulators and, per step of 32 along k, loads FM fragments of x
//          (row-major, stride Kp) and FN of W (W's rows are B's columns: column-major, stride Kp) straight from
//          memory. Grid x runs over M's tiles, so the workgroups running together share W's tile (read once
//          from memory, then from L2) and x, the smaller operand, is what they re-read.
//          Epilogue: each accumulator goes through a 16 x 16 slot of workgroup memory, where the subgroup's
//          invocations rescale and store it.
// Bounds:  dispatch (ceil(M / BM), ceil(N / BN)); Kp a multiple of 32; xq and wq padded as above (a fragment
//          load that would cross a buffer's end reads zeros for the whole fragment); outputs past M, N are not
//          written. The workgroup size is a multiple of the subgroup size (32 on NVIDIA; the engine checks).
enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium_experimental.subgroup_matrix_uniformity);

struct Params { M: u32, N: u32, K: u32, ldy: u32, colOffset: u32, flags: u32, Kp: u32 }
@group(0) @binding(0) var<storage, read> xq: array<i32>;
@group(0) @binding(1) var<storage, read> wq: array<i32>;
//#include linear_store.wgsl
@group(0) @binding(5) var<storage, read> xs: array<f32>;
@group(0) @binding(6) var<storage, read> ws: array<f32>;

const FM = 2u; // fragments per subgroup along M
const FN = 4u; // along N
const SGM = 2u; // subgroups per workgroup along M
const SGN = 2u; // along N
const SG = 32u; // invocations per subgroup
const BM = 16u * FM * SGM;
const BN = 16u * FN * SGN;

var<workgroup> slot: array<i32, SGM * SGN * 256u>;

@compute @workgroup_size(SG * SGM * SGN)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let sg = lid / SG;
  let lane = lid % SG;
  let m0 = wg.x * BM + (sg / SGN) * 16u * FM;
  let n0 = wg.y * BN + (sg % SGN) * 16u * FN;
  let Kp = p.Kp;
  var acc: array<subgroup_matrix_result<i32, 16, 16>, FM * FN>;
  for (var k0 = 0u; k0 < Kp; k0 += 32u) {
    var a: array<subgroup_matrix_left<i8, 32, 16>, FM>;
    for (var i = 0u; i < FM; i++) {
      a[i] = subgroupMatrixLoad<subgroup_matrix_left<i8, 32, 16>>(&xq, (m0 + 16u * i) * Kp + k0, false, Kp);
    }
    for (var j = 0u; j < FN; j++) {
      let b = subgroupMatrixLoad<subgroup_matrix_right<i8, 16, 32>>(&wq, (n0 + 16u * j) * Kp + k0, true, Kp);
      for (var i = 0u; i < FM; i++) {
        acc[i * FN + j] = subgroupMatrixMultiplyAccumulate(a[i], b, acc[i * FN + j]);
      }
    }
  }
  for (var f = 0u; f < FM * FN; f++) {
    subgroupMatrixStore(&slot, sg * 256u, acc[f], false, 16u);
    workgroupBarrier();
    for (var e = lane; e < 256u; e += SG) {
      let m = m0 + 16u * (f / FN) + e / 16u;
      let n = n0 + 16u * (f % FN) + e % 16u;
      if (m < p.M && n < p.N) { store_y(m, n, f32(slot[sg * 256u + e]) * xs[m] * ws[p.colOffset + n]); }
    }
    workgroupBarrier();
  }
}
