// visible_keys: the one visibility rule of every attention kernel that walks block lists, spliced in by
// `//#include visible_keys.wgsl` after the kernel's `p` (a uniform with a `window` field: 0 for none).
// A block descriptor is (base, tokens, capacity, firstPos); key t of the block sits at position firstPos + t and is
// visible from query position qpos iff firstPos + t <= qpos and, with a sliding window, qpos - (firstPos + t) < window.
// visible(blk, qpos) gives those keys of the block as the range [from, to) of t.
fn visible(blk: vec4<u32>, qpos: u32) -> vec2<u32> {
  if (qpos < blk.w) { return vec2<u32>(0u, 0u); }
  let span = qpos - blk.w + 1u; // keys at positions firstPos..qpos
  var a = 0u;
  if (p.window > 0u && span > p.window) { a = span - p.window; }
  return vec2<u32>(a, max(a, min(blk.y, span)));
}
