// block_q4_1: the GGUF Q4_1 block decoder shared by matvec_q4_1, matvec_rows_q4_1, matmul_q4_1 and dequant_q4_1
// (through `//#include block_q4_1.wgsl`): deq8(rb, k) gives weights k..k+7 (k a multiple of 8) of the row that
// starts at byte rb of `w`, as two vec4<f32>. Needs quant_bytes.wgsl and the kernel's BLOCK / BLOCK_BYTES.
struct V8 { lo: vec4<f32>, hi: vec4<f32> }

// elements k..k+7 (k a multiple of 8) of the row starting at byte rb: 20-byte blocks are whole words,
// so three aligned word loads: (d, m), and the two words of nibbles (low nibbles for the block's first
// 16 weights, high nibbles for the last 16)
fn deq8(rb: u32, k: u32) -> V8 {
  let bo = (rb >> 2u) + (k >> 5u) * 5u;
  let dm = unpack2x16float(w[bo]);
  let j = (k >> 3u) & 3u;
  let qw = bo + 1u + (j & 1u) * 2u;
  let sh = (j >> 1u) * 4u;
  return V8(nib4(w[qw] >> sh) * dm.x + dm.y, nib4(w[qw + 1u] >> sh) * dm.x + dm.y);
}
