// copy: dst[i] = src[i] for vec4 elements, grid-stride with 4 vec4 per thread per step — the
// benchmark's measure of the card's achievable memory bandwidth (the decode floor's denominator).
// Inputs:  src: array<vec4<f32>> [n], params.n (vec4 count).
// Outputs: dst: array<vec4<f32>> [n].
// Bounds:  any grid (workgroups of 1024: the device must allow 1024 invocations; 256 reached only ~40% of
//          the rate on the H200); every element is copied exactly once.
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(1024)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * 1024u;
  var i = gid.x;
  loop {
    if (i >= p.n) { break; }
    dst[i] = src[i];
    let j1 = i + stride;
    if (j1 < p.n) { dst[j1] = src[j1]; }
    let j2 = j1 + stride;
    if (j2 < p.n) { dst[j2] = src[j2]; }
    let j3 = j2 + stride;
    if (j3 < p.n) { dst[j3] = src[j3]; }
    i = j3 + stride;
  }
}
