// matmul_f32: y[m, colOffset + n] = sum_k x[m, k] * W[n, k] (+ bias[colOffset + n]) — a linear layer
// for prefill (many rows), W stored f32 as in HF (out x in). W may be one row chunk of a larger
// matrix (colOffset = the chunk's first row) when it exceeds the binding-size limit. Block-quantized
// layers of a long prefill also run here, on W dequantized to f32 slab by slab (shaders/dequant_*.wgsl).
// Inputs:  x: array<vec4<f32>> [M, K/4]; w: array<vec4<f32>> [N, K/4] (this chunk; K is a multiple of
//          4); bias: array<f32> (bound always; read only when flags bit 0 set); params.
// Outputs: y: array<f32> [M, ldy], columns colOffset .. colOffset+N-1 written.
// Layout:  register-blocked tiles (shaders/include/matmul_float_body.wgsl): a BM x BN output tile per
//          workgroup of (BM/TM)*(BN/TN) invocations, each a TM x TN block (4 or 8 each way); K advances BK
//          at a time through workgroup memory, double-buffered with NB = 2. Override constants BM, BN,
//          BK, TM, TN, NB, chosen per adapter and layer shape by src/engine/linear.ts (matmulTile).
// Bounds:  dispatch (ceil(N/BN), ceil(M/BM)); rows, columns and k past M, N, K are zero-filled and not
//          written (M, N, K need not be multiples of the tile).
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused).
alias T = f32;
const HALF = false;
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;
fn load_w4(i: u32) -> vec4<f32> { return w[i]; }
//#include matmul_float_body.wgsl
