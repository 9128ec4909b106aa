// combine_body: merging the per-split partial results of a split-K attention kernel (attention_decode*,
// attention_tiled*: any kernel writing these partials), for attention_combine.wgsl (one part) and
// ape_combine.wgsl (APE's two parts, merged). The including file binds the partials and
// defines partML(part, i) -> vec2<f32> and partAcc(part, i) -> vec4<f32> (part 0 or 1: which partials).
// A split s of (row r, query head h) of a part holds, at i = (s * rows + r) * heads + h:
//   partML(i)  = (m, l): m the split's largest scaled score (-1e30 when it saw no visible key),
//                l = sum over its keys of exp(score - m) (0 when none);
//   partAcc(i * headDim / 4 + dq) = quad dq of sum over its keys of exp(score - m) * v  (un-normalised).
// combinePart gives M = max_s m_s, L = sum_s exp(m_s - M) l_s and, in threads lid < headDim / 4, quad
// lid of sum_s exp(m_s - M) acc_s: the part's softmax output is that / L, its log-sum-exp M + log L.
// Workgroups of WG = 256 threads; call from uniform control flow (it has barriers). Thread t sums
// quad t % Q (Q = headDim / 4) of the splits s = t / Q (mod 256 / Q), eight splits' loads in flight per
// trip (a combine is a short chain of memory round trips: 256 splits at head_dim 64 are 16 per thread,
// two trips): headDim <= 512. The two loops over those eight are marked //#unroll (src/gpu/unroll.ts, on GPUs: m
// and a stay in registers; under Deno's wgpu the loops would reach the driver in a form it does not unroll).
const NEG = -1e30;
const WG = 256u;
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
    // splits grp + u * G of each trip, u < 8, all loaded before any is used; past the last split the
    // weight is 0 and the load repeats the last split (in bounds)
    for (var s0 = grp; s0 < splits; s0 += 8u * G) {
      var m: array<f32, 8>;
      var a: array<vec4<f32>, 8>;
      //#unroll
      for (var u = 0u; u < 8u; u++) {
        let i = min(s0 + u * G, splits - 1u) * stride + first;
        m[u] = partML(part, i).x;
        a[u] = partAcc(part, i * Q + dq);
      }
      //#unroll
      for (var u = 0u; u < 8u; u++) {
        if (s0 + u * G < splits) { v += exp(m[u] - tot.x) * a[u]; }
      }
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
