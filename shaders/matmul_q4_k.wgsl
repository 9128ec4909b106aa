// matmul_q4_k: y[m, colOffset + n] = sum_k x[m, k] * W[n, k] (+ bias[colOffset + n]) — a linear layer
// for prefill (many rows), with W kept as GGUF Q4_K blocks in GPU memory and dequantized on the fly
// into workgroup memory (f32 accumulation). W is HF-shaped (out x in), possibly one row chunk of a larger
// matrix (colOffset = the chunk's first row).
// Inputs:  x: array<f32> [M, K]; w: array<u32>, the chunk's raw blocks: row n starts at byte
//          n * (K/256) * 144, rows contiguous, plus >= 4 bytes of padding at the end;
//          bias: array<f32> [ldy] (bound always; read only when flags bit 0 set); params.
//          144-byte super-blocks of 256: f16 d, f16 dmin, scales[12] (8 six-bit scales and mins), qs[128]; element e is in sub-block e/32 and is the nibble (low for even sub-blocks) of qs[32*(e/64) + e%32]; x = d*sc*q - dmin*m.
// Outputs: y: array<f32> [M, ldy], columns colOffset .. colOffset+N-1 written.
// Layout:  64x64 output tile per workgroup, 16x16 threads each computing 4x4; K in steps of 32: each
//          thread stages 8 activations and decodes 8 weights (row t/4, elements 8*(t%4)..) per step.
// Bounds:  K a multiple of 256; dispatch (ceil(N/64), ceil(M/64)); out-of-range rows/cols are masked.
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused).
struct Params { M: u32, N: u32, K: u32, ldy: u32, colOffset: u32, flags: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

const BLOCK = 256u;
const BLOCK_BYTES = 144u;

// ---- reading bytes out of u32 words (blocks need not start on a 4-byte boundary) ----
// byte o of the chunk
fn byte_at(o: u32) -> u32 { return (w[o >> 2u] >> ((o & 3u) << 3u)) & 0xffu; }
// the f16 at byte o (o even: never straddles two words)
fn f16_at(o: u32) -> f32 { return unpack2x16float(w[o >> 2u] >> ((o & 2u) << 3u)).x; }
// the 4 bytes at o (any alignment; may read the word after them: chunks carry 4 bytes of padding)
fn u32_at(o: u32) -> u32 {
  let s = (o & 3u) << 3u;
  // (next << (31 - s)) << 1 is 0 when s = 0: no shift by 32, which WGSL would reduce mod 32
  return (w[o >> 2u] >> s) | ((w[(o >> 2u) + 1u] << (31u - s)) << 1u);
}
// the low nibbles / low 2 bits / unsigned / signed values of the 4 bytes of v, as f32
fn nib4(v: u32) -> vec4<f32> { return vec4<f32>(vec4<u32>(v & 15u, (v >> 8u) & 15u, (v >> 16u) & 15u, (v >> 24u) & 15u)); }
fn two4(v: u32) -> vec4<f32> { return vec4<f32>(vec4<u32>(v & 3u, (v >> 8u) & 3u, (v >> 16u) & 3u, (v >> 24u) & 3u)); }
fn sbytes4(v: u32) -> vec4<f32> {
  let s = bitcast<i32>(v);
  return vec4<f32>(vec4<i32>((s << 24u) >> 24u, (s << 16u) >> 24u, (s << 8u) >> 24u, s >> 24u));
}
// bit i of h (i = 0..3) as 16.0 or 0.0: the fifth bit of Q5 quants
fn hbit4(h: u32) -> vec4<f32> { return vec4<f32>(vec4<u32>(h & 1u, (h >> 1u) & 1u, (h >> 2u) & 1u, (h >> 3u) & 1u)) * 16.0; }

struct V8 { lo: vec4<f32>, hi: vec4<f32> }

// elements k..k+7 (k a multiple of 8) of the row starting at byte rb
fn deq8(rb: u32, k: u32) -> V8 {
  let bo = rb + (k >> 8u) * 144u;
  let e = k & 255u;
  let sub = e >> 5u;
  var sc: u32;
  var mn: u32;
  if (sub < 4u) {
    sc = byte_at(bo + 4u + sub) & 63u;
    mn = byte_at(bo + 8u + sub) & 63u;
  } else {
    let b = byte_at(bo + 8u + sub);
    sc = (b & 15u) | ((byte_at(bo + sub) >> 6u) << 4u);
    mn = (b >> 4u) | ((byte_at(bo + 4u + sub) >> 6u) << 4u);
  }
  let scale = f16_at(bo) * f32(sc);
  let mv = f16_at(bo + 2u) * f32(mn);
  let q = bo + 16u + 32u * (e >> 6u) + (e & 31u);
  let s = (sub & 1u) << 2u;
  return V8(nib4(u32_at(q) >> s) * scale - mv, nib4(u32_at(q + 4u) >> s) * scale - mv);
}

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
      var v = acc[i * 4u + j];
      if ((p.flags & 1u) != 0u) { v += bias[p.colOffset + n]; }
      if ((p.flags & 2u) != 0u) { v += y[m * p.ldy + p.colOffset + n]; }
      y[m * p.ldy + p.colOffset + n] = v;
    }
  }
}
