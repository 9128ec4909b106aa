// matvec_rows_f16c: the decode-time linear layer for a single row, for CPU adapters,
// y[colOffset + n] = sum_k x[k] * W[n, k] (+ bias[colOffset + n]); W stored as half floats (out x in),
// computed in f16 (needs the device feature shader-f16): x is rounded to f16, each vec4 of products is one
// vec4<f16> dot product, and those 4-product partial sums are promoted to f32 and accumulated in f32.
// Inputs beyond the f16 range (|x| > 65504) become infinities. Mirrors matvec_rows_f16 (f32 compute).
// Inputs:  x: array<vec4<f32>> [K/4]; w: array<vec4<f16>> [N, K/4] (K a multiple of 4; the bytes
//          matvec_rows_f16 reads as vec2<u32>); bias: array<f32> (read only when flags bit 0 set);
//          params (same struct as matvec_f32).
// Outputs: y: array<f32>, entries colOffset .. colOffset+N-1.
// Layout:  one output row per invocation, no workgroup memory or barriers (see matvec_rows_f16).
// Bounds:  dispatch (min(ceil(N/64), 65535), ceil(ceil(N/64)/65535)); rows n >= N return at once.
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused).
enable f16;

@group(0) @binding(1) var<storage, read> w: array<vec4<f16>>;

// row n . x
fn row_sum(n: u32) -> f32 {
  let k4 = p.K / 4u;
  let base = n * k4;
  var v = 0.0;
  for (var k = 0u; k < k4; k++) {
    v += f32(dot(vec4<f16>(x[k]), w[base + k]));
  }
  return v;
}

//#include matvec_rows_body.wgsl
