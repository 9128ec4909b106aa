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
// the low nibbles / low 2 bits / unsigned / signed values of the 4 bytes of v, as f32
fn nib4(v: u32) -> vec4<f32> { return vec4<f32>(vec4<u32>(v & 15u, (v >> 8u) & 15u, (v >> 16u) & 15u, (v >> 24u) & 15u)); }
fn two4(v: u32) -> vec4<f32> { return vec4<f32>(vec4<u32>(v & 3u, (v >> 8u) & 3u, (v >> 16u) & 3u, (v >> 24u) & 3u)); }
fn sbytes4(v: u32) -> vec4<f32> {
  let s = bitcast<i32>(v);
  return vec4<f32>(vec4<i32>((s << 24u) >> 24u, (s << 16u) >> 24u, (s << 8u) >> 24u, s >> 24u));
}
// bit i of h (i = 0..3) as 16.0 or 0.0: the fifth bit of Q5 quants
fn hbit4(h: u32) -> vec4<f32> { return vec4<f32>(vec4<u32>(h & 1u, (h >> 1u) & 1u, (h >> 2u) & 1u, (h >> 3u) & 1u)) * 16.0; }
