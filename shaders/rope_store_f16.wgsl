// rope_store_f16: rope_store.wgsl for half-float KV pools (2 halves per u32 word, element e in word e/2).
// rotary position embedding (HF "rotate_half": features i and i + headDim/2 of a head form a pair
// rotated by pos * invFreq[i]) fused with the KV write. Query heads are rotated in place in the fused
// qkv rows; key heads are rotated and written, with the values, into the row's KV block ([kvHeads,
// capacity, headDim] from pool slot `base`: token t of kv head h at (base*kvHeads + h*capacity + t)*headDim).
// Inputs:  qkv: array<f32> (row r: Q heads at r*rowStride, K at colK, V at colV), cs: array<f32>
//          [rows, headDim/2, 2] (cos, sin), dest: array<vec4<u32>> per row (base, capacity, t, _), params.
// Outputs: qkv's Q features rotated in place; kpool, vpool: array<u32> (packed halves), the destination slots.
// Bounds:  one thread per (2 consecutive pairs, head) over heads + kvHeads heads, and row; headDim % 4 == 0;
//          dispatch (ceil((heads + kvHeads) * headDim/4 / 64), rows).
struct Params { rows: u32, heads: u32, kvHeads: u32, headDim: u32, rowStride: u32, colK: u32, colV: u32 }
@group(0) @binding(0) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> cs: array<f32>;
@group(0) @binding(2) var<storage, read> dest: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> kpool: array<u32>;
@group(0) @binding(4) var<storage, read_write> vpool: array<u32>;
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
  let slot = (d.x * p.kvHeads + kh * d.y + d.z) * p.headDim; // even: headDim % 4 == 0
  let v = row + p.colV + kh * p.headDim;
  kpool[(slot + i) >> 1u] = pack2x16float(lo);
  kpool[(slot + i + half) >> 1u] = pack2x16float(hi);
  vpool[(slot + i) >> 1u] = pack2x16float(vec2<f32>(qkv[v + i], qkv[v + i + 1u]));
  vpool[(slot + i + half) >> 1u] = pack2x16float(vec2<f32>(qkv[v + i + half], qkv[v + i + 1u + half]));
}
