// swiglu: h[r, i] = silu(gu[r, i]) * gu[r, inter + i], where gu holds the fused gate and up
// projections side by side ([rows, 2*inter]).
// Inputs:  gu: array<f32> [rows, 2*inter], params.
// Outputs: h: array<f32> [rows, inter].
// Bounds:  one thread per output element; dispatch (ceil(inter/64), rows).
struct Params { rows: u32, inter: u32 }
@group(0) @binding(0) var<storage, read> gu: array<f32>;
@group(0) @binding(1) var<storage, read_write> h: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let r = gid.y;
  if (i >= p.inter || r >= p.rows) { return; }
  let g = gu[r * 2u * p.inter + i];
  let u = gu[r * 2u * p.inter + p.inter + i];
  h[r * p.inter + i] = g / (1.0 + exp(-g)) * u;
}
