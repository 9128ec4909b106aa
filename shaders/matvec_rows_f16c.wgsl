// matvec_rows_f16c: the linear layer for CPU adapters, any number of rows (decode and prefill),
// y[m, colOffset + n] = sum_k x[m, k] * W[n, k] (+ bias[colOffset + n]); W stored as half floats (out x in),
// computed in f16 (needs the device feature shader-f16): x is rounded to f16, each vec4 of products is one
// vec4<f16> dot product, and those 4-product partial sums are promoted to f32 and accumulated in f32.
// Inputs beyond the f16 range (|x| > 65504) become infinities. Mirrors matvec_rows_f16 (f32 compute).
// Inputs:  x: array<vec4<f32>> [M, K/4]; w: array<vec4<f16>> [N, K/4] (K a multiple of 4; the bytes
//          matvec_rows_f16 reads as vec2<u32>); bias: array<f32> (read only when flags bit 0 set);
//          params (same struct as matmul_f32).
// Outputs: y: array<f32> [M, ldy], columns colOffset .. colOffset+N-1.
// Layout:  each invocation a TM x TN block of outputs from global memory, no workgroup memory or barriers
//          (shaders/include/matvec_rows_body.wgsl).
// Bounds:  dispatch (ceil(ceil(N/TN)/WG), ceil(M/TM)); rows past M and columns past N are not stored.
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused).
enable f16;

@group(0) @binding(1) var<storage, read> w: array<vec4<f16>>;

struct W8 { lo: vec4<f16>, hi: vec4<f16> }
fn row_base(n: u32) -> u32 { return n * (p.K / 4u); }
fn load8(rb: u32, k: u32) -> W8 { return W8(w[rb + k / 4u], w[rb + k / 4u + 1u]); }
alias M4 = mat4x4<f16>;
// each column's 4 products of a half-step in f16, promoted to f32
fn xdot(xa: vec4<f32>, xb: vec4<f32>, lo: M4, hi: M4) -> vec4<f32> { return vec4<f32>(vec4<f16>(xa) * lo) + vec4<f32>(vec4<f16>(xb) * hi); }
fn xpos(k: u32) -> vec2<u32> { return vec2<u32>(k / 4u, k / 4u + 1u); }

//#include matvec_rows_body.wgsl
