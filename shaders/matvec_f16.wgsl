// matvec_f16: the decode-time linear layer for a single row, y[colOffset + n] = sum_k x[k] * W[n, k]
// (+ bias[colOffset + n]); W stored as IEEE half floats (out x in, as in HF), computed in f32; possibly
// one row chunk of a larger matrix.
// Inputs:  x: array<vec4<f32>> [K/4]; w: array<vec4<u32>> [N, K/8], 8 packed halves per vec4 (this chunk; K a
//          multiple of 8); bias: array<f32> (read only when flags bit 0 set);
//          params (same struct as matmul_f32; M must be 1).
// Outputs: y: array<f32>, entries colOffset .. colOffset+N-1.
// Layout:  256 threads = 256/LANES lane groups of LANES lanes, each computing ROWS rows: R = ROWS * 256/LANES
//          rows per workgroup (LANES 32, 64, 128 or 256, ROWS 1, 2 or 4: pipeline constants picked by
//          matvecShape in src/engine/linear.ts; see shaders/include/matvec_body.wgsl);
//          each lane loads 16 bytes (8 halves) per step, lanes
//          stride over K (512 contiguous bytes per row per step), then reduce in workgroup memory.
// Bounds:  dispatch (min(ceil(N/R), 65535), ceil(ceil(N/R)/65535)); rows n >= N are masked.
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused); bits 2, 3 = SwiGLU or
//        RMSNorm of the input on the fly (x is read through shaders/include/matvec_input.wgsl).
@group(0) @binding(1) var<storage, read> w: array<vec4<u32>>;

// steps of 8 weights (one 16-byte load); a step's 8 inputs, read once for all of a lane's rows
alias StepIn = array<vec4<f32>, 2>;
fn step_count() -> u32 { return p.K / 8u; }
fn step_input(i: u32) -> StepIn { return StepIn(xin4(2u * i), xin4(2u * i + 1u)); }
fn step_dot(n: u32, i: u32, xi: StepIn) -> f32 {
  let h = w[n * (p.K / 8u) + i];
  return dot(xi[0], vec4<f32>(unpack2x16float(h.x), unpack2x16float(h.y)))
       + dot(xi[1], vec4<f32>(unpack2x16float(h.z), unpack2x16float(h.w)));
}

//#include matvec_body.wgsl
