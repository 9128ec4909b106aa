// matmul_q5_1: y[m, colOffset + n] = sum_k x[m, k] * W[n, k] (+ bias[colOffset + n]) — a linear layer
// for prefill (many rows), with W kept as GGUF Q5_1 blocks in GPU memory and dequantized on the fly
// into workgroup memory (f32 accumulation). W is HF-shaped (out x in), possibly one row chunk of a larger
// matrix (colOffset = the chunk's first row).
// Inputs:  x: array<f32> [M, K]; w: array<u32>, the chunk's raw blocks: row n starts at byte
//          n * (K/32) * 24, rows contiguous, plus >= 4 bytes of padding at the end;
//          bias: array<f32> [ldy] (bound always; read only when flags bit 0 set); params.
//          24-byte blocks of 32: f16 d, f16 m, u32 qh (bit j = fifth bit of element j), qs[16]; x = d * q + m.
// Outputs: y: array<f32> [M, ldy], columns colOffset .. colOffset+N-1 written.
// Layout:  64x64 output tile per workgroup, 16x16 threads each computing 4x4; K in steps of 32: each
//          thread stages 8 activations and decodes 8 weights (row t/4, elements 8*(t%4)..) per step.
// Bounds:  K a multiple of 32; dispatch (ceil(N/64), ceil(M/64)); out-of-range rows/cols are masked.
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused).
const BLOCK = 32u;
const BLOCK_BYTES = 24u;
//#include block_q5_1.wgsl
//#include matmul_blocks.wgsl
