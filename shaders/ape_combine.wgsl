// ape_combine: APE's merge of its two attention parts for decode rows whose parts both ran split-K
// (attention_decode*.wgsl): combines each part's per-split partials (shaders/include/combine_body.wgsl)
// and merges them as ape_merge.wgsl does (../shared/APE.md), in one pass:
//   LSE_C = M_C + log L_C (contexts, scores / T),  LSE_O = M_O + log L_O (prefix + query/generated),
//   w_C = sigmoid(S*T*LSE_C - LSE_O),  out = w_C * out_C + (1 - w_C) * out_O,
// with out_X = sum_s exp(m_s - M_X) acc_s / L_X (0 when L_X == 0) and w_C = 0 when no context key is
// visible (L_C == 0). With T = S = 1 this is exact attention over the union of the two key sets.
// Inputs:  mlC, accC: the context part's partials (splitsC splits), mlO, accO: the plain part's
//          (splitsO splits, from (m, l) entry offO on: both parts in one pair of buffers when the split kernel
//          ran them in one dispatch, offO = splitsC * rows * heads), laid out as in combine_body.wgsl;
//          params (st = S * T).
// Outputs: out: array<f32> [rows, heads*headDim].
// Bounds:  one workgroup of 256 threads (combine_body.wgsl's WG) per (head, row), half of them loading each part (both
//          parts' loads in flight together); headDim <= 512, a multiple of 4; splits >= 1
//          each; dispatch (heads, rows) with rows > 65535 folded into z (row = wg.y + wg.z * 65535u).
struct Params { rows: u32, heads: u32, headDim: u32, splitsC: u32, splitsO: u32, st: f32, offO: u32 }
@group(0) @binding(0) var<storage, read> mlC: array<vec2<f32>>;
@group(0) @binding(1) var<storage, read> accC: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> mlO: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read> accO: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

fn partML(part: u32, i: u32) -> vec2<f32> { if (part == 0u) { return mlC[i]; } return mlO[p.offO + i]; }
fn partAcc(part: u32, i: u32) -> vec4<f32> { if (part == 0u) { return accC[i]; } return accO[p.offO * (p.headDim / 4u) + i]; }
//#include combine_body.wgsl

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let lid = lid3.x;
  let h = wg.x;
  let r = wg.y + wg.z * 65535u;
  if (r >= p.rows) { return; }
  let T = WG / 2u;
  if (lid < T) {
    combineLoad(0u, p.splitsC, p.rows, p.heads, p.headDim, r, h, lid, T, 0u);
  } else {
    combineLoad(1u, p.splitsO, p.rows, p.heads, p.headDim, r, h, lid - T, T, T);
  }
  workgroupBarrier();
  if (lid < p.headDim / 4u) {
    let c = combineMerge(p.headDim, lid, T, 0u);
    let o = combineMerge(p.headDim, lid, T, T);
    var w = 0.0;
    if (c.L > 0.0) {
      var lseO = NEG;
      if (o.L > 0.0) { lseO = o.M + log(o.L); }
      // sigmoid(z) computed without overflow for large |z|
      let z = p.st * (c.M + log(c.L)) - lseO;
      if (z >= 0.0) { w = 1.0 / (1.0 + exp(-z)); } else { let e = exp(z); w = e / (1.0 + e); }
    }
    var vc = vec4<f32>(0.0);
    var vo = vec4<f32>(0.0);
    if (c.L > 0.0) { vc = c.quad / c.L; }
    if (o.L > 0.0) { vo = o.quad / o.L; }
    let v = w * vc + (1.0 - w) * vo;
    let at = r * p.heads * p.headDim + h * p.headDim + 4u * lid;
    for (var e = 0u; e < 4u; e++) { out[at + e] = v[e]; }
  }
}
