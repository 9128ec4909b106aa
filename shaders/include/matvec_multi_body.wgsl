// matvec_multi_body: main() of the experimental multi-row matvec kernels: 256 threads = 8 warps x 32 lanes,
// each warp computing R consecutive output rows (R = 1..4, a pipeline-overridable constant) so the input
// (and its SwiGLU / RMSNorm transform) is read once per R rows. The format defines
// rows_dot(n0, lane) -> vec4<f32>: lane's share of rows n0..n0+R-1 (rows >= N read row N-1; masked here).
struct Params { M: u32, N: u32, K: u32, ldy: u32, colOffset: u32, flags: u32, eps: f32 }
const WG_SIZE = 256u;
override R: u32 = 1u;
//#include matvec_input.wgsl
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

var<workgroup> partial: array<vec4<f32>, 256>;

// row n0 + r, clamped to the last row so loads stay inside W
fn row_of(n0: u32, r: u32) -> u32 { return min(n0 + r, p.N - 1u); }

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  input_prepare(lid.x);
  let lane = lid.x % 32u;
  let n0 = ((wg.x + wg.y * 65535u) * 8u + lid.x / 32u) * R;
  var s = vec4<f32>(0.0);
  if (n0 < p.N) { s = rows_dot(n0, lane); }
  partial[lid.x] = s;
  workgroupBarrier();
  for (var step = 16u; step > 0u; step >>= 1u) {
    if (lane < step) { partial[lid.x] += partial[lid.x + step]; }
    workgroupBarrier();
  }
  if (lane < R && n0 + lane < p.N) {
    let n = n0 + lane;
    var v = partial[lid.x - lane][lane];
    if ((p.flags & 1u) != 0u) { v += bias[p.colOffset + n]; }
    if ((p.flags & 2u) != 0u) { v += y[p.colOffset + n]; }
    y[p.colOffset + n] = v;
  }
}
