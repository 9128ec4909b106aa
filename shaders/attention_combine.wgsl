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
// Layout:  shaders/include/combine_body.wgsl (all WG = 256 threads load, eight splits per trip; one barrier).
// Bounds:  one workgroup of 256 threads per (head, row); headDim <= 512, a multiple of 4; any number of
//          splits >= 1; dispatch (heads, rows) with rows > 65535 folded into z (row = y + z * 65535).
struct Params { rows: u32, heads: u32, headDim: u32, splits: u32 }
@group(0) @binding(0) var<storage, read> pML: array<vec2<f32>>;
@group(0) @binding(1) var<storage, read> pAcc: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> lse: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

fn partML(part: u32, i: u32) -> vec2<f32> { return pML[i]; }
fn partAcc(part: u32, i: u32) -> vec4<f32> { return pAcc[i]; }
//#include combine_body.wgsl

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let lid = lid3.x;
  let h = wg.x;
  let r = wg.y + wg.z * 65535u;
  if (r >= p.rows) { return; }
  combineLoad(0u, p.splits, p.rows, p.heads, p.headDim, r, h, lid, WG, 0u);
  workgroupBarrier();
  if (lid < p.headDim / 4u) {
    let c = combineMerge(p.headDim, lid, WG, 0u);
    let o = r * p.heads * p.headDim + h * p.headDim;
    var v = vec4<f32>(0.0);
    if (c.L > 0.0) { v = c.quad / c.L; }
    for (var e = 0u; e < 4u; e++) { out[o + 4u * lid + e] = v[e]; }
    if (lid == 0u) {
      var e = NEG;
      if (c.L > 0.0) { e = c.M + log(c.L); }
      lse[r * p.heads + h] = e;
    }
  }
}
