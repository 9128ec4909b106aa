// matmul_i8: y[m, colOffset + n] = xs[m] * ws[colOffset + n] * sum_k xq[m, k] * wq[n, k] (+ bias, + y) — a linear
// layer for prefill on integer tensor cores (Dawn's chromium_experimental_subgroup_matrix, i8 x i8 -> i32,
// 16 x 16 x 32): x and W quantized to int8 with one scale per row (quantize_i8.wgsl), products summed exactly
// in i32 over the whole of K, rescaled once in the epilogue.
// Inputs:  xq: [Mp, Kp] int8 (four per word, little-endian), Mp = M rounded up to BM, rows past M any values;
//          wq: [Np, Kp] int8, this chunk's rows, Np = the chunk's N rounded up to BN (zero rows past N);
//          xs: array<f32> [M] and ws: array<f32> [W's rows] (indexed colOffset + n): the rows' scales;
//          bias: array<f32> (bound always; read only when flags bit 0 set); params (Kp: K rounded up to 32).
// Outputs: y: array<f32> [M, ldy], columns colOffset .. colOffset+N-1 written (linear_store.wgsl).
// Layout:  a workgroup of SGM x SGN subgroups computes a BM x BN tile (BM = 16 FM SGM, BN = 16 FN SGN), each
//          subgroup 16 FM x 16 FN of it as FM x FN accumulators of 16 x 16 i32. K advances BK bytes at a time: the
//          workgroup copies x[BM rows, BK bytes] and W[BN rows, BK bytes] into workgroup memory (vec4 loads,
//          coalesced; rows padded to ST = BK + 16 bytes against bank conflicts), double-buffered
//          (the next step's loads are in registers while this step multiplies), and each subgroup loads its
//          fragments from there: x row-major, W's rows as B's columns (column-major), both with stride ST.
//          Grid x runs over M's tiles, so the workgroups running together share W's tile through L2.
//          Epilogue: each accumulator goes through a 16 x 16 slot of workgroup memory (the staging buffers,
//          reused), where the subgroup's invocations rescale and store it.
// Bounds:  dispatch (ceil(M / BM), ceil(N / BN)); Kp a multiple of 32 (with BK = 64 a last half step is zeros);
//          BM * BK / 16 and BN * BK / 16 multiples of the workgroup size, at most 8 times it; FM, FN <= 4, FM FN <= 16;
//          xq and wq padded as above; outputs past M, N are not written. The workgroup size is a multiple of the
//          subgroup size, which must be 32 (Gpu.hasInt8Matrix checks the adapter).
// (Tint's uniformity analysis is per workgroup; a subgroup's matrix operands are uniform over the subgroup, which
// it cannot see: the diagnostic is turned off, as in other subgroup-matrix kernels.)
diagnostic(off, chromium.subgroup_matrix_uniformity);
enable subgroups;
enable chromium_experimental_subgroup_matrix;

struct Params { M: u32, N: u32, K: u32, ldy: u32, colOffset: u32, flags: u32, Kp: u32 }
@group(0) @binding(0) var<storage, read> xq: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> wq: array<vec4<u32>>;
//#include linear_store.wgsl
@group(0) @binding(5) var<storage, read> xs: array<f32>;
@group(0) @binding(6) var<storage, read> ws: array<f32>;

// The tiling is set by pipeline constants (src/engine/linear_i8.ts I8Tile): FM x FN accumulators per subgroup,
// SGM x SGN subgroups per workgroup, BK bytes of k per step (32 or 64). Private arrays are sized for the largest
// tiling (16 accumulators, 4 x fragments, 8 copied vec4 per operand); the constant trip counts leave only what a
// tiling uses.
override FM: u32 = 2u; // accumulators per subgroup along M
override FN: u32 = 4u; // along N
override SGM: u32 = 4u; // subgroups per workgroup along M
override SGN: u32 = 2u; // along N
override BK: u32 = 64u; // bytes of k per step
override NAMED: bool = false; // FM = 2 and FN = 4 only: the 8 accumulators in named variables, not an array
override PROBE: u32 = 0u; // benchmarks only (`ape bench matmul --i8-tiles ...x1`): 1 = the multiplies alone, no copies
const SG = 32u; // invocations per subgroup
alias A = subgroup_matrix_result<i32, 16, 16>;
override WG: u32 = SG * SGM * SGN;
override BM: u32 = 16u * FM * SGM;
override BN: u32 = 16u * FN * SGN;
override ST: u32 = BK + 16u; // bytes per staged row (16 of padding against bank conflicts)
override SW: u32 = ST / 4u; // words per staged row
override RV: u32 = BK / 16u; // vec4 per staged row
override XL: u32 = BM * RV / WG; // vec4 of x each invocation copies per step
override WL: u32 = BN * RV / WG; // of W

