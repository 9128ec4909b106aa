// block_q4_k: the GGUF Q4_K block decoder shared by matvec_q4_k, matvec_rows_q4_k, matmul_q4_k and dequant_q4_k
// (through `//#include block_q4_k.wgsl`): deq8(rb, k) gives weights k..k+7 (k a multiple of 8) of the row that
// starts at byte rb of `w`, as two vec4<f32>. Needs quant_bytes.wgsl and the kernel's BLOCK / BLOCK_BYTES.
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
