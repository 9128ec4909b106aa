// matvec_rows_body: main() of every matvec_rows_<format> kernel: the linear layer shaped for CPU adapters
// (lavapipe), for any number of rows (decode's one row and prefill's many), y[m, colOffset + n] =
// sum_k x[m, k] * W[n, k] (+ bias[colOffset + n], + the old y with flags bit 1: the fused residual add).
// lavapipe runs a workgroup's invocations as 8-wide SIMD lanes on one CPU thread, and every load from a
// buffer (global or workgroup memory alike) is a per-lane gather costing about a nanosecond per value,
// while the FMAs cost a small fraction of that: what counts is FMAs per loaded value. So each invocation
// computes a TM x TN block of outputs (TM rows of x, TN = 4, 8 or 16 rows of W) straight from global memory,
// no workgroup memory or barriers: per step of 8 along k it loads 2 vec4 of each of its TM x rows and 8
// weights of each of its TN W rows (decoded in place from the block format: no f32 scratch), for
// 8 * TM * TN FMAs, as vector-matrix products: row i's accumulator a_i (columns n0..n0+3) += xa * Wlo +
// xb * Whi, Wlo / Whi the 4 x 4 matrices of the 4 columns' weights. Accumulators are named variables and
// every TM / TN branch folds away with the constants (an array indexed in a loop stays in memory on
// lavapipe, where each access is a gather: 3x slower).
// The format's file binds w (binding 1) and defines
//   W8                      8 weights as loaded (fields lo, hi: two vec4 of f32, or of f16 for f16c),
//   row_base(n) -> u32      where W's row n starts, in the unit load8 takes,
//   load8(rb, k) -> W8      step k's 8 weights of the row at rb (k a multiple of 8): those at x's vec4
//                           xpos(k).x (lo) and xpos(k).y (hi) of a row,
//   xpos(k) -> vec2<u32>    (k / 4, k / 4 + 1) for formats that hand out weights k..k+7 in order; a
//                           format whose block holds them otherwise (Q4_1's nibbles) takes its own order,
//                           so that each loaded word serves 8 weights,
//   M4                      the 4 x 4 matrix type of 4 columns' weights (mat4x4<f32>, or <f16>),
//   xdot(xa, xb, lo, hi) -> vec4<f32>   xa * lo + xb * hi (the products of 4 columns, as f32).
// Override constants (chosen by src/engine/linear.ts rowsShape): TM in 1..8 rows, TN 4, 8 or 16 columns, WG
// invocations per workgroup.
// Bounds: dispatch (ceil(ceil(N / TN) / WG), ceil(M / TM)); rows past M and columns past N read row M - 1 /
// N - 1 (in bounds) and are not stored. K a multiple of 4 (a last half-step of 4 reads zeros for the other 4).
struct Params { M: u32, N: u32, K: u32, ldy: u32, colOffset: u32, flags: u32 }
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
//#include linear_store.wgsl

override TM: u32 = 1u;
override TN: u32 = 4u;
override WG: u32 = 8u;

struct W4 { lo: M4, hi: M4 }
// 4 columns' weights k..k+7 (rows at rb.x .. rb.w) as two matrices, a column per W row
fn load_w4(rb: vec4<u32>, k: u32) -> W4 {
  let a = load8(rb.x, k);
  let b = load8(rb.y, k);
  let c = load8(rb.z, k);
  let d = load8(rb.w, k);
  return W4(M4(a.lo, b.lo, c.lo, d.lo), M4(a.hi, b.hi, c.hi, d.hi));
}
fn col_bases(n: u32) -> vec4<u32> {
  let last = p.N - 1u;
  return vec4<u32>(row_base(min(n, last)), row_base(min(n + 1u, last)), row_base(min(n + 2u, last)), row_base(min(n + 3u, last)));
}
// x row m's values k..k+7 as two vec4 (zeros past K), accumulated into a (columns n0..+3), b (n0+4..+7),
// c and d (n0+8..+15)
struct Acc { a: vec4<f32>, b: vec4<f32>, c: vec4<f32>, d: vec4<f32> }
struct W16 { a: W4, b: W4, c: W4, d: W4 }
fn step(acc: Acc, m: u32, k: u32, xp: vec2<u32>, w: W16) -> Acc {
  let o = min(m, p.M - 1u) * (p.K / 4u);
  let xa = x[o + xp.x];
  let xb = select(vec4<f32>(0.0), x[o + xp.y], k + 4u < p.K);
  var r = acc;
  r.a += xdot(xa, xb, w.a.lo, w.a.hi);
  if (TN > 4u) { r.b += xdot(xa, xb, w.b.lo, w.b.hi); }
  if (TN > 8u) {
    r.c += xdot(xa, xb, w.c.lo, w.c.hi);
    r.d += xdot(xa, xb, w.d.lo, w.d.hi);
  }
  return r;
}
fn store_row(m: u32, n0: u32, acc: Acc) {
  if (m >= p.M) { return; }
  for (var j = 0u; j < TN; j++) {
    let v = select(select(acc.a, acc.b, j >= 4u), select(acc.c, acc.d, j >= 12u), j >= 8u);
    if (n0 + j < p.N) { store_y(m, n0 + j, v[j & 3u]); }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n0 = gid.x * TN;
  let m0 = gid.y * TM;
  if (n0 >= p.N) { return; }
  let ra = col_bases(n0);
  let rb = col_bases(n0 + 4u);
  let rc = col_bases(n0 + 8u);
  let rd = col_bases(n0 + 12u);
  let z = Acc(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
  var a0 = z; var a1 = z; var a2 = z; var a3 = z; var a4 = z; var a5 = z; var a6 = z; var a7 = z;
  for (var k = 0u; k < p.K; k += 8u) {
    var w: W16;
    w.a = load_w4(ra, k);
    if (TN > 4u) { w.b = load_w4(rb, k); }
    if (TN > 8u) {
      w.c = load_w4(rc, k);
      w.d = load_w4(rd, k);
    }
    let xp = xpos(k);
    a0 = step(a0, m0, k, xp, w);
    if (TM > 1u) { a1 = step(a1, m0 + 1u, k, xp, w); }
    if (TM > 2u) { a2 = step(a2, m0 + 2u, k, xp, w); }
    if (TM > 3u) { a3 = step(a3, m0 + 3u, k, xp, w); }
    if (TM > 4u) { a4 = step(a4, m0 + 4u, k, xp, w); }
    if (TM > 5u) { a5 = step(a5, m0 + 5u, k, xp, w); }
    if (TM > 6u) { a6 = step(a6, m0 + 6u, k, xp, w); }
    if (TM > 7u) { a7 = step(a7, m0 + 7u, k, xp, w); }
  }
  store_row(m0, n0, a0);
  if (TM > 1u) { store_row(m0 + 1u, n0, a1); }
  if (TM > 2u) { store_row(m0 + 2u, n0, a2); }
  if (TM > 3u) { store_row(m0 + 3u, n0, a3); }
  if (TM > 4u) { store_row(m0 + 4u, n0, a4); }
  if (TM > 5u) { store_row(m0 + 5u, n0, a5); }
  if (TM > 6u) { store_row(m0 + 6u, n0, a6); }
  if (TM > 7u) { store_row(m0 + 7u, n0, a7); }
}
