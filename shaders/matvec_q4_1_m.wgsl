// matvec_q4_1_m (experiment): matvec_q4_1 with R rows per warp sharing each input load (generic deq8).
// Inputs, outputs and flags as matvec_q4_1; dispatch ceil(N / (8 R)) workgroups.
const BLOCK = 32u;
const BLOCK_BYTES = 20u;
@group(0) @binding(1) var<storage, read> w: array<u32>;
//#include quant_bytes.wgsl
//#include block_q4_1.wgsl

fn rows_dot(n0: u32, lane: u32) -> vec4<f32> {
  let rowBytes = (p.K / BLOCK) * BLOCK_BYTES;
  var s = vec4<f32>(0.0);
  for (var k = lane * 8u; k < p.K; k += 256u) {
    let xa = xin4(k / 4u);
    let xb = xin4(k / 4u + 1u);
    for (var r = 0u; r < R; r++) {
      let v = deq8(row_of(n0, r) * rowBytes, k);
      s[r] += dot(v.lo, xa) + dot(v.hi, xb);
    }
  }
  return s;
}

//#include matvec_multi_body.wgsl
