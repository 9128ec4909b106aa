// matvec_q4_1_u (experiment): as matvec_q4_1_w, nibbles widened with unpack4x8unorm (one mask per 4 weights).
@group(0) @binding(1) var<storage, read> w: array<u32>;

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
      let lo = unpack4x8unorm(q & 0x0f0f0f0fu);
      let hi = unpack4x8unorm((q >> 4u) & 0x0f0f0f0fu);
      s[r] += (dm.x * 255.0) * (dot(lo, xa) + dot(hi, xb)) + dm.y * xs;
    }
  }
  return s;
}

//#include matvec_multi_body.wgsl
