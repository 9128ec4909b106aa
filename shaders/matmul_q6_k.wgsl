// matmul_q6_k: y[m, colOffset + n] = sum_k x[m, k] * W[n, k] (+ bias[colOffset + n]) — a linear layer
// for prefill (many rows), with W kept as GGUF Q6_K blocks in GPU memory and dequantized on the fly
// into workgroup memory (f32 accumulation). W is HF-shaped (out x in), possibly one row chunk of a larger
// matrix (colOffset = the chunk's first row).
// Inputs:  x: array<f32> [M, K]; w: array<u32>, the chunk's raw blocks: row n starts at byte
//          n * (K/256) * 210, rows contiguous, plus >= 4 bytes of padding at the end;
//          bias: array<f32> [ldy] (bound always; read only when flags bit 0 set); params.
//          210-byte super-blocks of 256: ql[128], qh[64], int8 scales[16], f16 d; element e = 128n + 32t + l (t = 0..3): low nibble of ql[64n + l + 32(t&1)] (high nibble if t >= 2), two high bits (2t) of qh[32n + l]; x = d * scales[e/16] * (q - 32).
// Outputs: y: array<f32> [M, ldy], columns colOffset .. colOffset+N-1 written.
// Layout:  64x64 output tile per workgroup, 16x16 threads each computing 4x4; K in steps of 32: each
//          thread stages 8 activations and decodes 8 weights (row t/4, elements 8*(t%4)..) per step.
// Bounds:  K a multiple of 256; dispatch (ceil(N/64), ceil(M/64)); out-of-range rows/cols are masked.
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused).
const BLOCK = 256u;
const BLOCK_BYTES = 210u;
//#include block_q6_k.wgsl
//#include matmul_blocks.wgsl
