// matmul_f16c: y[m, colOffset + n] = sum_k x[m, k] * W[n, k] (+ bias[colOffset + n]) — a linear layer for
// prefill (many rows), W stored as IEEE half floats (out x in, as in HF), computed in f16 (needs the device
// feature shader-f16): x is rounded to f16 as it is loaded, the tiles in workgroup memory are f16 (half the
// bytes of matmul_f16's), products are vec4<f16> FMAs, and each output's f16 partial sum of KF = 8 products
// is promoted to f32 and accumulated in f32, so long rows neither overflow nor drift. Inputs
// beyond the f16 range (|x| > 65504) become infinities. Mirrors matmul_f16 (f32 compute); W may be one row
// chunk of a larger matrix (colOffset = the chunk's first row) when it exceeds the binding-size limit.
// Inputs:  x: array<vec4<f32>> [M, K/4]; w: array<vec4<f16>> [N, K/4] (this chunk; K a multiple of 4; the
//          bytes matmul_f16 reads as vec2<u32>, plus >= 4 bytes of padding); bias: array<f32> (bound
//          always; read only when flags bit 0 set); params.
// Outputs: y: array<f32> [M, ldy], columns colOffset .. colOffset+N-1 written.
// Layout:  register-blocked tiles as matmul_f32 (shaders/include/matmul_float_body.wgsl; override
//          constants BM, BN, BK, TM, TN, NB from src/engine/linear.ts; BK = 32 on GPUs).
// Bounds:  dispatch (ceil(N/BN), ceil(M/BM)); rows, columns and k past M, N, K are zero-filled and not written.
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused).
enable f16;

alias T = f16;
const HALF = true;
@group(0) @binding(1) var<storage, read> w: array<vec4<f16>>;
fn load_w4(i: u32) -> vec4<f16> { return w[i]; }
//#include matmul_float_body.wgsl
