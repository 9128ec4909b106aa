// matmul_f32: y[m, colOffset + n] = sum_k x[m, k] * W[n, k] (+ bias[colOffset + n]) — a linear layer
// for prefill (many rows), W stored f32 as in HF (out x in). W may be one row chunk of a larger
// matrix (colOffset = the chunk's first row) when it exceeds the binding-size limit.
// Inputs:  x: array<f32> [M, K]; w: array<f32> [N, K] (this chunk); bias: array<f32> [ldy] (bound
//          always; read only when hasBias = 1); params.
// Outputs: y: array<f32> [M, ldy], columns colOffset .. colOffset+N-1 written.
// Layout:  64x64 output tile per workgroup, 16x16 threads each computing 4x4, K in steps of 16
//          through workgroup memory.
// Bounds:  dispatch (ceil(N/64), ceil(M/64)); out-of-range rows/cols are masked.
struct Params { M: u32, N: u32, K: u32, ldy: u32, colOffset: u32, hasBias: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

const TILE = 64u;
const TK = 16u;
var<workgroup> xs: array<f32, 1024>; // [TILE][TK]
var<workgroup> ws: array<f32, 1024>; // [TILE][TK]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row0 = wg.y * TILE;
  let col0 = wg.x * TILE;
  let t = lid.y * 16u + lid.x;
  var acc: array<f32, 16>;
  for (var i = 0u; i < 16u; i++) { acc[i] = 0.0; }
  for (var k0 = 0u; k0 < p.K; k0 += TK) {
    for (var i = 0u; i < 4u; i++) {
      let idx = t + i * 256u;
      let r = idx / TK;
      let c = idx % TK;
      let kk = k0 + c;
      var xv = 0.0;
      if (row0 + r < p.M && kk < p.K) { xv = x[(row0 + r) * p.K + kk]; }
      xs[idx] = xv;
      var wv = 0.0;
      if (col0 + r < p.N && kk < p.K) { wv = w[(col0 + r) * p.K + kk]; }
      ws[idx] = wv;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) {
        a[i] = xs[(lid.y * 4u + i) * TK + kk];
        b[i] = ws[(lid.x * 4u + i) * TK + kk];
      }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i * 4u + j] += a[i] * b[j]; }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let m = row0 + lid.y * 4u + i;
    if (m >= p.M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let n = col0 + lid.x * 4u + j;
      if (n >= p.N) { continue; }
      var v = acc[i * 4u + j];
      if (p.hasBias == 1u) { v += bias[p.colOffset + n]; }
      y[m * p.ldy + p.colOffset + n] = v;
    }
  }
}
