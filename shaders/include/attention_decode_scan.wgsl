// attention_decode_scan: the visibility rule and the split's share of a row's keys, shared by the
// split-K decode kernels (attention_decode_body.wgsl, attention_decode_keys_body.wgsl). The including
// body declares `blocks` (the block descriptors: base, tokens, capacity, firstPos), the uniform `p`
// (reads p.window, p.splits), the workgroup size WG and workgroup `scan: array<u32, WG>` and
// `shared4: vec4<u32>`.

// The keys t of block `blk` visible from position qpos, as [from, to): position firstPos + t <= qpos
// and, with a sliding window, qpos - position < window.
fn visible(blk: vec4<u32>, qpos: u32) -> vec2<u32> {
  if (qpos < blk.w) { return vec2<u32>(0u, 0u); }
  let span = qpos - blk.w + 1u; // keys at positions firstPos..qpos
  var a = 0u;
  if (p.window > 0u && span > p.window) { a = span - p.window; }
  return vec2<u32>(a, max(a, min(blk.y, span)));
}

// This split's share of the row's visible keys, from the CURRENT block list [listStart, listStart +
// listLen): visible keys are numbered block after block; thread lid counts those of its blocks [b0, b1)
// of the list, an inclusive scan gives every thread the number before its blocks, and the split takes
// keys [lo, hi) of ceil(total / splits). Returns (the block holding key lo, the visible keys before that
// block, lo, hi); with lo == hi the first two are meaningless. Call from uniform control flow (barriers).
fn splitShare(lid: u32, split: u32, qpos: u32, listStart: u32, listLen: u32) -> vec4<u32> {
  let per = (listLen + WG - 1u) / WG;
  var owners = 0u; // threads that own blocks: the scan's width
  if (per > 0u) { owners = (listLen + per - 1u) / per; }
  let b0 = listStart + min(listLen, lid * per);
  let b1 = listStart + min(listLen, lid * per + per);
  var mine = 0u;
  for (var b = b0; b < b1; b++) {
    let v = visible(blocks[b], qpos);
    mine += v.y - v.x;
  }
  scan[lid] = mine;
  for (var off = 1u; off < owners; off <<= 1u) {
    workgroupBarrier();
    var s = scan[lid];
    if (lid >= off) { s += scan[lid - off]; }
    workgroupBarrier();
    scan[lid] = s;
  }
  var total = 0u;
  if (owners > 0u) { total = workgroupUniformLoad(&scan[owners - 1u]); }
  let chunk = (total + p.splits - 1u) / p.splits;
  let lo = min(total, split * chunk);
  let hi = min(total, lo + chunk);
  // the block holding key lo, and the number of visible keys before it
  var before = scan[lid] - mine;
  for (var b = b0; b < b1; b++) {
    let v = visible(blocks[b], qpos);
    let n = v.y - v.x;
    if (lo < hi && before <= lo && lo < before + n) { shared4 = vec4<u32>(b, before, 0u, 0u); }
    before += n;
  }
  let start = workgroupUniformLoad(&shared4);
  return vec4<u32>(start.x, start.y, lo, hi);
}
