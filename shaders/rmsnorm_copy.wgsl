// rmsnorm_copy: y[r, :] = x[r, :] * rsqrt(mean(x[r, :]^2) + eps) * weight — the pre-attention,
// pre-MLP and final norms, reading the residual stream and writing a separate normalised copy.
// Inputs:  x: array<f32> [rows, width], weight: array<f32> [width], params.
// Outputs: y: array<f32> [rows, width].
// Bounds:  one workgroup (256 threads) per row; dispatch (1, min(rows, 65535), ceil(rows/65535)).
struct Params { rows: u32, width: u32, xRowOffset: u32, eps: f32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let r = wg.y + wg.z * 65535u;
  if (r >= p.rows) { return; }
  let src = (r + p.xRowOffset) * p.width;
  let dst = r * p.width;
  var s = 0.0;
  for (var i = lid.x; i < p.width; i += 256u) {
    let v = x[src + i];
    s += v * v;
  }
  partial[lid.x] = s;
  workgroupBarrier();
  for (var step = 128u; step > 0u; step >>= 1u) {
    if (lid.x < step) { partial[lid.x] += partial[lid.x + step]; }
    workgroupBarrier();
  }
  let inv = inverseSqrt(partial[0] / f32(p.width) + p.eps);
  for (var i = lid.x; i < p.width; i += 256u) {
    y[dst + i] = x[src + i] * inv * weight[i];
  }
}
