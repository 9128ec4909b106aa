// matvec_rows_f32: the decode-time linear layer for a single row, for CPU adapters,
// y[colOffset + n] = sum_k x[k] * W[n, k] (+ bias[colOffset + n]); W stored f32 as in HF (out x in).
// Inputs:  x: array<vec4<f32>> [K/4]; w: array<vec4<f32>> [N, K/4] (this chunk; K a multiple of 4);
//          bias: array<f32> (read only when flags bit 0 set); params (same struct as matvec_f32).
// Outputs: y: array<f32>, entries colOffset .. colOffset+N-1.
// Layout:  one output row per invocation, no workgroup memory or barriers: CPU adapters (lavapipe)
//          run an invocation's loop SIMD-wide across rows, several times faster there than the
//          lane-split matvec_f32 (which GPUs prefer: it coalesces reads).
// Bounds:  dispatch (min(ceil(N/64), 65535), ceil(ceil(N/64)/65535)); rows n >= N return at once.
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused).
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;

// row n . x
fn row_sum(n: u32) -> f32 {
  let k4 = p.K / 4u;
  let base = n * k4;
  var s = vec4<f32>(0.0);
  for (var k = 0u; k < k4; k++) { s += x[k] * w[base + k]; }
  return s.x + s.y + s.z + s.w;
}

//#include matvec_rows_body.wgsl
