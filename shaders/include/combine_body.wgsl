// combine_body: merging the per-split partial results of a split-K attention kernel (attention_decode*,
// attention_tiled*: any kernel writing these partials), for ape_combine.wgsl (APE's two parts, merged;
// attention_combine.wgsl, one part, keeps its own inline copy of the same math). The including file binds the partials and
// defines partML(part, i) -> vec2<f32> and partAcc(part, i) -> vec4<f32> (part 0 or 1: which partials).
// A split s of (row r, query head h) of a part holds, at i = (s * rows + r) * heads + h:
//   partML(i)  = (m, l): m the split's largest scaled score (-1e30 when it saw no visible key),
//                l = sum over its keys of exp(score - m) (0 when none);
//   partAcc(i * headDim / 4 + dq) = quad dq of sum over its keys of exp(score - m) * v  (un-normalised).
// combinePart gives M = max_s m_s, L = sum_s exp(m_s - M) l_s and, in threads lid < headDim / 4, quad
// lid of sum_s exp(m_s - M) acc_s: the part's softmax output is that / L, its log-sum-exp M + log L.
// Workgroups of WG = 128 threads; call from uniform control flow (it has barriers). Thread t sums
// quad t % Q (Q = headDim / 4) of the splits s = t / Q (mod 128 / Q): headDim <= 512.
const NEG = -1e30;
const WG = 128u;
var<workgroup> ml: array<vec2<f32>, WG>;
var<workgroup> accs: array<vec4<f32>, WG>;

// (m, l) of the union of two key sets
fn mergeML(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let m = max(a.x, b.x);
  return vec2<f32>(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}

struct Combined { M: f32, L: f32, quad: vec4<f32> }

fn combinePart(part: u32, splits: u32, rows: u32, heads: u32, headDim: u32, r: u32, h: u32, lid: u32) -> Combined {
  let stride = rows * heads; // from split s to split s + 1
  let first = r * heads + h; // split 0
  // M and L over all splits: each thread merges a strided subset, then a tree
  var acc = vec2<f32>(NEG, 0.0);
  for (var s = lid; s < splits; s += WG) { acc = mergeML(acc, partML(part, s * stride + first)); }
  workgroupBarrier(); // a previous call's reads of ml and accs are done
  ml[lid] = acc;
  workgroupBarrier();
  for (var w = WG / 2u; w > 0u; w >>= 1u) {
    if (lid < w) { ml[lid] = mergeML(ml[lid], ml[lid + w]); }
    workgroupBarrier();
  }
  let tot = ml[0];
  // the output quads: quad dq of the splits grp, grp + G, ...
  let Q = headDim / 4u;
  let G = WG / Q;
  let dq = lid % Q;
  let grp = lid / Q;
  var v = vec4<f32>(0.0);
  if (grp < G) {
    var s = grp;
    for (; s + 3u * G < splits; s += 4u * G) { // four splits' loads in flight per trip
      let i0 = s * stride + first;
      let i1 = i0 + G * stride;
      let i2 = i1 + G * stride;
      let i3 = i2 + G * stride;
      v += exp(partML(part, i0).x - tot.x) * partAcc(part, i0 * Q + dq) + exp(partML(part, i1).x - tot.x) * partAcc(part, i1 * Q + dq)
         + exp(partML(part, i2).x - tot.x) * partAcc(part, i2 * Q + dq) + exp(partML(part, i3).x - tot.x) * partAcc(part, i3 * Q + dq);
    }
    for (; s < splits; s += G) {
      let i = s * stride + first;
      v += exp(partML(part, i).x - tot.x) * partAcc(part, i * Q + dq);
    }
  }
  accs[lid] = v;
  workgroupBarrier();
  var sum = vec4<f32>(0.0);
  if (lid < Q) {
    for (var g = 0u; g < G; g++) { sum += accs[g * Q + lid]; }
  }
  return Combined(tot.x, tot.y, sum);
}
