// matvec_input: the input stage shared by the matvec_<format> kernels (decode: BATCH input rows per
// workgroup, BATCH <= MAX_BATCH, constants the kernel's body declares; workgroups of WG_SIZE threads, a
// power of two), spliced in where a kernel says `//#include matvec_input.wgsl` (src/gpu/shaders.ts). It
// hands the kernel its input four values at a time, as stored or transformed on the fly, so that the layer
// feeding a projection needs no dispatch of its own:
//   flags bit 2 (SwiGLU):  x row m holds [gate | up] (2K floats); the input is silu(gate) * up.
//   flags bit 3 (RMSNorm): the input is x * rsqrt(mean(x^2) + eps) * g, g the norm weight; every
//                          workgroup computes its rows' means itself (K floats a row, a cheap pass next to
//                          W's K*N), all its rows in one tree reduction through the body's workgroup array
//                          `partial` (array<vec4<f32>, 4 * WG_SIZE>: a float per row and thread).
// Bindings: 0 x: array<vec4<f32>> [M, K/4] (rows of 2K/4 with bit 2); 5 g: array<vec4<f32>> [K/4] (any
// buffer when bit 3 is clear). Uses the kernel's params p (M, K, flags, eps). Call input_prepare(local
// index, m0) first in main, from uniform control flow (the workgroup's input rows are m0 .. m0+BATCH-1;
// rows from p.M on read row p.M - 1, in bounds, and the kernel stores nothing for them), then
// xin4(j, i, gated()) for values 4i..4i+3 of the workgroup's input row j (0 <= j < BATCH). Callers whose
// loop is unrolled over many input rows pass a literal for `swiglu` in two copies of the loop: xin4 then
// has no branch (RMSNorm or none is x * scale_j * (g or 1)), which spares CPU compilers (lavapipe) an
// unrolled chain of branches; GPUs take the uniform branch for free either way.
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> g: array<vec4<f32>>;

var<private> input_scale: array<f32, MAX_BATCH>;
var<private> input_m0: u32;

// flags bit 2: the input is silu(gate) * up
fn gated() -> bool { return (p.flags & 4u) != 0u; }

// where input row j (of this workgroup) starts in x, in vec4s
fn input_base(j: u32) -> u32 {
  let stride = select(p.K / 4u, p.K / 2u, (p.flags & 4u) != 0u);
  return min(input_m0 + j, p.M - 1u) * stride;
}

fn input_prepare(t: u32, m0: u32) {
  input_m0 = m0;
  for (var j = 0u; j < BATCH; j++) { input_scale[j] = 1.0; }
  if ((p.flags & 8u) == 0u) { return; } // p is uniform: every thread takes the same branch
  var s: array<f32, MAX_BATCH>;
  for (var i = t; i < p.K / 4u; i += WG_SIZE) {
    for (var j = 0u; j < BATCH; j++) {
      let v = x[input_base(j) + i];
      s[j] += dot(v, v);
    }
  }
  // row j's sums in component j % 4 of slot j / 4
  let slots = (BATCH + 3u) / 4u;
  for (var q = 0u; q < slots; q++) { partial[q * WG_SIZE + t] = vec4<f32>(s[4u * q], s[4u * q + 1u], s[4u * q + 2u], s[4u * q + 3u]); }
  workgroupBarrier();
  for (var step = WG_SIZE / 2u; step > 0u; step >>= 1u) {
    if (t < step) {
      for (var q = 0u; q < slots; q++) { partial[q * WG_SIZE + t] += partial[q * WG_SIZE + t + step]; }
    }
    workgroupBarrier();
  }
  for (var j = 0u; j < BATCH; j++) { input_scale[j] = inverseSqrt(partial[(j / 4u) * WG_SIZE][j % 4u] / f32(p.K) + p.eps); }
  workgroupBarrier();
}

fn xin4(j: u32, i: u32, swiglu: bool) -> vec4<f32> {
  let b = input_base(j);
  if (swiglu) {
    let gate = x[b + i];
    return gate / (1.0 + exp(-gate)) * x[b + p.K / 4u + i];
  }
  if (BATCH == 1u) { // one input row (a short unrolled loop): the plain uniform branch
    if ((p.flags & 8u) != 0u) { return x[b + i] * input_scale[0] * g[i]; }
    return x[b + i];
  }
  // g is any bound buffer without RMSNorm (i < K/4 is in bounds of x's first row); the scale is then 1
  return x[b + i] * (select(vec4<f32>(1.0), g[i], (p.flags & 8u) != 0u) * input_scale[j]);
}
