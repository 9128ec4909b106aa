// quant_bytes: reading bytes, halves and nibbles out of a quantized weight buffer `w: array<u32>` (the
// kernel's binding), shared by the block-format kernels (matvec, matvec_rows, matmul, dequant) through
// `//#include quant_bytes.wgsl`.
// Blocks need not start on a 4-byte boundary.
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
// small non-negative integers (< 2^23) to f32 without integer-to-float conversions (a quarter-rate
// instruction on NVIDIA GPUs): the float whose bits are 0x4B000000 | u is exactly 2^23 + u
const MAGIC = 0x4B000000u;
fn u2f4(u: vec4<u32>) -> vec4<f32> { return bitcast<vec4<f32>>(u | vec4<u32>(MAGIC)) - vec4<f32>(8388608.0); }
// the low nibbles / low 2 bits / unsigned / signed values of the 4 bytes of v, as f32
fn nib4(v: u32) -> vec4<f32> { return u2f4(vec4<u32>(v, v >> 8u, v >> 16u, v >> 24u) & vec4<u32>(15u)); }
fn two4(v: u32) -> vec4<f32> { return vec4<f32>(vec4<u32>(v & 3u, (v >> 8u) & 3u, (v >> 16u) & 3u, (v >> 24u) & 3u)); }
// (signed: flipping the sign bit maps -128..127 to 0..255, then 128 comes off)
fn sbytes4(v: u32) -> vec4<f32> {
  let u = (vec4<u32>(v, v >> 8u, v >> 16u, v >> 24u) & vec4<u32>(255u)) ^ vec4<u32>(128u);
  return u2f4(u) - vec4<f32>(128.0);
}
// bit i of h (i = 0..3) as 16.0 or 0.0: the fifth bit of Q5 quants
fn hbit4(h: u32) -> vec4<f32> { return vec4<f32>(vec4<u32>(h & 1u, (h >> 1u) & 1u, (h >> 2u) & 1u, (h >> 3u) & 1u)) * 16.0; }
