// matmul_f16: y[m, colOffset + n] = sum_k x[m, k] * W[n, k] (+ bias[colOffset + n]) — a linear layer
// for prefill (many rows), W stored as IEEE half floats (out x in, as in HF), computed in f32: halves
// the weight bytes of f32 storage and is exact for checkpoints stored in f16. W may be one row chunk of a larger
// matrix (colOffset = the chunk's first row) when it exceeds the binding-size limit.
// Inputs:  x: array<vec4<f32>> [M, K/4]; w: array<vec2<u32>> [N, K/4], each vec2 holding 4 packed
//          halves (this chunk; K is a multiple of 4, plus >= 4 bytes of padding); bias: array<f32> (bound always; read only when flags bit 0 set); params.
// Outputs: y: array<f32> [M, ldy], columns colOffset .. colOffset+N-1 written.
// Layout:  a 64x64 output tile per workgroup of 16x16 threads, each computing 4 rows x 4 columns with
//          vec4 FMAs; K advances 32 at a time through workgroup memory, stored k-major so each inner
//          step reads one vec4 of x rows and one vec4 of W rows.
// Bounds:  dispatch (ceil(N/64), ceil(M/64)); out-of-range rows/cols/k are zero-filled and not written.
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused).
struct Params { M: u32, N: u32, K: u32, ldy: u32, colOffset: u32, flags: u32 }
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

const TILE = 64u;
const TK = 32u;
var<workgroup> xs: array<vec4<f32>, 512>; // [TK][TILE/4]: xs[k*16 + m/4][m%4] = x[row0+m, k0+k]
var<workgroup> ws: array<vec4<f32>, 512>; // [TK][TILE/4]: ws[k*16 + n/4][n%4] = W[col0+n, k0+k]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row0 = wg.y * TILE;
  let col0 = wg.x * TILE;
  let t = lid.y * 16u + lid.x;
  let k4 = p.K / 4u;
  var acc: array<vec4<f32>, 4>;
  for (var i = 0u; i < 4u; i++) { acc[i] = vec4<f32>(0.0); }
  for (var k0 = 0u; k0 < p.K; k0 += TK) {
    // 64 rows x 8 vec4 of k per operand = 512 vec4: two per thread
    for (var j = 0u; j < 2u; j++) {
      let idx = t + j * 256u;
      let r = idx / 8u;
      let kq = idx % 8u;
      let kv = k0 / 4u + kq;
      var xv = vec4<f32>(0.0);
      if (row0 + r < p.M && kv < k4) { xv = x[(row0 + r) * k4 + kv]; }
      var wv = vec4<f32>(0.0);
      if (col0 + r < p.N && kv < k4) {
        let h = w[(col0 + r) * k4 + kv];
        wv = vec4<f32>(unpack2x16float(h.x), unpack2x16float(h.y));
      }
      for (var c = 0u; c < 4u; c++) {
        xs[(kq * 4u + c) * 16u + r / 4u][r % 4u] = xv[c];
        ws[(kq * 4u + c) * 16u + r / 4u][r % 4u] = wv[c];
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      let a = xs[kk * 16u + lid.y];
      let b = ws[kk * 16u + lid.x];
      acc[0] += a.x * b;
      acc[1] += a.y * b;
      acc[2] += a.z * b;
      acc[3] += a.w * b;
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let m = row0 + lid.y * 4u + i;
    if (m >= p.M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let n = col0 + lid.x * 4u + j;
      if (n >= p.N) { continue; }
      var v = acc[i][j];
      if ((p.flags & 1u) != 0u) { v += bias[p.colOffset + n]; }
      if ((p.flags & 2u) != 0u) { v += y[m * p.ldy + p.colOffset + n]; }
      y[m * p.ldy + p.colOffset + n] = v;
    }
  }
}
