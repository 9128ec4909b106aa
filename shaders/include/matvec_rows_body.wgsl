// matvec_rows_body: main() of every matvec_rows_<format> kernel (decode, one row of x; CPU adapters): one
// output row per invocation, no workgroup memory or barriers. The format's file binds w (binding 1) and
// defines row_sum(n): row n . x. Writes y[colOffset + n] (+ bias with flags bit 0, + the old y with
// bit 1: the fused residual add).
struct Params { M: u32, N: u32, K: u32, ldy: u32, colOffset: u32, flags: u32 }
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = gid.x + gid.y * nwg.x * 64u;
  if (n >= p.N) { return; }
  var v = row_sum(n);
  if ((p.flags & 1u) != 0u) { v += bias[p.colOffset + n]; }
  if ((p.flags & 2u) != 0u) { v += y[p.colOffset + n]; }
  y[p.colOffset + n] = v;
}
