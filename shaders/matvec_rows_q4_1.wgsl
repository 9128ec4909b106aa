// matvec_rows_q4_1: the linear layer for CPU adapters, any number of rows (decode and prefill),
// y[m, colOffset + n] = sum_k x[m, k] * W[n, k]
// (+ bias[colOffset + n]), with W kept as GGUF Q4_1 blocks in GPU memory and dequantized on the fly
// (f32 accumulation). W is HF-shaped (out x in), possibly one row chunk of a larger matrix.
// Inputs:  x: array<vec4<f32>> [M, K/4]; w: array<u32>, the chunk's raw blocks: row n starts at byte
//          n * (K/32) * 20, rows contiguous, plus >= 4 bytes of padding at the end;
//          bias: array<f32> (read only when flags bit 0 set); params (same struct as matmul_f32).
//          20-byte blocks of 32: f16 d, f16 m, qs[16] (nibbles as Q4_0); x = d * q + m.
// Outputs: y: array<f32> [M, ldy], columns colOffset .. colOffset+N-1.
// Layout:  each invocation a TM x TN block of outputs from global memory, blocks decoded in place, no
//          workgroup memory or barriers (shaders/include/matvec_rows_body.wgsl: what lavapipe runs fastest;
//          GPUs prefer the lane-split matvec and the tiled matmul, which coalesce reads).
// Bounds:  K a multiple of 32; dispatch (ceil(ceil(N/TN)/WG), ceil(M/TM)); rows past M and columns past N
//          are not stored.
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused).
const BLOCK = 32u;
const BLOCK_BYTES = 20u;
//#include block_q4_1.wgsl
// (not matvec_rows_blocks.wgsl's in-order weights: a step takes the low and the high nibbles of one word,
// weights 4j..4j+3 and 16+4j..16+4j+3 of a block, two loads per 8 weights where deq8 takes three)
@group(0) @binding(1) var<storage, read> w: array<u32>;
//#include quant_bytes.wgsl

alias W8 = V8;
// row n's first word (rows of 20-byte blocks are whole words)
fn row_base(n: u32) -> u32 { return n * (p.K / BLOCK) * (BLOCK_BYTES / 4u); }
// step k (k / 8 = 4 b + j): block b's word j of nibbles, against x's vec4 8b + j (low nibbles) and 8b + 4 + j (high)
fn xpos(k: u32) -> vec2<u32> { return vec2<u32>((k >> 5u) * 8u + ((k >> 3u) & 3u), (k >> 5u) * 8u + 4u + ((k >> 3u) & 3u)); }
fn load8(rb: u32, k: u32) -> W8 {
  let bo = rb + (k >> 5u) * 5u;
  let dm = unpack2x16float(w[bo]);
  let q = w[bo + 1u + ((k >> 3u) & 3u)];
  return V8(nib4(q) * dm.x + dm.y, nib4(q >> 4u) * dm.x + dm.y);
}
alias M4 = mat4x4<f32>;
fn xdot(xa: vec4<f32>, xb: vec4<f32>, lo: M4, hi: M4) -> vec4<f32> { return xa * lo + xb * hi; }

//#include matvec_rows_body.wgsl
