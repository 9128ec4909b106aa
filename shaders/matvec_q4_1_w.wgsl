// matvec_q4_1_w (experiment): R rows per warp; 4 lanes per block, each lane one word of nibbles
// (weights 4j..4j+3 and 16+4j..16+4j+3); sum(d q x + m x) = d (q . x) + m sum(x), sum(x) shared by the R rows.
@group(0) @binding(1) var<storage, read> w: array<u32>;
fn nib4(v: u32) -> vec4<f32> { return vec4<f32>(vec4<u32>(v & 15u, (v >> 8u) & 15u, (v >> 16u) & 15u, (v >> 24u) & 15u)); }

fn rows_dot(n0: u32, lane: u32) -> vec4<f32> {
  let nb = p.K / 32u;
  let j = lane & 3u;
  var s = vec4<f32>(0.0);
  for (var b = lane >> 2u; b < nb; b += 8u) {
    let xa = xin4(b * 8u + j);
    let xb = xin4(b * 8u + 4u + j);
    let xs = dot(xa + xb, vec4<f32>(1.0));
    for (var r = 0u; r < R; r++) {
      let bo = (row_of(n0, r) * nb + b) * 5u;
      let dm = unpack2x16float(w[bo]);
      let q = w[bo + 1u + j];
      s[r] += dm.x * (dot(nib4(q), xa) + dot(nib4(q >> 4u), xb)) + dm.y * xs;
    }
  }
  return s;
}

//#include matvec_multi_body.wgsl
