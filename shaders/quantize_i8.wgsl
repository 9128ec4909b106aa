// quantize_i8: rows of f32 (activations) or f16 (weights) to symmetric int8 with one f32 scale per row, the
// operands of the int8 subgroup-matrix matmul (matmul_i8.wgsl): q = clamp(round(v / s), -127, 127) with
// s = max|v| / 127 over the row (s = 0 and q = 0 for an all-zero row).
// Inputs:  src: array<u32>, R rows of K values from row `fromRow` on (f32 words when SRC_F16 is false, else
//          f16 pairs packed two per word: value k in half k % 2 of word k / 2, as apekit stores f16 weights);
//          params { R, K, Kp, fromRow, rowStride (source values per row: K, or the buffer's row length) }.
//          SWIGLU (f32 only): the rows are gate_up's [gate (K) | up (K)] (rowStride 2K) and the values quantized are
//          silu(gate) * up, as swiglu.wgsl computes them (the int8 down_proj's input without swiglu's dispatch).
// Outputs: q: array<u32> [R, Kp / 4]: int8 values packed four per word, little-endian (value k in byte k % 4 of
//          word k / 4, the byte order subgroupMatrixLoad reads i8 from); values K..Kp-1 of a row are zero
//          (Kp: K rounded up to the matmul's k step). scale: array<f32> [R].
// Layout:  one workgroup of 256 invocations per row (row = wg.x + wg.y * 65535): a max-reduction over the row
//          (each invocation strides over it 4 values at a time), then each invocation packs words of it.
// Bounds:  K a multiple of 4 (of 8 with SRC_F16); Kp a multiple of 4, >= K; rows past R return at once.
struct Params { R: u32, K: u32, Kp: u32, fromRow: u32, rowStride: u32 }
@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> q: array<u32>;
@group(0) @binding(2) var<storage, read_write> scale: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

override SRC_F16: bool = false;
override SWIGLU: bool = false;
var<workgroup> red: array<f32, 256>;

// values 4i .. 4i+3 of source row r (i < K / 4)
fn quad(r: u32, i: u32) -> vec4<f32> {
  if (SRC_F16) {
    let o = (r * p.rowStride + 4u * i) / 2u;
    return vec4<f32>(unpack2x16float(src[o]), unpack2x16float(src[o + 1u]));
  }
  let o = r * p.rowStride + 4u * i;
  let v = vec4<f32>(bitcast<f32>(src[o]), bitcast<f32>(src[o + 1u]), bitcast<f32>(src[o + 2u]), bitcast<f32>(src[o + 3u]));
  if (SWIGLU) {
    let u = o + p.K;
    return v / (1.0 + exp(-v)) * vec4<f32>(bitcast<f32>(src[u]), bitcast<f32>(src[u + 1u]), bitcast<f32>(src[u + 2u]), bitcast<f32>(src[u + 3u]));
  }
  return v;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let lid = lid3.x;
  let r = wg.x + wg.y * 65535u;
  if (r >= p.R) { return; }
  let sr = r + p.fromRow;
  let quads = p.K / 4u;
  var mx = 0.0;
  for (var i = lid; i < quads; i += 256u) {
    let v = abs(quad(sr, i));
    mx = max(mx, max(max(v.x, v.y), max(v.z, v.w)));
  }
  red[lid] = mx;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let amax = red[0];
  let s = amax / 127.0;
  let inv = select(0.0, 127.0 / amax, amax > 0.0);
  if (lid == 0u) { scale[r] = s; }
  let words = p.Kp / 4u;
  for (var i = lid; i < words; i += 256u) {
    var w = 0u;
    if (i < quads) {
      let v = clamp(round(quad(sr, i) * inv), vec4<f32>(-127.0), vec4<f32>(127.0));
      let b = vec4<u32>(bitcast<vec4<u32>>(vec4<i32>(v)) & vec4<u32>(255u));
      w = b.x | (b.y << 8u) | (b.z << 16u) | (b.w << 24u);
    }
    q[r * words + i] = w;
  }
}
