// matvec_q4_1: the decode-time linear layer for a single row, y[colOffset + n] = sum_k x[k] * W[n, k]
// (+ bias[colOffset + n]), with W kept as GGUF Q4_1 blocks in GPU memory and dequantized on the fly
// (f32 accumulation). W is HF-shaped (out x in), possibly one row chunk of a larger matrix.
// Inputs:  x: array<vec4<f32>> [K/4]; w: array<u32>, the chunk's raw blocks: row n starts at byte
//          n * (K/32) * 20, rows contiguous, plus >= 4 bytes of padding at the end;
//          bias: array<f32> (read only when flags bit 0 set); params (same struct as matvec_f32; M must be 1).
//          20-byte blocks of 32: f16 d, f16 m, qs[16] (nibbles as Q4_0); x = d * q + m.
// Outputs: y: array<f32>, entries colOffset .. colOffset+N-1.
// Layout:  256 threads = 8 output rows x 32 lanes; each lane decodes 8 consecutive weights at a time
//          (lane-strided over K), then the lanes reduce in workgroup memory.
// Bounds:  K a multiple of 32; dispatch (min(ceil(N/8), 65535), ceil(ceil(N/8)/65535)); rows n >= N are masked.
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused); bits 2, 3 = SwiGLU or
//        RMSNorm of the input on the fly (x is read through shaders/include/matvec_input.wgsl).
struct Params { M: u32, N: u32, K: u32, ldy: u32, colOffset: u32, flags: u32, eps: f32 }
const WG_SIZE = 256u;
//#include matvec_input.wgsl
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

const BLOCK = 32u;
const BLOCK_BYTES = 20u;

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
  let bo = rb + (k >> 5u) * 20u;
  let d = f16_at(bo);
  let m = f16_at(bo + 2u);
  let j = k & 31u;
  let q = bo + 4u + (j & 15u);
  let s = (j >> 4u) << 2u;
  return V8(nib4(u32_at(q) >> s) * d + m, nib4(u32_at(q + 4u) >> s) * d + m);
}

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  input_prepare(lid.x);
  let lane = lid.x % 32u;
  let sub = lid.x / 32u;
  let n = (wg.x + wg.y * 65535u) * 8u + sub;
  var s = 0.0;
  if (n < p.N) {
    let rb = n * (p.K / BLOCK) * BLOCK_BYTES;
    for (var k = lane * 8u; k < p.K; k += 256u) {
      let v = deq8(rb, k);
      s += dot(v.lo, xin4(k / 4u));
      s += dot(v.hi, xin4(k / 4u + 1u));
    }
  }
  partial[lid.x] = s;
  workgroupBarrier();
  for (var step = 16u; step > 0u; step >>= 1u) {
    if (lane < step) { partial[lid.x] += partial[lid.x + step]; }
    workgroupBarrier();
  }
  if (lane == 0u && n < p.N) {
    var v = partial[lid.x];
    if ((p.flags & 1u) != 0u) { v += bias[p.colOffset + n]; }
    if ((p.flags & 2u) != 0u) { v += y[p.colOffset + n]; }
    y[p.colOffset + n] = v;
  }
}
