// matvec_rows_body: main() of every matvec_rows_<format> kernel (decode, one row of x; CPU adapters): one
// output row per invocation, no workgroup memory or barriers. The format's file binds w (binding 1) and
// defines row_sum(n): row n . x. Writes y[colOffset + n] (+ bias with flags bit 0, + the old y with
// bit 1: the fused residual add).
struct Params { M: u32, N: u32, K: u32, ldy: u32, colOffset: u32, flags: u32 }
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
//#include linear_store.wgsl

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = gid.x + gid.y * nwg.x * 64u;
  if (n >= p.N) { return; }
  store_y(0u, n, row_sum(n));
}
