// matmul_f16: y[m, colOffset + n] = sum_k x[m, k] * W[n, k] (+ bias[colOffset + n]) — a linear layer
// for prefill (many rows), W stored as IEEE half floats (out x in, as in HF), computed in f32: halves
// the weight bytes of f32 storage and is exact for checkpoints stored in f16. W may be one row chunk of a larger
// matrix (colOffset = the chunk's first row) when it exceeds the binding-size limit.
// Inputs:  x: array<vec4<f32>> [M, K/4]; w: array<vec2<u32>> [N, K/4], each vec2 holding 4 packed
//          halves (this chunk; K is a multiple of 4, plus >= 4 bytes of padding); bias: array<f32> (bound always; read only when flags bit 0 set); params.
// Outputs: y: array<f32> [M, ldy], columns colOffset .. colOffset+N-1 written.
// Layout:  register-blocked tiles as matmul_f32 (shaders/include/matmul_float_body.wgsl; override
//          constants BM, BN, BK, TM, TN, NB from src/engine/linear.ts); weights unpacked to f32 as they
//          are loaded (unpack2x16float), so the tiles and products are f32.
// Bounds:  dispatch (ceil(N/BN), ceil(M/BM)); rows, columns and k past M, N, K are zero-filled and not written.
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused).
alias T = f32;
const HALF = false;
@group(0) @binding(1) var<storage, read> w: array<vec2<u32>>;
fn load_w4(i: u32) -> vec4<f32> {
  let h = w[i];
  return vec4<f32>(unpack2x16float(h.x), unpack2x16float(h.y));
}
//#include matmul_float_body.wgsl
