// matvec_blocks: step_count / step_dot for every matvec_<format> kernel of the GGUF block formats (the body is
// matvec_body.wgsl). A format's file declares BLOCK (weights per block) and BLOCK_BYTES and includes its
// block decoder (block_<format>.wgsl: deq8); its header comment states the inputs, outputs, layout and
// bounds. Each lane decodes 8 consecutive weights at a time, lanes strided over the row.
@group(0) @binding(1) var<storage, read> w: array<u32>;
//#include quant_bytes.wgsl

// steps of 8 weights (deq8)
fn step_count() -> u32 { return p.K / 8u; }
fn step_dot(n: u32, i: u32) -> f32 {
  let v = deq8(n * (p.K / BLOCK) * BLOCK_BYTES, 8u * i);
  return dot(v.lo, xin4(2u * i)) + dot(v.hi, xin4(2u * i + 1u));
}

//#include matvec_body.wgsl
