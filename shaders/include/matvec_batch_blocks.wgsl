// matvec_batch_blocks: W8 / w8 for every matvec_batch_<format> kernel of the GGUF block formats (the body is
// matvec_batch_body.wgsl). A format's file declares BLOCK (weights per block) and BLOCK_BYTES and includes its
// block decoder (block_<format>.wgsl: deq8); its header comment states the inputs, outputs, layout and bounds.
@group(0) @binding(1) var<storage, read> w: array<u32>;
//#include quant_bytes.wgsl

alias W8 = array<vec4<f32>, 2>;
fn w8(n: u32, i: u32) -> W8 {
  let v = deq8(n * (p.K / BLOCK) * BLOCK_BYTES, 8u * i);
  return W8(v.lo, v.hi);
}

//#include matvec_batch_body.wgsl
