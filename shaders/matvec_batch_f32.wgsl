// matvec_batch_f32: the batched decode linear layer on GPUs, a few rows of x (M <= 8 per workgroup row block),
// y[m, colOffset + n] = sum_k xin[m, k] * W[n, k] (+ bias[colOffset + n]); W stored as f32 (out x in, as in
// HF), each weight read once for all the rows.
// Inputs:  x: array<vec4<f32>> [xRow + M, K/4] (the kernel's row m is x's row xRow + m);
//          w: array<vec4<f32>> [N, K/4] (this chunk; K a multiple of 8);
//          bias: array<f32> (read only when flags bit 0 set); g: array<vec4<f32>> [K/4] at binding 5, the
//          RMSNorm weight (read only with NORM; any buffer otherwise);
//          params (M, N, K, ldy, colOffset, flags, eps, xRow: shaders/include/matvec_batch_body.wgsl).
// Outputs: y: array<f32> [M, ldy], columns colOffset .. colOffset+N-1.
// Layout:  shaders/include/matvec_batch_body.wgsl (lane groups of LANES lanes, ROWS W rows x BATCH x rows each).
// Bounds:  dispatch ceil(N / (ROWS * 256 / LANES)) * ceil(M / BATCH) workgroups, folded at 65535 into y;
//          rows past M and columns past N are not stored.
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused), bit 3 = RMSNorm on the
//        fly, with the pipeline constant NORM (which the kernel reads): xin[m] = x[xRow + m] * rsqrt(mean(x[xRow +
//        m]^2) + eps) * g, else xin[m] = x[xRow + m] (bit 2, SwiGLU, is not supported: a dispatch of its own).
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;

alias W8 = array<vec4<f32>, 2>;
fn w8(n: u32, i: u32) -> W8 {
  let b = n * (p.K / 4u) + 2u * i;
  return W8(w[b], w[b + 1u]);
}

//#include matvec_batch_body.wgsl
