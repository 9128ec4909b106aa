// matvec_input: the input stage shared by the matvec_<format> kernels (decode, one row; workgroups of
// WG_SIZE threads, a power of two the kernel declares),
// spliced in where a kernel says `//#include matvec_input.wgsl` (src/gpu/shaders.ts). It hands the kernel
// its input four values at a time, as stored or transformed on the fly, so that the layer feeding a
// projection needs no dispatch of its own:
//   flags bit 2 (SwiGLU):  x holds [gate | up] (2K floats); the input is silu(gate) * up.
//   flags bit 3 (RMSNorm): the input is x * rsqrt(mean(x^2) + eps) * g, g the norm weight; every
//                          workgroup computes the mean itself (K floats, a cheap pass next to W's K*N).
// Bindings: 0 x: array<vec4<f32>> [K/4] (2K/4 with bit 2); 5 g: array<vec4<f32>> [K/4] (any buffer when
// bit 3 is clear). Uses the kernel's params p (K, flags, eps). Call input_prepare(local index) first in
// main, from uniform control flow, then xin4(i) for values 4i..4i+3.
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> g: array<vec4<f32>>;

var<workgroup> input_sum: array<f32, WG_SIZE>;
var<private> input_scale: f32;

fn input_prepare(t: u32) {
  input_scale = 1.0;
  if ((p.flags & 8u) == 0u) { return; } // p is uniform: every thread takes the same branch
  var s = 0.0;
  for (var i = t; i < p.K / 4u; i += WG_SIZE) {
    let v = x[i];
    s += dot(v, v);
  }
  input_sum[t] = s;
  workgroupBarrier();
  for (var step = WG_SIZE / 2u; step > 0u; step >>= 1u) {
    if (t < step) { input_sum[t] += input_sum[t + step]; }
    workgroupBarrier();
  }
  input_scale = inverseSqrt(input_sum[0] / f32(p.K) + p.eps);
}

fn xin4(i: u32) -> vec4<f32> {
  if ((p.flags & 4u) != 0u) {
    let gate = x[i];
    return gate / (1.0 + exp(-gate)) * x[p.K / 4u + i];
  }
  if ((p.flags & 8u) != 0u) { return x[i] * input_scale * g[i]; }
  return x[i];
}
