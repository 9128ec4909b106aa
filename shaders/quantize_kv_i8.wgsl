// quantize_kv_i8: the K and V of a layer's listed KV blocks (half-float pools) to int8 with one f32 scale per key
// vector, the operands of the int8 tiled attention (attention_tiled_i8_f16kv.wgsl): q = clamp(round(x / s), -127, 127),
// s = max|x| / 127 over the vector's head_dim values (s = 0 and q = 0 for an all-zero vector).
// Inputs:  kpool, vpool: array<vec2<u32>> (4 halves per element, the layout of rope_store_f16.wgsl: element d of key t of
//          kv head h of a block at ((base * kvHeads + h * capacity) + t) * HD + d, "slot" (base * kvHeads + h * capacity) + t);
//          items: array<vec4<u32>> per work item (base * kvHeads, capacity, t0, n): keys t0 .. t0 + n - 1 of one block;
//          params { kvHeads, vsOff }.
// Outputs: kq, vq: array<vec4<u32>>: the int8 vectors at their pool slots (HD bytes per slot, value d in byte d % 4 of word
//          d / 4, the byte order subgroupMatrixLoad reads i8 from), scales: array<f32>, K's scale at [slot] and V's at
//          [vsOff + slot]. Slots outside the items are not written.
// Layout:  grid (items, kvHeads), 64 invocations per item, one key each (n <= 64).
// Bounds:  HD = 64.
struct Params { kvHeads: u32, vsOff: u32 }
@group(0) @binding(0) var<storage, read> kpool: array<vec2<u32>>;
@group(0) @binding(1) var<storage, read> vpool: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> items: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> kq: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read_write> vq: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read_write> scales: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;

const HD = 64u;

fn pack(v: vec4<f32>) -> u32 {
  let b = vec4<u32>(bitcast<vec4<u32>>(vec4<i32>(clamp(round(v), vec4<f32>(-127.0), vec4<f32>(127.0)))) & vec4<u32>(255u));
  return b.x | (b.y << 8u) | (b.z << 16u) | (b.w << 24u);
}

// quantizes the vector at `slot` of one pool (K when isV is false) into its int8 copy and scale
fn quantize(slot: u32, isV: bool) {
  var x: array<vec4<f32>, 16>;
  var amax = 0.0;
  for (var i = 0u; i < HD / 4u; i++) {
    var w: vec2<u32>;
    if (isV) { w = vpool[slot * (HD / 4u) + i]; } else { w = kpool[slot * (HD / 4u) + i]; }
    x[i] = vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
    let a = abs(x[i]);
    amax = max(amax, max(max(a.x, a.y), max(a.z, a.w)));
  }
  let inv = select(0.0, 127.0 / amax, amax > 0.0);
  for (var i = 0u; i < HD / 16u; i++) {
    let o = vec4<u32>(pack(x[4u * i] * inv), pack(x[4u * i + 1u] * inv), pack(x[4u * i + 2u] * inv), pack(x[4u * i + 3u] * inv));
    if (isV) { vq[slot * (HD / 16u) + i] = o; } else { kq[slot * (HD / 16u) + i] = o; }
  }
  scales[select(0u, p.vsOff, isV) + slot] = amax / 127.0;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let it = items[wg.x];
  if (lid >= it.w) { return; }
  let slot = it.x + wg.y * it.y + it.z + lid;
  quantize(slot, false);
  quantize(slot, true);
}
