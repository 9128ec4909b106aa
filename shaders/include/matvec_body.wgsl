// matvec_body: main() of every matvec_<format> kernel (decode, one row of x; GPUs): 256 threads =
// 256 / LANES output rows x LANES lanes (LANES = 32, 64, 128 or 256, a pipeline-overridable constant:
// more lanes per row when rows are few and long, so a short layer still fills the GPU). The format's
// file binds w (binding 1) and defines step_count() (a row's dot product as that many steps) and
// step_dot(n, i) (step i of row n: its weights against the input, read through
// xin4 (matvec_input.wgsl: as stored, or SwiGLU / RMSNorm on the fly)). Lane l takes steps l, l + LANES,
// ..., four per trip so that their loads are in flight together (a warp's row is a short chain of
// memory round trips, not one per step). The lanes of a row then add their shares and lane 0 writes
// y[colOffset + n] (+ bias with flags bit 0, + the old y with bit 1: the fused residual add).
struct Params { M: u32, N: u32, K: u32, ldy: u32, colOffset: u32, flags: u32, eps: f32 }
const WG_SIZE = 256u;
override LANES: u32 = 32u;
//#include matvec_input.wgsl
//#include linear_store.wgsl

var<workgroup> partial: array<f32, 256>;

// lane's share of row n . input
fn row_dot(n: u32, lane: u32) -> f32 {
  let steps = step_count();
  var s = vec4<f32>(0.0);
  var i = lane;
  for (; i + 3u * LANES < steps; i += 4u * LANES) {
    s += vec4<f32>(step_dot(n, i), step_dot(n, i + LANES), step_dot(n, i + 2u * LANES), step_dot(n, i + 3u * LANES));
  }
  for (; i < steps; i += LANES) { s.x += step_dot(n, i); }
  return (s.x + s.y) + (s.z + s.w);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  input_prepare(lid.x);
  let lane = lid.x % LANES;
  let n = (wg.x + wg.y * 65535u) * (WG_SIZE / LANES) + lid.x / LANES;
  var s = 0.0;
  if (n < p.N) { s = row_dot(n, lane); }
  partial[lid.x] = s;
  workgroupBarrier();
  for (var step = LANES / 2u; step > 0u; step >>= 1u) {
    if (lane < step) { partial[lid.x] += partial[lid.x + step]; }
    workgroupBarrier();
  }
  if (lane == 0u && n < p.N) { store_y(0u, n, partial[lid.x]); }
}
