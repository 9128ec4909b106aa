// attention_combine: merges the per-split partial results of a split-K attention kernel (the
// flash-decoding kernel attention_decode*.wgsl; any kernel that writes the same partials) into the
// normalised output and the log-sum-exp, exactly as one softmax over all the splits' keys.
// A split s of (row r, query head h) holds, at i = (s * rows + r) * heads + h:
//   pML[i]  = (m, l): m the split's largest scaled score (-1e30 when it saw no visible key),
//             l = sum over its keys of exp(score - m) (0 when none);
//   pAcc[i * headDim + d] = sum over its keys of exp(score - m) * v_d  (un-normalised).
// Combine: M = max_s m_s, L = sum_s exp(m_s - M) l_s,
//   out[r * heads * headDim + h * headDim + d] = sum_s exp(m_s - M) pAcc_s[d] / L,
//   lse[r * heads + h] = M + log L;  when L == 0 (no split saw a key): out 0 and lse -1e30.
// Inputs:  pML: array<vec2<f32>>, pAcc: array<f32> (read here as vec4: headDim % 4 == 0), params.
// Outputs: out: array<f32> [rows, heads*headDim]; lse: array<f32> [rows, heads].
// Bounds:  one workgroup of 128 threads per (head, row); headDim <= 512, a multiple of 4; any number of
//          splits >= 1; dispatch (heads, rows) with rows > 65535 folded into z (row = y + z * 65535).
//          Thread t sums quad t % Q (Q = headDim / 4) of the splits s = t / Q (mod 128 / Q).
struct Params { rows: u32, heads: u32, headDim: u32, splits: u32 }
@group(0) @binding(0) var<storage, read> pML: array<vec2<f32>>;
@group(0) @binding(1) var<storage, read> pAcc: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> lse: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

const NEG = -1e30;
const WG = 128u;
var<workgroup> ml: array<vec2<f32>, WG>;
var<workgroup> accs: array<vec4<f32>, WG>;

// (m, l) of the union of two key sets
fn mergeML(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let m = max(a.x, b.x);
  return vec2<f32>(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let lid = lid3.x;
  let h = wg.x;
  let r = wg.y + wg.z * 65535u;
  if (r >= p.rows) { return; }
  let stride = p.rows * p.heads; // from split s to split s + 1
  let first = r * p.heads + h;   // split 0
  // M and L over all splits: each thread merges a strided subset, then a tree
  var acc = vec2<f32>(NEG, 0.0);
  for (var s = lid; s < p.splits; s += WG) { acc = mergeML(acc, pML[s * stride + first]); }
  ml[lid] = acc;
  workgroupBarrier();
  for (var w = WG / 2u; w > 0u; w >>= 1u) {
    if (lid < w) { ml[lid] = mergeML(ml[lid], ml[lid + w]); }
    workgroupBarrier();
  }
  let tot = ml[0];
  let M = tot.x;
  let L = tot.y;
  // the output quads: quad dq of the splits grp, grp + G, ...
  let Q = p.headDim / 4u;
  let G = WG / Q;
  let dq = lid % Q;
  let grp = lid / Q;
  var v = vec4<f32>(0.0);
  if (grp < G) {
    for (var s = grp; s < p.splits; s += G) {
      let i = s * stride + first;
      v += exp(pML[i].x - M) * pAcc[i * Q + dq];
    }
  }
  accs[lid] = v;
  workgroupBarrier();
  let o = r * p.heads * p.headDim + h * p.headDim;
  if (lid < Q) {
    var sum = vec4<f32>(0.0);
    for (var g = 0u; g < G; g++) { sum += accs[g * Q + lid]; }
    if (L > 0.0) { sum = sum / L; } else { sum = vec4<f32>(0.0); }
    for (var e = 0u; e < 4u; e++) { out[o + 4u * lid + e] = sum[e]; }
  }
  if (lid == 0u) {
    var e = NEG;
    if (L > 0.0) { e = M + log(L); }
    lse[r * p.heads + h] = e;
  }
}
