// matmul_q4_k: y[m, colOffset + n] = sum_k x[m, k] * W[n, k] (+ bias[colOffset + n]) — a linear layer
// for prefill (many rows), with W kept as GGUF Q4_K blocks in GPU memory and dequantized on the fly
// into workgroup memory (f32 accumulation). W is HF-shaped (out x in), possibly one row chunk of a larger
// matrix (colOffset = the chunk's first row).
// Inputs:  x: array<f32> [M, K]; w: array<u32>, the chunk's raw blocks: row n starts at byte
//          n * (K/256) * 144, rows contiguous, plus >= 4 bytes of padding at the end;
//          bias: array<f32> [ldy] (bound always; read only when flags bit 0 set); params.
//          144-byte super-blocks of 256: f16 d, f16 dmin, scales[12] (8 six-bit scales and mins), qs[128]; element e is in sub-block e/32 and is the nibble (low for even sub-blocks) of qs[32*(e/64) + e%32]; x = d*sc*q - dmin*m.
// Outputs: y: array<f32> [M, ldy], columns colOffset .. colOffset+N-1 written.
// Layout:  64x64 output tile per workgroup, 16x16 threads each computing 4x4; K in steps of 32: each
//          thread stages 8 activations and decodes 8 weights (row t/4, elements 8*(t%4)..) per step.
// Bounds:  K a multiple of 256; dispatch (ceil(N/64), ceil(M/64)); out-of-range rows/cols are masked.
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused).
const BLOCK = 256u;
const BLOCK_BYTES = 144u;
//#include block_q4_k.wgsl
//#include matmul_blocks.wgsl
