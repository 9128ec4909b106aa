// matvec_input: the input stage shared by the matvec_<format> kernels (decode, one row; workgroups of
// WG_SIZE threads, a power of two the kernel declares),
// spliced in where a kernel says `//#include matvec_input.wgsl` (src/gpu/shaders.ts). It hands the kernel
// its input four values at a time, as stored or transformed on the fly, so that the layer feeding a
// projection needs no dispatch of its own:
//   flags bit 2 (SwiGLU):  x holds [gate | up] (2K floats); the input is silu(gate) * up.
//   flags bit 3 (RMSNorm):  the input is x * rsqrt(mean(x^2) + eps) * g, g the norm weight. xin4 hands out
//                          x * g and adds x . x to the thread's input_sq; since a lane group's lanes together
//                          take every input once, the sum of their input_sq (reduced with their dot products)
//                          is K mean(x^2), and input_scale(that sum) scales the group's dot products. No pass
//                          over x before the weights' loads (it cost a load and a barrier tree per workgroup).
//                          With the pipeline constant NORM_FIRST (the f16-arithmetic formats: x * g unscaled can
//                          overflow a half float where the normalised input does not) every workgroup computes
//                          the mean first, as a pass over x with a barrier tree, and xin4 hands out the input
//                          normalised (input_scale is then 1).
// Bindings: 0 x: array<vec4<f32>> [K/4] (2K/4 with bit 2); 5 g: array<vec4<f32>> [K/4] (any buffer when
// bit 3 is clear). Uses the kernel's params p (K, flags, eps). Call input_prepare(local index) first in main,
// from uniform control flow, then xin4(i) for values 4i..4i+3, each i once per lane group; scale the group's sums
// by input_scale.
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> g: array<vec4<f32>>;

override NORM_FIRST = false;
var<private> input_sq: f32;    // RMSNorm: this thread's share of x . x (the inputs xin4 gave it)
var<private> input_first: f32; // RMSNorm with NORM_FIRST: the factor, computed before any weight is read
var<workgroup> input_sum: array<f32, WG_SIZE>;

fn input_prepare(t: u32) {
  input_sq = 0.0;
  input_first = 1.0;
  if (!NORM_FIRST || (p.flags & 8u) == 0u) { return; } // uniform: a constant and p
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
  input_first = inverseSqrt(input_sum[0] / f32(p.K) + p.eps);
}

// the RMSNorm factor of a lane group whose input_sq add up to `sq` (1 without bit 3, and with NORM_FIRST)
fn input_scale(sq: f32) -> f32 {
  if ((p.flags & 8u) == 0u || NORM_FIRST) { return 1.0; }
  return inverseSqrt(sq / f32(p.K) + p.eps);
}

fn xin4(i: u32) -> vec4<f32> {
  if ((p.flags & 4u) != 0u) {
    let gate = x[i];
    return gate / (1.0 + exp(-gate)) * x[p.K / 4u + i];
  }
  if ((p.flags & 8u) != 0u) {
    let v = x[i];
    if (NORM_FIRST) { return v * input_first * g[i]; }
    input_sq += dot(v, v);
    return v * g[i];
  }
  return x[i];
}
