// attention_body: the attention kernel shared by attention.wgsl (f32 KV pools) and attention_f16kv.wgsl
// (half-float pools); the including file binds kpool (1) and vpool (2) and defines kPair(i) (key
// elements i, i+1; i even) and vAt(i) (value element i). See attention.wgsl's header.
struct Params { rows: u32, heads: u32, kvHeads: u32, headDim: u32, qStride: u32, scale: f32, window: u32 }
@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> rowInfo: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> blocks: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;
@group(0) @binding(7) var<uniform> p: Params;

const NEG = -1e30;
var<workgroup> qs: array<f32, 256>;
var<workgroup> probs: array<f32, 64>;
var<workgroup> red: array<f32, 64>;
var<workgroup> shared4: vec4<u32>;

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

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let lid = lid3.x;
  let h = wg.x;
  let r = wg.y + wg.z * 65535u;
  if (r >= p.rows) { return; }
  let hd = p.headDim;
  let kvh = h / (p.heads / p.kvHeads);
  for (var i = lid; i < hd; i += 64u) { qs[i] = q[r * p.qStride + h * hd + i]; }
  if (lid == 0u) { shared4 = rowInfo[r]; }
  let info = workgroupUniformLoad(&shared4);
  let qpos = info.x;

  var m = NEG;
  var l = 0.0;
  var acc: array<f32, 4>;
  for (var i = 0u; i < 4u; i++) { acc[i] = 0.0; }

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
        var dot = 0.0;
        let kb = kvBase + t * hd;
        for (var i = 0u; i < hd; i += 2u) {
          let k2 = kPair(kb + i);
          dot += qs[i] * k2.x + qs[i + 1u] * k2.y;
        }
        s = dot * p.scale;
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
      for (var i = 0u; i < 4u; i++) {
        let d = lid + i * 64u;
        if (d < hd) {
          var a = acc[i] * corr;
          for (var j = 0u; j < n; j++) { a += probs[j] * vAt(kvBase + (t0 + j) * hd + d); }
          acc[i] = a;
        }
      }
      m = mNew;
    }
  }
  let o = r * p.heads * hd + h * hd;
  for (var i = 0u; i < 4u; i++) {
    let d = lid + i * 64u;
    if (d < hd) {
      var v = 0.0;
      if (l > 0.0) { v = acc[i] / l; }
      out[o + d] = v;
    }
  }
  if (lid == 0u) {
    var e = NEG;
    if (l > 0.0) { e = m + log(l); }
    lse[r * p.heads + h] = e;
  }
}
