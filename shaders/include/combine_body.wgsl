// combine_body: merging the per-split partial results of a split-K attention kernel (attention_decode*,
// attention_tiled*: any kernel writing these partials), for attention_combine.wgsl (one part) and
// ape_combine.wgsl (APE's two parts, merged). The including file binds the partials and
// defines partML(part, i) -> vec2<f32> and partAcc(part, i) -> vec4<f32> (part 0 or 1: which partials).
// A split s of (row r, query head h) of a part holds, at i = (s * rows + r) * heads + h:
//   partML(i)  = (m, l): m the split's largest scaled score (-1e30 when it saw no visible key),
//                l = sum over its keys of exp(score - m) (0 when none);
//   partAcc(i * headDim / 4 + dq) = quad dq of sum over its keys of exp(score - m) * v  (un-normalised).
// A part's merge is M = max_s m_s, L = sum_s exp(m_s - M) l_s and the quads sum_s exp(m_s - M) acc_s:
// its softmax output is those / L, its log-sum-exp M + log L.
// Two steps, one memory round trip (a combine is a chain of round trips, not of arithmetic):
//   combineLoad: T threads of the workgroup (all WG = 256, or one half each for two parts) take one part;
//     thread t sums quad t % Q (Q = headDim / 4) of the splits t / Q, + G, ... (G = T / Q groups), with
//     its own running max, eight splits' (m, l) and quads loaded together per trip (256 splits at head_dim
//     64 over 256 threads: two trips), and leaves its (m, l) and quad in workgroup memory;
//   combineMerge (after one barrier): the G groups of a part merged, in any thread (the caller's lid < Q).
// headDim <= 4 * T (a group per quad at least), a multiple of 4. The loops over the eight are marked
// //#unroll (src/gpu/unroll.ts, on GPUs: the arrays stay in registers).
const NEG = -1e30;
const WG = 256u;
var<workgroup> cml: array<vec2<f32>, WG>;
var<workgroup> cacc: array<vec4<f32>, WG>;

struct Combined { M: f32, L: f32, quad: vec4<f32> }

// thread t (< T) of the threads from `base` on: its splits of one part, stored at cml / cacc[base + t]
fn combineLoad(part: u32, splits: u32, rows: u32, heads: u32, headDim: u32, r: u32, h: u32, t: u32, T: u32, base: u32) {
  let stride = rows * heads; // from split s to split s + 1
  let first = r * heads + h; // split 0
  let Q = headDim / 4u;
  let G = T / Q;
  let dq = t % Q;
  let grp = t / Q;
  var M = NEG;
  var L = 0.0;
  var v = vec4<f32>(0.0);
  if (grp < G) {
    // splits grp + u * G of each trip, u < 8, all loaded before any is used; past the last split the
    // load repeats the last split (in bounds) and its weight is 0
    for (var s0 = grp; s0 < splits; s0 += 8u * G) {
      var e: array<vec2<f32>, 8>;
      var a: array<vec4<f32>, 8>;
      //#unroll
      for (var u = 0u; u < 8u; u++) {
        let i = min(s0 + u * G, splits - 1u) * stride + first;
        e[u] = partML(part, i);
        a[u] = partAcc(part, i * Q + dq);
      }
      var m = M;
      //#unroll
      for (var u = 0u; u < 8u; u++) {
        if (s0 + u * G < splits) { m = max(m, e[u].x); }
      }
      let c = exp(M - m);
      L *= c;
      v *= c;
      //#unroll
      for (var u = 0u; u < 8u; u++) {
        if (s0 + u * G < splits) {
          let w = exp(e[u].x - m);
          L += w * e[u].y;
          v += w * a[u];
        }
      }
      M = m;
    }
  }
  cml[base + t] = vec2<f32>(M, L);
  cacc[base + t] = v;
}

// the part stored by combineLoad from `base` on (T threads), for quad dq < Q; after a barrier
fn combineMerge(headDim: u32, dq: u32, T: u32, base: u32) -> Combined {
  let Q = headDim / 4u;
  let G = T / Q;
  var M = NEG;
  for (var g = 0u; g < G; g++) { M = max(M, cml[base + g * Q + dq].x); }
  var L = 0.0;
  var quad = vec4<f32>(0.0);
  for (var g = 0u; g < G; g++) {
    let ml = cml[base + g * Q + dq];
    let w = exp(ml.x - M);
    L += w * ml.y;
    quad += w * cacc[base + g * Q + dq];
  }
  return Combined(M, L, quad);
}
