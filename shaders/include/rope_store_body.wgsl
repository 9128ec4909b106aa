// rope_store_body: the rope_store kernel shared by rope_store.wgsl (f32 KV pools) and rope_store_f16.wgsl
// (half-float pools); the including file binds kpool (3) and vpool (4) and defines
// store_kv(a, b, kLo, kHi, vLo, vHi): key/value elements a, a+1 and b, b+1 of the pools (a, b even).
// See rope_store.wgsl's header.
struct Params { rows: u32, heads: u32, kvHeads: u32, headDim: u32, rowStride: u32, colK: u32, colV: u32 }
@group(0) @binding(0) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> cs: array<f32>;
@group(0) @binding(2) var<storage, read> dest: array<vec4<u32>>;
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
  store_kv(slot + i, slot + i + half, lo, hi, vec2<f32>(qkv[v + i], qkv[v + i + 1u]), vec2<f32>(qkv[v + i + half], qkv[v + i + 1u + half]));
}
