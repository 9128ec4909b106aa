// rmsnorm: y = x * rsqrt(mean(x^2) + eps) * weight, over groups of `width` contiguous features.
// Used for the layer norms (one group per row) and Qwen3's q_norm/k_norm (one group per head, inside
// the fused qkv rows: group g of row r starts at r*rowStride + colOffset + g*width).
// Inputs:  x: array<f32>, weight: array<f32> [width], params.
// Outputs: y: array<f32>, same addressing as x (may be a different buffer; in-place uses x == y via
//          the `inPlace` entry point, which binds only one buffer).
// Bounds:  one workgroup (256 threads) per group; dispatch (groupsPerRow, rows) with rows <= 65535
//          per dimension folded into z.
struct Params { rows: u32, width: u32, rowStride: u32, colOffset: u32, eps: f32, groupsPerRow: u32 }
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let r = wg.y + wg.z * 65535u;
  if (r >= p.rows) { return; }
  let base = r * p.rowStride + p.colOffset + wg.x * p.width;
  var s = 0.0;
  for (var i = lid.x; i < p.width; i += 256u) {
    let v = x[base + i];
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
    x[base + i] = x[base + i] * inv * weight[i];
  }
}
