// matvec_batch_q4_1: the batched decode linear layer on GPUs, a few rows of x (M <= 8 per workgroup row block),
// y[m, colOffset + n] = sum_k xin[m, k] * W[n, k] (+ bias[colOffset + n]), with W kept as GGUF Q4_1 blocks in GPU
// memory, dequantized on the fly, each weight read and decoded once for all the rows (f32 accumulation).
// Inputs:  x: array<vec4<f32>> [xRow + M, K/4] (the kernel's row m is x's row xRow + m);
//          w: array<u32>, the chunk's raw blocks (row n starts at byte n * (K/BLOCK) * BLOCK_BYTES, as
//          matvec_q4_1);
//          bias: array<f32> (read only when flags bit 0 set); g: array<vec4<f32>> [K/4] at binding 5, the
//          RMSNorm weight (read only with NORM; any buffer otherwise);
//          params (M, N, K, ldy, colOffset, flags, eps, xRow: shaders/include/matvec_batch_body.wgsl).
// Outputs: y: array<f32> [M, ldy], columns colOffset .. colOffset+N-1.
// Layout:  shaders/include/matvec_batch_body.wgsl (lane groups of LANES lanes, ROWS W rows x BATCH x rows each).
// Bounds:  K a multiple of BLOCK; dispatch ceil(N / (ROWS * 256 / LANES)) * ceil(M / BATCH) workgroups, folded
//          at 65535 into y; rows past M and columns past N are not stored.
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused), bit 3 = RMSNorm on the
//        fly, with the pipeline constant NORM (which the kernel reads): xin[m] = x[xRow + m] * rsqrt(mean(x[xRow +
//        m]^2) + eps) * g, else xin[m] = x[xRow + m] (bit 2, SwiGLU, is not supported: a dispatch of its own).
const BLOCK = 32u;
const BLOCK_BYTES = 20u;
//#include block_q4_1.wgsl
//#include matvec_batch_blocks.wgsl
