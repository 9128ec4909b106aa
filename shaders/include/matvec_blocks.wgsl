// matvec_blocks: step_count / step_dot for every matvec_<format> kernel of the GGUF block formats (the body is
// matvec_body.wgsl). A format's file declares BLOCK (weights per block) and BLOCK_BYTES and includes its
// block decoder (block_<format>.wgsl: deq8); its header comment states the inputs, outputs, layout and
// bounds. Each lane decodes 8 consecutive weights at a time, lanes strided over the row.
@group(0) @binding(1) var<storage, read> w: array<u32>;
//#include quant_bytes.wgsl

// steps of 8 weights (deq8); a step's 8 inputs, read once for all of a lane's rows
alias StepIn = array<vec4<f32>, 2>;
fn step_count() -> u32 { return p.K / 8u; }
fn step_input(i: u32) -> StepIn { return StepIn(xin4(2u * i), xin4(2u * i + 1u)); }
fn step_dot(n: u32, i: u32, xi: StepIn) -> f32 {
  let v = deq8(n * (p.K / BLOCK) * BLOCK_BYTES, 8u * i);
  return dot(v.lo, xi[0]) + dot(v.hi, xi[1]);
}

//#include matvec_body.wgsl
