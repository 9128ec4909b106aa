// kv_store_f16: kv_store.wgsl for half-float pools (2 per u32 word): each invocation packs a pair.
// kv_store: writes each row's (already rotated) key and its value into its KV block in the layer's
// pools. A block holding `capacity` token slots starting at pool slot `base` is laid out
// [kvHeads, capacity, headDim] (the cache-file tensor layout), so token t of kv head h lives at
// (base*kvHeads + h*capacity + t) * headDim.
// Inputs:  qkv: array<f32> (fused rows; K at colK, V at colV, kvHeads*headDim each), dest: array<vec4<u32>>
//          per row (base, capacity, t, _), params.
// Outputs: kpool, vpool: array<u32> (packed halves, element e in word e/2), the destination slots.
// Bounds:  one thread per (feature pair, row), headDim even; dispatch (ceil(kvHeads*headDim/2/64), rows).
struct Params { rows: u32, kvHeads: u32, headDim: u32, rowStride: u32, colK: u32, colV: u32 }
@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> dest: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> kpool: array<u32>;
@group(0) @binding(3) var<storage, read_write> vpool: array<u32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let f = gid.x * 2u;
  let r = gid.y;
  if (f >= p.kvHeads * p.headDim || r >= p.rows) { return; }
  let d = dest[r];
  let h = f / p.headDim;
  let i = f % p.headDim;
  let slot = ((d.x * p.kvHeads + h * d.y + d.z) * p.headDim) + i;
  let src = r * p.rowStride;
  kpool[slot >> 1u] = pack2x16float(vec2<f32>(qkv[src + p.colK + f], qkv[src + p.colK + f + 1u]));
  vpool[slot >> 1u] = pack2x16float(vec2<f32>(qkv[src + p.colV + f], qkv[src + p.colV + f + 1u]));
}
