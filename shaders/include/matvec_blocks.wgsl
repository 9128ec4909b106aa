// matvec_blocks: row_dot for every matvec_<format> kernel of the GGUF block formats (the body is
// matvec_body.wgsl). A format's file declares BLOCK (weights per block) and BLOCK_BYTES and includes its
// block decoder (block_<format>.wgsl: deq8); its header comment states the inputs, outputs, layout and
// bounds. Each lane decodes 8 consecutive weights at a time, lanes strided over the row.
@group(0) @binding(1) var<storage, read> w: array<u32>;
//#include quant_bytes.wgsl

fn row_dot(n: u32, lane: u32) -> f32 {
  let rb = n * (p.K / BLOCK) * BLOCK_BYTES;
  var s = 0.0;
  for (var k = lane * 8u; k < p.K; k += 256u) {
    let v = deq8(rb, k);
    s += dot(v.lo, xin4(k / 4u));
    s += dot(v.hi, xin4(k / 4u + 1u));
  }
  return s;
}

//#include matvec_body.wgsl
