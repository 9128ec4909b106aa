// block_q8_0: the GGUF Q8_0 block decoder shared by matvec_q8_0, matvec_rows_q8_0, matmul_q8_0 and dequant_q8_0
// (through `//#include block_q8_0.wgsl`): deq8(rb, k) gives weights k..k+7 (k a multiple of 8) of the row that
// starts at byte rb of `w`, as two vec4<f32>. Needs quant_bytes.wgsl and the kernel's BLOCK / BLOCK_BYTES.
struct V8 { lo: vec4<f32>, hi: vec4<f32> }

// elements k..k+7 (k a multiple of 8) of the row starting at byte rb
fn deq8(rb: u32, k: u32) -> V8 {
  let bo = rb + (k >> 5u) * 34u;
  let d = f16_at(bo);
  let q = bo + 2u + (k & 31u);
  return V8(sbytes4(u32_at(q)) * d, sbytes4(u32_at(q + 4u)) * d);
}
