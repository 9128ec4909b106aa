// matvec_rows_q6_k: the linear layer for CPU adapters, any number of rows (decode and prefill),
// y[m, colOffset + n] = sum_k x[m, k] * W[n, k]
// (+ bias[colOffset + n]), with W kept as GGUF Q6_K blocks in GPU memory and dequantized on the fly
// (f32 accumulation). W is HF-shaped (out x in), possibly one row chunk of a larger matrix.
// Inputs:  x: array<vec4<f32>> [M, K/4]; w: array<u32>, the chunk's raw blocks: row n starts at byte
//          n * (K/256) * 210, rows contiguous, plus >= 4 bytes of padding at the end;
//          bias: array<f32> (read only when flags bit 0 set); params (same struct as matmul_f32).
//          210-byte super-blocks of 256: ql[128], qh[64], int8 scales[16], f16 d; element e = 128n + 32t + l (t = 0..3): low nibble of ql[64n + l + 32(t&1)] (high nibble if t >= 2), two high bits (2t) of qh[32n + l]; x = d * scales[e/16] * (q - 32).
// Outputs: y: array<f32> [M, ldy], columns colOffset .. colOffset+N-1.
// Layout:  each invocation a TM x TN block of outputs from global memory, blocks decoded in place, no
//          workgroup memory or barriers (shaders/include/matvec_rows_body.wgsl: what lavapipe runs fastest;
//          GPUs prefer the lane-split matvec and the tiled matmul, which coalesce reads).
// Bounds:  K a multiple of 32; dispatch (ceil(ceil(N/TN)/WG), ceil(M/TM)); rows past M and columns past N
//          are not stored.
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused).
const BLOCK = 256u;
const BLOCK_BYTES = 210u;
//#include block_q6_k.wgsl
//#include matvec_rows_blocks.wgsl
