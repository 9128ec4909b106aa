// matmul_float_body: the prefill matmul shared by matmul_f32 and matmul_f16 (f32 math): the including
// file binds w (binding 1) and defines load_w4(i): W's i-th group of 4 weights as vec4<f32>. See
// matmul_f32.wgsl's header for the inputs, outputs, layout and bounds.
struct Params { M: u32, N: u32, K: u32, ldy: u32, colOffset: u32, flags: u32 }
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
//#include linear_store.wgsl

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
      if (col0 + r < p.N && kv < k4) { wv = load_w4((col0 + r) * k4 + kv); }
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
      store_y(m, n, acc[i][j]);
    }
  }
}
