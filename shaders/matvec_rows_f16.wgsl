// matvec_rows_f16: the linear layer for CPU adapters, any number of rows (decode and prefill),
// y[m, colOffset + n] = sum_k x[m, k] * W[n, k] (+ bias[colOffset + n]); W stored as IEEE half floats
// (out x in, as in HF), computed in f32.
// Inputs:  x: array<vec4<f32>> [M, K/4]; w: array<vec2<u32>> [N, K/4], 4 packed halves per vec2 (this chunk;
//          K a multiple of 4); bias: array<f32> (read only when flags bit 0 set); params (as matmul_f32).
// Outputs: y: array<f32> [M, ldy], columns colOffset .. colOffset+N-1.
// Layout:  each invocation a TM x TN block of outputs from global memory, no workgroup memory or barriers
//          (shaders/include/matvec_rows_body.wgsl).
// Bounds:  dispatch (ceil(ceil(N/TN)/WG), ceil(M/TM)); rows past M and columns past N are not stored.
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused).
@group(0) @binding(1) var<storage, read> w: array<vec2<u32>>;

struct W8 { lo: vec4<f32>, hi: vec4<f32> }
fn row_base(n: u32) -> u32 { return n * (p.K / 4u); }
fn half4(h: vec2<u32>) -> vec4<f32> { return vec4<f32>(unpack2x16float(h.x), unpack2x16float(h.y)); }
fn load8(rb: u32, k: u32) -> W8 { return W8(half4(w[rb + k / 4u]), half4(w[rb + k / 4u + 1u])); }
alias M4 = mat4x4<f32>;
fn xdot(xa: vec4<f32>, xb: vec4<f32>, lo: M4, hi: M4) -> vec4<f32> { return xa * lo + xb * hi; }
fn xpos(k: u32) -> vec2<u32> { return vec2<u32>(k / 4u, k / 4u + 1u); }

//#include matvec_rows_body.wgsl
