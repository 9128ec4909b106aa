// rope: rotary position embedding, HF "rotate_half" convention: for each head, features i and
// i + headDim/2 form a pair rotated by angle pos * invFreq[i]. cos/sin come precomputed per row in
// float64 on the CPU (with the model's llama3 / linear scaling), so no trigonometry runs here.
// Inputs:  x: array<f32> (the fused qkv rows; head h of row r starts at r*rowStride + colOffset + h*headDim),
//          cs: array<f32> [rows, headDim/2, 2] (cos, sin), params.
// Outputs: x rotated in place.
// Bounds:  one thread per (pair, head, row); dispatch (ceil(headDim/2 * heads / 64), rows).
struct Params { rows: u32, heads: u32, headDim: u32, rowStride: u32, colOffset: u32 }
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> cs: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let half = p.headDim / 2u;
  let i = gid.x % half;
  let h = gid.x / half;
  let r = gid.y;
  if (h >= p.heads || r >= p.rows) { return; }
  let base = r * p.rowStride + p.colOffset + h * p.headDim;
  let c = cs[(r * half + i) * 2u];
  let s = cs[(r * half + i) * 2u + 1u];
  let x1 = x[base + i];
  let x2 = x[base + i + half];
  x[base + i] = x1 * c - x2 * s;
  x[base + i + half] = x2 * c + x1 * s;
}