// Staging (subgroupMatrixLoad takes workgroup arrays of a const size only): 24 KiB per operand, what the largest
// tilings use (2 buffers x 256 rows x 48 bytes, or x 128 rows x 80 bytes); 48 KiB in all.
const STAGE = 6144u;
var<workgroup> xst: array<i32, STAGE>; // [buffer][row][ST bytes]: x rows m0.., k bytes k0..k0+BK
var<workgroup> wst: array<i32, STAGE>; // W rows n0..

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let sg = lid / SG;
  let lane = lid % SG;
  let mTile = wg.x * BM;
  let nTile = wg.y * BN;
  let rowV = p.Kp / 16u; // vec4 per row of xq / wq
  let steps = (p.Kp + BK - 1u) / BK;
  // this invocation's copy: vec4 i * WG + lid of a tile (row (i * WG + lid) / RV, vec4 (i * WG + lid) % RV of the
  // row), zeros past Kp (a last half step)
  var rx: array<vec4<u32>, 8>;
  var rw: array<vec4<u32>, 8>;
  for (var i = 0u; i < XL; i++) {
    let c = i * WG + lid;
    let v = c % RV;
    rx[i] = select(vec4<u32>(0u), xq[(mTile + c / RV) * rowV + min(v, rowV - 1u)], v < rowV);
  }
  for (var i = 0u; i < WL; i++) {
    let c = i * WG + lid;
    let v = c % RV;
    rw[i] = select(vec4<u32>(0u), wq[(nTile + c / RV) * rowV + min(v, rowV - 1u)], v < rowV);
  }
  var acc: array<subgroup_matrix_result<i32, 16, 16>, 16>;
  var c00: A; var c01: A; var c02: A; var c03: A; var c10: A; var c11: A; var c12: A; var c13: A; // NAMED
  let am = (sg / SGN) * 16u * FM; // the subgroup's rows within the tile
  let bn = (sg % SGN) * 16u * FN; // its columns
  if (PROBE == 1u) { // the multiply rate alone: fragments loaded once, the steps' multiplies on them (wrong results)
    var a: array<subgroup_matrix_left<i8, 32, 16>, 4>;
    var b: array<subgroup_matrix_right<i8, 16, 32>, 4>;
    for (var i = 0u; i < FM; i++) { a[i] = subgroupMatrixLoad<subgroup_matrix_left<i8, 32, 16>>(&xst, (am + 16u * i) * ST, false, ST); }
    for (var j = 0u; j < FN; j++) { b[j] = subgroupMatrixLoad<subgroup_matrix_right<i8, 16, 32>>(&wst, (bn + 16u * j) * ST, true, ST); }
    for (var t = 0u; t < steps * (BK / 32u); t++) {
      for (var j = 0u; j < FN; j++) {
        for (var i = 0u; i < FM; i++) { acc[i * FN + j] = subgroupMatrixMultiplyAccumulate(a[i], b[j], acc[i * FN + j]); }
      }
    }
  }
  for (var t = 0u; t < select(steps, 0u, PROBE == 1u); t++) {
    let bx = (t % 2u) * BM * SW;
    let bw = (t % 2u) * BN * SW;
    for (var i = 0u; i < XL; i++) {
      let c = i * WG + lid;
      let o = bx + (c / RV) * SW + 4u * (c % RV);
      xst[o] = i32(rx[i].x); xst[o + 1u] = i32(rx[i].y); xst[o + 2u] = i32(rx[i].z); xst[o + 3u] = i32(rx[i].w);
    }
    for (var i = 0u; i < WL; i++) {
      let c = i * WG + lid;
      let o = bw + (c / RV) * SW + 4u * (c % RV);
      wst[o] = i32(rw[i].x); wst[o + 1u] = i32(rw[i].y); wst[o + 2u] = i32(rw[i].z); wst[o + 3u] = i32(rw[i].w);
    }
    workgroupBarrier();
    if (t + 1u < steps) { // the next step's copy, in flight while this one multiplies
      for (var i = 0u; i < XL; i++) {
        let c = i * WG + lid;
        let v = (t + 1u) * RV + c % RV;
        rx[i] = select(vec4<u32>(0u), xq[(mTile + c / RV) * rowV + min(v, rowV - 1u)], v < rowV);
      }
      for (var i = 0u; i < WL; i++) {
        let c = i * WG + lid;
        let v = (t + 1u) * RV + c % RV;
        rw[i] = select(vec4<u32>(0u), wq[(nTile + c / RV) * rowV + min(v, rowV - 1u)], v < rowV);
      }
    }
    for (var kk = 0u; kk < select(BK, 0u, NAMED); kk += 32u) {
      var a: array<subgroup_matrix_left<i8, 32, 16>, 4>;
      for (var i = 0u; i < FM; i++) {
        a[i] = subgroupMatrixLoad<subgroup_matrix_left<i8, 32, 16>>(&xst, bx * 4u + (am + 16u * i) * ST + kk, false, ST);
      }
      for (var j = 0u; j < FN; j++) {
        let b = subgroupMatrixLoad<subgroup_matrix_right<i8, 16, 32>>(&wst, bw * 4u + (bn + 16u * j) * ST + kk, true, ST);
        for (var i = 0u; i < FM; i++) {
          acc[i * FN + j] = subgroupMatrixMultiplyAccumulate(a[i], b, acc[i * FN + j]);
        }
      }
    }
    for (var kk = 0u; kk < select(0u, BK, NAMED); kk += 32u) {
      let xo = bx * 4u + am * ST + kk;
      let wo = bw * 4u + bn * ST + kk;
      let a0 = subgroupMatrixLoad<subgroup_matrix_left<i8, 32, 16>>(&xst, xo, false, ST);
      let a1 = subgroupMatrixLoad<subgroup_matrix_left<i8, 32, 16>>(&xst, xo + 16u * ST, false, ST);
      var b = subgroupMatrixLoad<subgroup_matrix_right<i8, 16, 32>>(&wst, wo, true, ST);
      c00 = subgroupMatrixMultiplyAccumulate(a0, b, c00); c10 = subgroupMatrixMultiplyAccumulate(a1, b, c10);
      b = subgroupMatrixLoad<subgroup_matrix_right<i8, 16, 32>>(&wst, wo + 16u * ST, true, ST);
      c01 = subgroupMatrixMultiplyAccumulate(a0, b, c01); c11 = subgroupMatrixMultiplyAccumulate(a1, b, c11);
      b = subgroupMatrixLoad<subgroup_matrix_right<i8, 16, 32>>(&wst, wo + 32u * ST, true, ST);
      c02 = subgroupMatrixMultiplyAccumulate(a0, b, c02); c12 = subgroupMatrixMultiplyAccumulate(a1, b, c12);
      b = subgroupMatrixLoad<subgroup_matrix_right<i8, 16, 32>>(&wst, wo + 48u * ST, true, ST);
      c03 = subgroupMatrixMultiplyAccumulate(a0, b, c03); c13 = subgroupMatrixMultiplyAccumulate(a1, b, c13);
    }
    // the buffer just read is written again two steps on, after the next step's barrier: one barrier per step
  }
  workgroupBarrier(); // done with the staging buffers: they hold the epilogue's slots now
  if (NAMED) {
    acc[0] = c00; acc[1] = c01; acc[2] = c02; acc[3] = c03; acc[4] = c10; acc[5] = c11; acc[6] = c12; acc[7] = c13;
  }
  for (var f = 0u; f < FM * FN; f++) {
    subgroupMatrixStore(&xst, sg * 256u, acc[f], false, 16u);
    workgroupBarrier();
    for (var e = lane; e < 256u; e += SG) {
      let m = mTile + am + 16u * (f / FN) + e / 16u;
      let n = nTile + bn + 16u * (f % FN) + e % 16u;
      if (m < p.M && n < p.N) { store_y(m, n, f32(xst[sg * 256u + e]) * xs[m] * ws[p.colOffset + n]); }
    }
    workgroupBarrier();
  }
}
