// matvec_f32: the decode-time linear layer for a single row, y[colOffset + n] = sum_k x[k] * W[n, k]
// (+ bias[colOffset + n]); W stored f32 as in HF (out x in), possibly one row chunk of a larger matrix.
// Inputs:  x: array<vec4<f32>> [K/4]; w: array<vec4<f32>> [N, K/4] (this chunk; K must be a multiple of 4,
//          which every supported model's widths are); bias: array<f32> (read only when flags bit 0 set);
//          params (same struct as matmul_f32; M must be 1).
// Outputs: y: array<f32>, entries colOffset .. colOffset+N-1.
// Layout:  256 threads = 256/LANES lane groups of LANES lanes, each computing ROWS rows: R = ROWS * 256/LANES
//          rows per workgroup (LANES 32, 64, 128 or 256, ROWS 1, 2 or 4: pipeline constants picked by
//          matvecShape in src/engine/linear.ts; see shaders/include/matvec_body.wgsl);
//          lanes stride over K in vec4 steps (512 contiguous
//          bytes per row per iteration), then reduce in workgroup memory.
// Bounds:  dispatch (min(ceil(N/R), 65535), ceil(ceil(N/R)/65535)); rows n >= N are masked.
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused); bits 2, 3 = SwiGLU or
//        RMSNorm of the input on the fly (x is read through shaders/include/matvec_input.wgsl).
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;

// lane's share of row n . x
// steps of 4 weights; a step's 4 inputs, read once for all of a lane's rows
alias StepIn = vec4<f32>;
fn step_count() -> u32 { return p.K / 4u; }
fn step_input(i: u32) -> StepIn { return xin4(i); }
fn step_dot(n: u32, i: u32, xi: StepIn) -> f32 { return dot(xi, w[n * (p.K / 4u) + i]); }

//#include matvec_body.wgsl
