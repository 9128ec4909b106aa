// matvec_f32: the decode-time linear layer for M rows (one, or a batched step's few),
// y[m, colOffset + n] = sum_k x[m, k] * W[n, k]
// (+ bias[colOffset + n]); W stored f32 as in HF (out x in), possibly one row chunk of a larger matrix.
// Inputs:  x: array<vec4<f32>> [M, K/4]; w: array<vec4<f32>> [N, K/4] (this chunk; K must be a multiple of 4,
//          which every supported model's widths are); bias: array<f32> (read only when flags bit 0 set);
//          params (same struct as matmul_f32; M rows, ldy floats per row of y).
// Outputs: y: array<f32>, entries m * ldy + colOffset .. + N-1 of rows m < M.
// Layout:  256 threads = 256/LANES lane groups of LANES lanes, each computing ROWS rows: R = ROWS * 256/LANES
//          rows per workgroup (LANES 32, 64, 128 or 256, ROWS 1, 2 or 4, each for BATCH input rows,
//          1 .. 16: pipeline constants picked by matvecShape in src/engine/linear.ts; see shaders/include/matvec_body.wgsl);
//          lanes stride over K in vec4 steps (512 contiguous
//          bytes per row per iteration), then reduce in workgroup memory.
// Bounds:  dispatch (min(G, 65535), ceil(G / 65535)), G = ceil(N/R) * ceil(M/BATCH); rows n >= N and m >= M
//          are masked.
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused); bits 2, 3 = SwiGLU or
//        RMSNorm of the input on the fly (x is read through shaders/include/matvec_input.wgsl).
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;

// steps of 4 weights; a step's 4 inputs, read once for all of a lane's rows, and its weights, loaded once
// for all of a workgroup's input rows
alias StepIn = vec4<f32>;
alias StepW = vec4<f32>;
fn step_count() -> u32 { return p.K / 4u; }
fn step_input(j: u32, i: u32, swiglu: bool) -> StepIn { return xin4(j, i, swiglu); }
fn step_weights(n: u32, i: u32) -> StepW { return w[n * (p.K / 4u) + i]; }
fn wdot(wi: StepW, xi: StepIn) -> f32 { return dot(xi, wi); }

//#include matvec_body.wgsl
