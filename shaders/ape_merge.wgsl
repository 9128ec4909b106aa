// ape_merge: APE's merge of the two attention parts, in float32 (../shared/APE.md):
//   w_C = sigmoid(S*T*LSE_C - LSE_O),  out = w_C * out_C + (1 - w_C) * out_O
// where out_C/LSE_C come from attention over all selected contexts with scores / T (one LSE over all
// contexts together) and out_O/LSE_O from attention over prefix + query/generated tokens (causal).
// With T = S = 1 this is exact attention over the union. No visible context (LSE_C = -1e30) gives w_C = 0.
// Inputs:  outC, outO: array<f32> [rows, heads*headDim]; lseC, lseO: array<f32> [rows, heads]; params.
// Outputs: out: array<f32> [rows, heads*headDim].
// Bounds:  one thread per output element; dispatch (ceil(heads*headDim/64), rows).
struct Params { rows: u32, heads: u32, headDim: u32, st: f32 }
@group(0) @binding(0) var<storage, read> outC: array<f32>;
@group(0) @binding(1) var<storage, read> lseC: array<f32>;
@group(0) @binding(2) var<storage, read> outO: array<f32>;
@group(0) @binding(3) var<storage, read> lseO: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let f = gid.x;
  let r = gid.y;
  let width = p.heads * p.headDim;
  if (f >= width || r >= p.rows) { return; }
  let h = f / p.headDim;
  let lc = lseC[r * p.heads + h];
  var w = 0.0;
  if (lc > -1e29) {
    // sigmoid(z) computed without overflow for large |z|
    let z = p.st * lc - lseO[r * p.heads + h];
    if (z >= 0.0) { w = 1.0 / (1.0 + exp(-z)); } else { let e = exp(z); w = e / (1.0 + e); }
  }
  let i = r * width + f;
  out[i] = w * outC[i] + (1.0 - w) * outO[i];
}
