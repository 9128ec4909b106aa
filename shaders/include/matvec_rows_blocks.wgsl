// matvec_rows_blocks: row_sum for every matvec_rows_<format> kernel of the GGUF block formats (the body is
// matvec_rows_body.wgsl). A format's file declares BLOCK (weights per block) and BLOCK_BYTES and includes
// its block decoder (block_<format>.wgsl: deq8); its header comment states the inputs, outputs, layout
// and bounds.
@group(0) @binding(1) var<storage, read> w: array<u32>;
//#include quant_bytes.wgsl

fn row_sum(n: u32) -> f32 {
  let rb = n * (p.K / BLOCK) * BLOCK_BYTES;
  var s = 0.0;
  for (var k = 0u; k < p.K; k += 8u) {
    let v = deq8(rb, k);
    s += dot(v.lo, x[k / 4u]) + dot(v.hi, x[k / 4u + 1u]);
  }
  return s;
}

//#include matvec_rows_body.wgsl
