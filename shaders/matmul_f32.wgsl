// matmul_f32: y[m, colOffset + n] = sum_k x[m, k] * W[n, k] (+ bias[colOffset + n]) — a linear layer
// for prefill (many rows), W stored f32 as in HF (out x in). W may be one row chunk of a larger
// matrix (colOffset = the chunk's first row) when it exceeds the binding-size limit.
// Inputs:  x: array<vec4<f32>> [M, K/4]; w: array<vec4<f32>> [N, K/4] (this chunk; K is a multiple of
//          4); bias: array<f32> (bound always; read only when flags bit 0 set); params.
// Outputs: y: array<f32> [M, ldy], columns colOffset .. colOffset+N-1 written.
// Layout:  a 64x64 output tile per workgroup of 16x16 threads, each computing 4 rows x 4 columns with
//          vec4 FMAs; K advances 32 at a time through workgroup memory, stored k-major so each inner
//          step reads one vec4 of x rows and one vec4 of W rows.
// Bounds:  dispatch (ceil(N/64), ceil(M/64)); out-of-range rows/cols/k are zero-filled and not written.
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused).
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;
fn load_w4(i: u32) -> vec4<f32> { return w[i]; }
//#include matmul_float_body.wgsl
