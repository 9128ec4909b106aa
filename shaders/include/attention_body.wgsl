// attention_body: the attention kernel shared by attention.wgsl (f32 KV pools) and attention_f16kv.wgsl
// (half-float pools); the including file binds kpool (1) and vpool (2) and defines kQuad(i) and vQuad(i)
// (key / value elements i..i+3; i a multiple of 4). See attention.wgsl's header.
// HD (head_dim) is a pipeline constant, so the loops over a key's elements and over a thread's values of a
// tile have fixed trip counts and unroll: every load of a key dot (and of a thread's values) is in flight
// at once, not four per trip (decode rows over short lists are chains of memory round trips).
struct Params { rows: u32, heads: u32, kvHeads: u32, headDim: u32, qStride: u32, scale: f32, window: u32 }
@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> rowInfo: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> blocks: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;
@group(0) @binding(7) var<uniform> p: Params;

const NEG = -1e30;
var<workgroup> qs: array<vec4<f32>, 64>;
var<workgroup> probs: array<f32, 64>;
var<workgroup> red: array<f32, 64>;
var<workgroup> accs: array<vec4<f32>, 64>;
var<workgroup> shared4: vec4<u32>;
override HD: u32 = 64u;

// Both reductions start with a barrier: the previous workgroupUniformLoad(&red[0]) must be done
// everywhere before red is overwritten.
fn reduceMax(lid: u32, v: f32) -> f32 {
  workgroupBarrier();
  red[lid] = v;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  return workgroupUniformLoad(&red[0]);
}

fn reduceSum(lid: u32, v: f32) -> f32 {
  workgroupBarrier();
  red[lid] = v;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  return workgroupUniformLoad(&red[0]);
}

// q . key (the key's HD elements from kb): a fixed trip count, unrolled (all the key's loads in flight)
fn keyDot(kb: u32) -> f32 {
  var d = vec4<f32>(0.0);
  for (var i = 0u; i < HD / 4u; i++) { d += qs[i] * kQuad(kb + 4u * i); }
  return (d.x + d.y) + (d.z + d.w);
}

// Threads: one key each for the scores; for the values, thread lid owns elements 4*(lid % Q)..+3 (Q =
// hd/4 quads) for the keys j = lid / Q (mod G), G = 64 / Q groups, whose partial sums meet at the end.
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let lid = lid3.x;
  let h = wg.x;
  let r = wg.y + wg.z * 65535u;
  if (r >= p.rows) { return; }
  let hd = HD;
  let kvh = h / (p.heads / p.kvHeads);
  let Q = hd / 4u;
  let G = 64u / Q;
  let dq = lid % Q;
  let grp = lid / Q; // >= G: no value work
  for (var i = lid; i < Q; i += 64u) {
    let o = r * p.qStride + h * hd + 4u * i;
    qs[i] = vec4<f32>(q[o], q[o + 1u], q[o + 2u], q[o + 3u]);
  }
  if (lid == 0u) { shared4 = rowInfo[r]; }
  let info = workgroupUniformLoad(&shared4);
  let qpos = info.x;

  var m = NEG;
  var l = 0.0;
  var acc = vec4<f32>(0.0);

  for (var b = info.y; b < info.y + info.z; b++) {
    workgroupBarrier();
    if (lid == 0u) { shared4 = blocks[b]; }
    let blk = workgroupUniformLoad(&shared4);
    let kvBase = (blk.x * p.kvHeads + kvh * blk.z) * hd;
    for (var t0 = 0u; t0 < blk.y; t0 += 64u) {
      let t = t0 + lid;
      var s = NEG;
      let kpos = blk.w + t;
      if (t < blk.y && kpos <= qpos && (p.window == 0u || qpos - kpos < p.window)) {
        s = keyDot(kvBase + t * hd) * p.scale;
      }
      let tileMax = reduceMax(lid, s);
      if (tileMax <= NEG) { continue; }
      let mNew = max(m, tileMax);
      var pr = 0.0;
      if (s > NEG) { pr = exp(s - mNew); }
      probs[lid] = pr;
      let corr = exp(m - mNew);
      let tileSum = reduceSum(lid, pr);
      l = l * corr + tileSum;
      let n = min(64u, blk.y - t0);
      var a = acc * corr;
      if (grp < G) {
        // keys grp, grp + G, ... of the tile: ceil(64 / G) of them, a count fixed by HD (unrolled, all loads
        // in flight); past the tile's n keys the weight is 0 and the load repeats the tile's last key (in bounds)
        let vb = kvBase + t0 * hd + 4u * dq;
        for (var u = 0u; u < (64u + G - 1u) / G; u++) {
          let j = grp + u * G;
          a += select(0.0, probs[min(j, 63u)], j < n) * vQuad(vb + min(j, n - 1u) * hd);
        }
      }
      acc = a;
      m = mNew;
    }
  }
  // the G groups' partial sums of each quad of output elements
  workgroupBarrier();
  accs[lid] = acc;
  workgroupBarrier();
  let o = r * p.heads * hd + h * hd;
  if (lid < Q) {
    var v = vec4<f32>(0.0);
    for (var g = 0u; g < G; g++) { v += accs[g * Q + lid]; }
    if (l > 0.0) { v = v / l; } else { v = vec4<f32>(0.0); }
    for (var e = 0u; e < 4u; e++) { out[o + 4u * lid + e] = v[e]; }
  }
  if (lid == 0u) {
    var e = NEG;
    if (l > 0.0) { e = m + log(l); }
    lse[r * p.heads + h] = e;
  }
}
