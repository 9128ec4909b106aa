// block_q6_k: the GGUF Q6_K block decoder shared by matvec_q6_k, matvec_rows_q6_k, matmul_q6_k and dequant_q6_k
// (through `//#include block_q6_k.wgsl`): deq8(rb, k) gives weights k..k+7 (k a multiple of 8) of the row that
// starts at byte rb of `w`, as two vec4<f32>. Needs quant_bytes.wgsl and the kernel's BLOCK / BLOCK_BYTES.
struct V8 { lo: vec4<f32>, hi: vec4<f32> }

// elements k..k+7 (k a multiple of 8) of the row starting at byte rb
fn deq8(rb: u32, k: u32) -> V8 {
  let bo = rb + (k >> 8u) * 210u;
  let e = k & 255u;
  let n = e >> 7u;
  let t = (e >> 5u) & 3u;
  let l = e & 31u;
  let ql = bo + 64u * n + l + ((t & 1u) << 5u);
  let qh = bo + 128u + 32u * n + l;
  let ls = (t >> 1u) << 2u;
  let hs = t << 1u;
  let sc = f32((bitcast<i32>(byte_at(bo + 192u + (e >> 4u))) << 24u) >> 24u);
  let d = f16_at(bo + 208u) * sc;
  let lo = nib4(u32_at(ql) >> ls) + two4(u32_at(qh) >> hs) * 16.0 - 32.0;
  let hi = nib4(u32_at(ql + 4u) >> ls) + two4(u32_at(qh + 4u) >> hs) * 16.0 - 32.0;
  return V8(lo * d, hi * d);
}
