// rope_store: rotary position embedding (HF "rotate_half": features i and i + headDim/2 of a head form a
// pair rotated by pos * invFreq[i]) fused with the KV write. Query heads are rotated in place in the
// fused qkv rows (attention reads them there); key heads are rotated and written, with the values, into
// the row's KV block, which holds `capacity` slots from pool slot `base`, laid out [kvHeads, capacity,
// headDim] (the cache-file layout): token t of kv head h lives at (base*kvHeads + h*capacity + t)*headDim.
// cos/sin come precomputed per row in float64 on the CPU (with the model's rope scaling).
// Inputs:  qkv: array<f32> (row r: Q heads at r*rowStride, K at colK, V at colV), cs: array<f32>
//          [rows, headDim/2, 2] (cos, sin), dest: array<vec4<u32>> per row (base, capacity, t, _), params.
// Outputs: qkv's Q features rotated in place; kpool, vpool: array<f32>, the destination slots.
// Bounds:  one thread per (2 consecutive pairs, head) over heads + kvHeads heads, and row; headDim % 4 == 0;
//          dispatch (ceil((heads + kvHeads) * headDim/4 / 64), rows).
struct Params { rows: u32, heads: u32, kvHeads: u32, headDim: u32, rowStride: u32, colK: u32, colV: u32 }
@group(0) @binding(0) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> cs: array<f32>;
@group(0) @binding(2) var<storage, read> dest: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> kpool: array<f32>;
@group(0) @binding(4) var<storage, read_write> vpool: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let half = p.headDim / 2u;
  let quads = half / 2u;
  let i = (gid.x % quads) * 2u; // first of the two pairs (i, i + half), (i + 1, i + 1 + half)
  let h = gid.x / quads;
  let r = gid.y;
  if (h >= p.heads + p.kvHeads || r >= p.rows) { return; }
  let row = r * p.rowStride;
  let isKey = h >= p.heads;
  let src = select(row + h * p.headDim, row + p.colK + (h - p.heads) * p.headDim, isKey);
  var lo: vec2<f32>;
  var hi: vec2<f32>;
  for (var j = 0u; j < 2u; j++) {
    let c = cs[(r * half + i + j) * 2u];
    let s = cs[(r * half + i + j) * 2u + 1u];
    let x1 = qkv[src + i + j];
    let x2 = qkv[src + i + j + half];
    lo[j] = x1 * c - x2 * s;
    hi[j] = x2 * c + x1 * s;
  }
  if (!isKey) {
    qkv[src + i] = lo.x;
    qkv[src + i + 1u] = lo.y;
    qkv[src + i + half] = hi.x;
    qkv[src + i + 1u + half] = hi.y;
    return;
  }
  let kh = h - p.heads;
  let d = dest[r];
  let slot = (d.x * p.kvHeads + kh * d.y + d.z) * p.headDim;
  let v = row + p.colV + kh * p.headDim;
  kpool[slot + i] = lo.x;
  kpool[slot + i + 1u] = lo.y;
  kpool[slot + i + half] = hi.x;
  kpool[slot + i + 1u + half] = hi.y;
  vpool[slot + i] = qkv[v + i];
  vpool[slot + i + 1u] = qkv[v + i + 1u];
  vpool[slot + i + half] = qkv[v + i + half];
  vpool[slot + i + 1u + half] = qkv[v + i + 1u + half];
}
