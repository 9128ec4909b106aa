// add: element-wise residual add, out[i] = a[i] + b[i] (in place when out aliases a is NOT allowed
// by WebGPU, so the engine accumulates into `a` directly: a[i] += b[i]).
// Inputs:  a: array<f32> (read-write, n elements), b: array<f32> (n elements), params.n
// Outputs: a (updated in place)
// Bounds:  one thread per element; threads with i >= n do nothing. Dispatch ceil(n/256) x 1 x 1,
//          or a 2-D grid (x * 65535) when n / 256 exceeds the per-dimension limit.
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n) { return; }
  a[i] = a[i] + b[i];
}
