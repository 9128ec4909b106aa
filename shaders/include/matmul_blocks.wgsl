// matmul_blocks: the body shared by every matmul_<format> kernel of the GGUF block formats:
// the prefill kernel (64x64 output tiles).
// A format's file declares BLOCK (weights per block) and BLOCK_BYTES and includes its block decoder
// (block_<format>.wgsl: deq8) before this; the header comment of each matmul_<format>.wgsl states
// the inputs, outputs, layout and bounds.
struct Params { M: u32, N: u32, K: u32, ldy: u32, colOffset: u32, flags: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<u32>;
//#include linear_store.wgsl

//#include quant_bytes.wgsl

const TILE = 64u;
const TK = 32u;
var<workgroup> xs: array<f32, 2048>; // [TILE][TK]
var<workgroup> ws: array<f32, 2048>; // [TILE][TK]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row0 = wg.y * TILE;
  let col0 = wg.x * TILE;
  let t = lid.y * 16u + lid.x;
  let rowBytes = (p.K / BLOCK) * BLOCK_BYTES;
  let wr = t / 4u;
  let wk = (t % 4u) * 8u;
  let wn = col0 + wr;
  let live = row0 + lid.y * 4u < p.M;
  var acc: array<f32, 16>;
  for (var i = 0u; i < 16u; i++) { acc[i] = 0.0; }
  for (var k0 = 0u; k0 < p.K; k0 += TK) {
    for (var i = 0u; i < 8u; i++) {
      let idx = t + i * 256u;
      let r = idx / TK;
      var xv = 0.0;
      if (row0 + r < p.M) { xv = x[(row0 + r) * p.K + k0 + idx % TK]; }
      xs[idx] = xv;
    }
    var v = V8(vec4<f32>(0.0), vec4<f32>(0.0));
    if (wn < p.N) { v = deq8(wn * rowBytes, k0 + wk); }
    let wo = wr * TK + wk;
    ws[wo] = v.lo.x; ws[wo + 1u] = v.lo.y; ws[wo + 2u] = v.lo.z; ws[wo + 3u] = v.lo.w;
    ws[wo + 4u] = v.hi.x; ws[wo + 5u] = v.hi.y; ws[wo + 6u] = v.hi.z; ws[wo + 7u] = v.hi.w;
    workgroupBarrier();
    // Threads whose 4 rows all lie past M (short prefills) skip the arithmetic (no barrier inside).
    if (live) {
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
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let m = row0 + lid.y * 4u + i;
    if (m >= p.M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let n = col0 + lid.x * 4u + j;
      if (n >= p.N) { continue; }
      store_y(m, n, acc[i * 4u + j]);
    }
  }
}
