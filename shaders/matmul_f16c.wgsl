// matmul_f16c: y[m, colOffset + n] = sum_k x[m, k] * W[n, k] (+ bias[colOffset + n]) — a linear layer for
// prefill (many rows), W stored as IEEE half floats (out x in, as in HF), computed in f16 (needs the device
// feature shader-f16): x is rounded to f16 as it enters workgroup memory, products are vec4<f16> FMAs, and
// each output's f16 partial (4 lanes of 8 products each, one tile step of 32 k) is promoted to f32 and
// accumulated in f32, so long rows neither overflow nor drift. Inputs beyond the f16 range (|x| > 65504)
// become infinities. Mirrors matmul_f16 (f32 compute); W may be one row chunk of a larger matrix
// (colOffset = the chunk's first row) when it exceeds the binding-size limit.
// Inputs:  x: array<vec4<f32>> [M, K/4]; w: array<vec4<f16>> [N, K/4] (this chunk; K a multiple of 4; the
//          bytes matmul_f16 reads as vec2<u32>, plus >= 4 bytes of padding); bias: array<f32> (bound
//          always; read only when flags bit 0 set); params.
// Outputs: y: array<f32> [M, ldy], columns colOffset .. colOffset+N-1 written.
// Layout:  a 64x64 output tile per workgroup of 16x16 threads; thread (tx, ty) computes rows ty + 16i and
//          columns tx + 16j (i, j < 4), so its writes coalesce. K advances 32 at a time through workgroup
//          memory stored row-major in vec4<f16> of 4 consecutive k, rows padded to 9 vec4 (72 bytes) so
//          the 16 threads reading 16 different W rows hit distinct banks.
// Bounds:  dispatch (ceil(N/64), ceil(M/64)); out-of-range rows/cols/k are zero-filled and not written.
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused).
enable f16;

struct Params { M: u32, N: u32, K: u32, ldy: u32, colOffset: u32, flags: u32 }
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<vec4<f16>>;
//#include linear_store.wgsl

const TILE = 64u;
const TK = 32u;
const RS = 9u; // row stride in vec4<f16>: TK/4 = 8, plus one of padding
var<workgroup> xs: array<vec4<f16>, 576>; // [TILE][RS]: xs[m*RS + q] = x[row0+m, k0+4q .. k0+4q+3]
var<workgroup> ws: array<vec4<f16>, 576>; // [TILE][RS]: ws[n*RS + q] = W[col0+n, k0+4q .. k0+4q+3]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row0 = wg.y * TILE;
  let col0 = wg.x * TILE;
  let t = lid.y * 16u + lid.x;
  let k4 = p.K / 4u;
  var acc: array<vec4<f32>, 4>; // acc[i][j]: row ty + 16i, column tx + 16j
  for (var i = 0u; i < 4u; i++) { acc[i] = vec4<f32>(0.0); }
  for (var k0 = 0u; k0 < p.K; k0 += TK) {
    // 64 rows x 8 vec4 of k per operand = 512 vec4: two per thread
    for (var j = 0u; j < 2u; j++) {
      let idx = t + j * 256u;
      let r = idx / 8u;
      let q = idx % 8u;
      let kv = k0 / 4u + q;
      var xv = vec4<f16>(0.0h);
      if (row0 + r < p.M && kv < k4) { xv = vec4<f16>(x[(row0 + r) * k4 + kv]); }
      var wv = vec4<f16>(0.0h);
      if (col0 + r < p.N && kv < k4) { wv = w[(col0 + r) * k4 + kv]; }
      xs[r * RS + q] = xv;
      ws[r * RS + q] = wv;
    }
    workgroupBarrier();
    var part = array<vec4<f16>, 16>(); // part[i*4 + j]: f16 lane partials of this tile step, from zero
    var a: array<vec4<f16>, 4>;
    var b: array<vec4<f16>, 4>;
    for (var q = 0u; q < TK / 4u; q++) {
      for (var i = 0u; i < 4u; i++) {
        a[i] = xs[(lid.y + 16u * i) * RS + q];
        b[i] = ws[(lid.x + 16u * i) * RS + q];
      }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { part[i * 4u + j] += a[i] * b[j]; }
      }
    }
    for (var i = 0u; i < 4u; i++) {
      for (var j = 0u; j < 4u; j++) { acc[i][j] += dot(vec4<f32>(part[i * 4u + j]), vec4<f32>(1.0)); }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let m = row0 + lid.y + 16u * i;
    if (m >= p.M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let n = col0 + lid.x + 16u * j;
      if (n >= p.N) { continue; }
      store_y(m, n, acc[i][j]);
    }
  }
}
