// fma_probe: the adapter's f32 fused multiply-add rate, for the benchmarks' "fraction of peak" (bench/fma_probe.ts).
// Inputs:  params { iters, m (a multiplier close to 1), c (an addend) }: uniforms, so nothing folds at compile time.
// Outputs: out: array<f32> [invocations]: each invocation's sum of its chains (keeps the work alive; the values mean
//          nothing).
// Layout:  each invocation runs `iters` rounds of 8 independent vec4 chains, acc = fma(acc, m, c): 32 FMAs (64 FLOP)
//          per round with no loads, enough independent work per invocation to hide the FMA latency.
// Bounds:  dispatch (groups) of 256 invocations; out holds groups * 256 floats.
struct Params { iters: u32, m: f32, c: f32 }
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  let s = f32(i & 255u) * 1e-3;
  let m = vec4<f32>(p.m);
  let c = vec4<f32>(p.c);
  var a0 = vec4<f32>(s, s + 1.0, s + 2.0, s + 3.0);
  var a1 = a0 + 4.0;
  var a2 = a0 + 8.0;
  var a3 = a0 + 12.0;
  var a4 = a0 + 16.0;
  var a5 = a0 + 20.0;
  var a6 = a0 + 24.0;
  var a7 = a0 + 28.0;
  for (var t = 0u; t < p.iters; t++) {
    a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
    a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
  }
  let v = (a0 + a1) + (a2 + a3) + (a4 + a5) + (a6 + a7);
  out[i] = v.x + v.y + v.z + v.w;
}
