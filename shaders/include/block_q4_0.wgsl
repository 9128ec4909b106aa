// block_q4_0: the GGUF Q4_0 block decoder shared by matvec_q4_0, matvec_rows_q4_0, matmul_q4_0 and dequant_q4_0
// (through `//#include block_q4_0.wgsl`): deq8(rb, k) gives weights k..k+7 (k a multiple of 8) of the row that
// starts at byte rb of `w`, as two vec4<f32>. Needs quant_bytes.wgsl and the kernel's BLOCK / BLOCK_BYTES.
struct V8 { lo: vec4<f32>, hi: vec4<f32> }

// elements k..k+7 (k a multiple of 8) of the row starting at byte rb
fn deq8(rb: u32, k: u32) -> V8 {
  let bo = rb + (k >> 5u) * 18u;
  let d = f16_at(bo);
  let j = k & 31u;
  let q = bo + 2u + (j & 15u);
  let s = (j >> 4u) << 2u;
  return V8((nib4(u32_at(q) >> s) - 8.0) * d, (nib4(u32_at(q + 4u) >> s) - 8.0) * d);
}
