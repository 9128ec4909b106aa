// matvec_f16_m (experiment): matvec_f16 with R rows per warp sharing each input load.
@group(0) @binding(1) var<storage, read> w: array<vec4<u32>>;

fn rows_dot(n0: u32, lane: u32) -> vec4<f32> {
  let k8 = p.K / 8u;
  var s = vec4<f32>(0.0);
  for (var k = lane; k < k8; k += 32u) {
    let xa = xin4(2u * k);
    let xb = xin4(2u * k + 1u);
    for (var r = 0u; r < R; r++) {
      let h = w[row_of(n0, r) * k8 + k];
      s[r] += dot(xa, vec4<f32>(unpack2x16float(h.x), unpack2x16float(h.y))) + dot(xb, vec4<f32>(unpack2x16float(h.z), unpack2x16float(h.w)));
    }
  }
  return s;
}

//#include matvec_multi_body.wgsl
