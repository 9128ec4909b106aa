// matvec_q6_k: the decode-time linear layer for a single row, y[colOffset + n] = sum_k x[k] * W[n, k]
// (+ bias[colOffset + n]), with W kept as GGUF Q6_K blocks in GPU memory and dequantized on the fly
// (f32 accumulation). W is HF-shaped (out x in), possibly one row chunk of a larger matrix.
// Inputs:  x: array<vec4<f32>> [K/4]; w: array<u32>, the chunk's raw blocks: row n starts at byte
//          n * (K/256) * 210, rows contiguous, plus >= 4 bytes of padding at the end;
//          bias: array<f32> (read only when flags bit 0 set); params (same struct as matvec_f32; M must be 1).
//          210-byte super-blocks of 256: ql[128], qh[64], int8 scales[16], f16 d; element e = 128n + 32t + l (t = 0..3): low nibble of ql[64n + l + 32(t&1)] (high nibble if t >= 2), two high bits (2t) of qh[32n + l]; x = d * scales[e/16] * (q - 32).
// Outputs: y: array<f32>, entries colOffset .. colOffset+N-1.
// Layout:  256 threads = 256/LANES lane groups of LANES lanes, each computing ROWS rows: R = ROWS * 256/LANES
//          rows per workgroup (LANES 32, 64, 128 or 256, ROWS 1, 2 or 4: pipeline constants picked by
//          matvecShape in src/engine/linear.ts; see shaders/include/matvec_body.wgsl);
//          each lane decodes 8 consecutive weights at a time
//          (lane-strided over K), then the lanes reduce in workgroup memory.
// Bounds:  K a multiple of 256; dispatch (min(ceil(N/R), 65535), ceil(ceil(N/R)/65535)); rows n >= N are masked.
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused); bits 2, 3 = SwiGLU or
//        RMSNorm of the input on the fly (x is read through shaders/include/matvec_input.wgsl).
const BLOCK = 256u;
const BLOCK_BYTES = 210u;
//#include block_q6_k.wgsl
//#include matvec_blocks.wgsl
