// block_q5_1: the GGUF Q5_1 block decoder shared by matvec_q5_1, matvec_rows_q5_1, matmul_q5_1 and dequant_q5_1
// (through `//#include block_q5_1.wgsl`): deq8(rb, k) gives weights k..k+7 (k a multiple of 8) of the row that
// starts at byte rb of `w`, as two vec4<f32>. Needs quant_bytes.wgsl and the kernel's BLOCK / BLOCK_BYTES.
struct V8 { lo: vec4<f32>, hi: vec4<f32> }

// elements k..k+7 (k a multiple of 8) of the row starting at byte rb
fn deq8(rb: u32, k: u32) -> V8 {
  let bo = rb + (k >> 5u) * 24u;
  let d = f16_at(bo);
  let m = f16_at(bo + 2u);
  let j = k & 31u;
  let h = u32_at(bo + 4u) >> j;
  let q = bo + 8u + (j & 15u);
  let s = (j >> 4u) << 2u;
  return V8((nib4(u32_at(q) >> s) + hbit4(h)) * d + m, (nib4(u32_at(q + 4u) >> s) + hbit4(h >> 4u)) * d + m);
}
