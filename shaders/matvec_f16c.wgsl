// matvec_f16c: the decode-time linear layer for a single row, y[colOffset + n] = sum_k x[k] * W[n, k]
// (+ bias[colOffset + n]); W stored as IEEE half floats (out x in, as in HF), computed in f16 (needs the
// device feature shader-f16): the input is rounded to f16, each vec4 of products is one vec4<f16> dot
// product, and those 4-product partial sums are promoted to f32 and accumulated in f32 (long rows neither
// overflow nor drift). Inputs beyond the f16 range (|x| > 65504) become infinities. Mirrors matvec_f16
// (f32 compute); possibly one row chunk of a larger matrix.
// Inputs:  x: array<vec4<f32>> [K/4]; w: array<vec4<f16>> [N, K/4] (this chunk; K a multiple of 8; the
//          bytes matvec_f16 reads as vec4<u32>); bias: array<f32> (read only when flags bit 0 set);
//          params (same struct as matmul_f32; M must be 1).
// Outputs: y: array<f32>, entries colOffset .. colOffset+N-1.
// Layout:  256 threads = 256/LANES lane groups of LANES lanes, each computing ROWS rows: R = ROWS * 256/LANES
//          rows per workgroup (LANES 32, 64, 128 or 256, ROWS 1, 2 or 4: pipeline constants picked by
//          matvecShape in src/engine/linear.ts; see shaders/include/matvec_body.wgsl);
//          each lane reads 16 bytes (8 halves: two adjacent
//          vec4<f16>) per step, lanes stride over K (512 contiguous bytes per row per step), then reduce
//          in workgroup memory (f32).
// Bounds:  dispatch (min(ceil(N/R), 65535), ceil(ceil(N/R)/65535)); rows n >= N are masked.
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused); bits 2, 3 = SwiGLU or
//        RMSNorm of the input on the fly, in f32 (x is read through shaders/include/matvec_input.wgsl).
enable f16;

@group(0) @binding(1) var<storage, read> w: array<vec4<f16>>;

// lane's share of row n . x
// steps of 8 weights; a step's 8 inputs, rounded to f16 once for all of a lane's rows
alias StepIn = array<vec4<f16>, 2>;
fn step_count() -> u32 { return p.K / 8u; }
fn step_input(i: u32) -> StepIn { return StepIn(vec4<f16>(xin4(2u * i)), vec4<f16>(xin4(2u * i + 1u))); }
fn step_dot(n: u32, i: u32, xi: StepIn) -> f32 {
  let b = n * (p.K / 4u) + 2u * i;
  return f32(dot(xi[0], w[b])) + f32(dot(xi[1], w[b + 1u]));
}

//#include matvec_body.wgsl
