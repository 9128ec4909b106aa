// matvec_rows_q5_1: the linear layer for CPU adapters, any number of rows (decode and prefill),
// y[m, colOffset + n] = sum_k x[m, k] * W[n, k]
// (+ bias[colOffset + n]), with W kept as GGUF Q5_1 blocks in GPU memory and dequantized on the fly
// (f32 accumulation). W is HF-shaped (out x in), possibly one row chunk of a larger matrix.
// Inputs:  x: array<vec4<f32>> [M, K/4]; w: array<u32>, the chunk's raw blocks: row n starts at byte
//          n * (K/32) * 24, rows contiguous, plus >= 4 bytes of padding at the end;
//          bias: array<f32> (read only when flags bit 0 set); params (same struct as matmul_f32).
//          24-byte blocks of 32: f16 d, f16 m, u32 qh (bit j = fifth bit of element j), qs[16]; x = d * q + m.
// Outputs: y: array<f32> [M, ldy], columns colOffset .. colOffset+N-1.
// Layout:  each invocation a TM x TN block of outputs from global memory, blocks decoded in place, no
//          workgroup memory or barriers (shaders/include/matvec_rows_body.wgsl: what lavapipe runs fastest;
//          GPUs prefer the lane-split matvec and the tiled matmul, which coalesce reads).
// Bounds:  K a multiple of 32; dispatch (ceil(ceil(N/TN)/WG), ceil(M/TM)); rows past M and columns past N
//          are not stored.
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused).
const BLOCK = 32u;
const BLOCK_BYTES = 24u;
//#include block_q5_1.wgsl
//#include matvec_rows_blocks.wgsl
