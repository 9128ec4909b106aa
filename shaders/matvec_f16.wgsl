// matvec_f16: the decode-time linear layer for M rows (one, or a batched step's few),
// y[m, colOffset + n] = sum_k x[m, k] * W[n, k]
// (+ bias[colOffset + n]); W stored as IEEE half floats (out x in, as in HF), computed in f32; possibly
// one row chunk of a larger matrix.
// Inputs:  x: array<vec4<f32>> [M, K/4]; w: array<vec4<u32>> [N, K/8], 8 packed halves per vec4 (this chunk; K a
//          multiple of 8); bias: array<f32> (read only when flags bit 0 set);
//          params (same struct as matmul_f32; M rows, ldy floats per row of y).
// Outputs: y: array<f32>, entries m * ldy + colOffset .. + N-1 of rows m < M.
// Layout:  256 threads = 256/LANES lane groups of LANES lanes, each computing ROWS rows: R = ROWS * 256/LANES
//          rows per workgroup (LANES 32, 64, 128 or 256, ROWS 1, 2 or 4, each for BATCH input rows,
//          1 .. 16: pipeline constants picked by matvecShape in src/engine/linear.ts; see shaders/include/matvec_body.wgsl);
//          each lane loads 16 bytes (8 halves) per step, lanes
//          stride over K (512 contiguous bytes per row per step), then reduce in workgroup memory.
// Bounds:  dispatch (min(G, 65535), ceil(G / 65535)), G = ceil(N/R) * ceil(M/BATCH); rows n >= N and m >= M
//          are masked.
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused); bits 2, 3 = SwiGLU or
//        RMSNorm of the input on the fly (x is read through shaders/include/matvec_input.wgsl).
@group(0) @binding(1) var<storage, read> w: array<vec4<u32>>;

// steps of 8 weights (one 16-byte load); a step's 8 inputs, read once for all of a lane's rows, and its
// weights, loaded and unpacked once for all of a workgroup's input rows
alias StepIn = array<vec4<f32>, 2>;
alias StepW = array<vec4<f32>, 2>;
fn step_count() -> u32 { return p.K / 8u; }
fn step_input(j: u32, i: u32, swiglu: bool) -> StepIn { return StepIn(xin4(j, 2u * i, swiglu), xin4(j, 2u * i + 1u, swiglu)); }
fn step_weights(n: u32, i: u32) -> StepW {
  let h = w[n * (p.K / 8u) + i];
  return StepW(vec4<f32>(unpack2x16float(h.x), unpack2x16float(h.y)), vec4<f32>(unpack2x16float(h.z), unpack2x16float(h.w)));
}
fn wdot(wi: StepW, xi: StepIn) -> f32 { return dot(xi[0], wi[0]) + dot(xi[1], wi[1]); }

//#include matvec_body.wgsl
