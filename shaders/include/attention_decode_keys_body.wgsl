// attention_decode_keys_body: the key-parallel split-K decode kernel shared by attention_decode_keys.wgsl
// (f32 KV pools) and attention_decode_keys_f16kv.wgsl (half floats); the including file binds kpool (1)
// and vpool (2) and defines kOct(i) / vOct(i): elements 8i..8i+7 of the pool as an Oct. See
// attention_decode_keys.wgsl for the design and bounds.
struct Params {
  rows: u32, heads: u32, kvHeads: u32, qStride: u32, // qStride: floats from one qkv row to the next
  scale: f32, window: u32, splits: u32, chunks: u32,  // chunks: workgroups sharing one kv head's query heads
}
@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> rowInfo: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> blocks: array<vec4<u32>>;
// pML as floats (m at 2i, l at 2i + 1); with DIRECT (one split) the lse row [rows, heads] instead
@group(0) @binding(5) var<storage, read_write> pML: array<f32>;
// pAcc as quads; with DIRECT the normalised output [rows, heads * HD] (the same index for split 0)
@group(0) @binding(6) var<storage, read_write> pAcc: array<vec4<f32>>;
@group(0) @binding(7) var<uniform> p: Params;

override HD: u32 = 64u;   // head_dim (a multiple of 8)
override NH: u32 = 4u;    // query heads per workgroup (<= GMAX)
override WG: u32 = 256u;  // threads (a multiple of HD / 8 and of RR)
override KPT: u32 = 4u;   // keys per thread and chunk in the score pass (<= KMAX)
override VU: u32 = 4u;    // V rows loaded ahead per thread in the value pass (<= VMAX)
override DIRECT = false;  // one split: write the normalised output and the lse (no combine pass)
const GMAX = 8u;
const KMAX = 8u;
const VMAX = 8u;
const RR = 16u;           // second-stage width of the workgroup reductions
const NEG = -1e30;
override Q8 = HD / 8u;    // octets (8 elements, one 16-byte load of halves) per key
override C = KPT * WG;    // keys per chunk
override NSUB = WG / Q8;  // key subsets of the value pass
override SCN = max(NH * C, 8u * WG);
var<workgroup> sc: array<f32, SCN>;            // [head][key of the chunk] probabilities; at the end [thread][8] partial outputs
var<workgroup> qs: array<vec4<f32>, NH * HD / 4u>; // [head][quad] the query, pre-scaled
var<workgroup> red: array<f32, NH * WG>;       // [head][thread] partial maxima / sums
var<workgroup> red2: array<f32, NH * RR>;      // [head][RR] second stage
var<workgroup> scan: array<u32, WG>;
var<workgroup> shared4: vec4<u32>;

struct Oct { a: vec4<f32>, b: vec4<f32> }

//#include visible_keys.wgsl

// red[head][thread] -> red2[head][RR] (one barrier before, one after); the caller reads red2
fn reduceStage2(lid: u32, isMax: bool) {
  workgroupBarrier();
  if (lid < NH * RR) {
    let g = lid / RR;
    let i0 = lid % RR;
    var v = red[g * WG + i0];
    for (var i = i0 + RR; i < WG; i += RR) {
      let x = red[g * WG + i];
      if (isMax) { v = max(v, x); } else { v += x; }
    }
    red2[lid] = v;
  }
  workgroupBarrier();
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let lid = lid3.x;
  let split = wg.x;
  let kvh = wg.y / p.chunks;
  let G = p.heads / p.kvHeads;
  let h0 = kvh * G + (wg.y % p.chunks) * NH; // this workgroup's first query head
  let nh = min(NH, (kvh + 1u) * G - h0);    // heads of this workgroup that exist
  let r = wg.z;
  let oct = lid % Q8;  // value pass: this thread's octet of a V row
  let sub = lid / Q8;  // and its key subset

  for (var i = lid; i < NH * HD / 4u; i += WG) {
    let g = i / (HD / 4u);
    var v = vec4<f32>(0.0);
    if (g < nh) { v = q[(r * p.qStride) / 4u + (h0 + g) * (HD / 4u) + i % (HD / 4u)] * p.scale; }
    qs[i] = v;
  }
  if (lid == 0u) { shared4 = rowInfo[r]; }
  let info = workgroupUniformLoad(&shared4);
  let qpos = info.x;
  let listStart = info.y;
  let listLen = info.z;

  // ---- this split's share [lo, hi) of the row's visible keys, from the CURRENT block list ----
  // (as attention_decode_body.wgsl: an inclusive scan of the visible keys of each thread's blocks)
  let per = (listLen + WG - 1u) / WG;
  var owners = 0u;
  if (per > 0u) { owners = (listLen + per - 1u) / per; }
  let b0 = listStart + min(listLen, lid * per);
  let b1 = listStart + min(listLen, lid * per + per);
  var mine = 0u;
  for (var b = b0; b < b1; b++) {
    let v = visible(blocks[b], qpos);
    mine += v.y - v.x;
  }
  scan[lid] = mine;
  for (var off = 1u; off < owners; off <<= 1u) {
    workgroupBarrier();
    var s = scan[lid];
    if (lid >= off) { s += scan[lid - off]; }
    workgroupBarrier();
    scan[lid] = s;
  }
  var total = 0u;
  if (owners > 0u) { total = workgroupUniformLoad(&scan[owners - 1u]); }
  let chunk = (total + p.splits - 1u) / p.splits;
  let lo = min(total, split * chunk);
  let hi = min(total, lo + chunk);
  var before = scan[lid] - mine;
  for (var b = b0; b < b1; b++) {
    let v = visible(blocks[b], qpos);
    let n = v.y - v.x;
    if (lo < hi && before <= lo && lo < before + n) { shared4 = vec4<u32>(b, before, 0u, 0u); }
    before += n;
  }
  let start = workgroupUniformLoad(&shared4);

  // running state, the same in every thread: max per head; per thread: its keys' sum, its outputs
  var mrun: array<f32, GMAX>;
  var lsum: array<f32, GMAX>;
  var acc: array<Oct, GMAX>;
  for (var g = 0u; g < NH; g++) {
    mrun[g] = NEG;
    lsum[g] = 0.0;
    acc[g] = Oct(vec4<f32>(0.0), vec4<f32>(0.0));
  }

  var blk = start.x;
  var pre = start.y; // visible keys before block blk
  while (lo < hi && pre < hi && blk < listStart + listLen) {
    if (lid == 0u) { shared4 = blocks[blk]; }
    let d = workgroupUniformLoad(&shared4);
    let v = visible(d, qpos);
    let nb = v.y - v.x;
    let ta = v.x + max(lo, pre) - pre; // keys [ta, tb) of this block belong to the split
    let tb = v.x + min(hi, pre + nb) - pre;
    let kb = (d.x * p.kvHeads + kvh * d.z) * Q8; // octet 0 of key 0 of this kv head
    for (var c0 = ta; c0 < tb; c0 += C) {
      let n = min(C, tb - c0);
      // ---- scores: thread lid owns keys lid + k*WG of the chunk, whole ----
      var s: array<f32, KMAX * GMAX>;
      for (var k = 0u; k < KPT; k++) {
        for (var g = 0u; g < NH; g++) { s[k * GMAX + g] = 0.0; }
      }
      for (var o = 0u; o < Q8; o++) {
        var kx: array<Oct, KMAX>;
        for (var k = 0u; k < KPT; k++) {
          let j = k * WG + lid;
          kx[k] = Oct(vec4<f32>(0.0), vec4<f32>(0.0));
          if (j < n) { kx[k] = kOct(kb + (c0 + j) * Q8 + o); }
        }
        for (var g = 0u; g < NH; g++) {
          let qa = qs[(g * Q8 + o) * 2u];
          let qb = qs[(g * Q8 + o) * 2u + 1u];
          for (var k = 0u; k < KPT; k++) { s[k * GMAX + g] += dot(qa, kx[k].a) + dot(qb, kx[k].b); }
        }
      }
      for (var g = 0u; g < NH; g++) {
        var m = NEG;
        for (var k = 0u; k < KPT; k++) {
          if (k * WG + lid < n) { m = max(m, s[k * GMAX + g]); }
        }
        red[g * WG + lid] = m;
      }
      reduceStage2(lid, true);
      // ---- the chunk's max, the rescale, the probabilities of this thread's keys ----
      var corr: array<f32, GMAX>;
      for (var g = 0u; g < NH; g++) {
        var m = mrun[g];
        for (var i = 0u; i < RR; i++) { m = max(m, red2[g * RR + i]); }
        corr[g] = exp(mrun[g] - m);
        mrun[g] = m;
        var l = lsum[g] * corr[g];
        for (var k = 0u; k < KPT; k++) {
          let j = k * WG + lid;
          if (j < n) {
            let e = exp(s[k * GMAX + g] - m);
            sc[g * C + j] = e;
            l += e;
          }
        }
        lsum[g] = l;
      }
      workgroupBarrier();
      // ---- values: thread (sub, oct) takes octet oct of keys sub + i*NSUB, for all heads ----
      for (var g = 0u; g < NH; g++) {
        acc[g] = Oct(acc[g].a * corr[g], acc[g].b * corr[g]);
      }
      for (var j0 = sub; j0 < n; j0 += NSUB * VU) {
        var vx: array<Oct, VMAX>;
        for (var u = 0u; u < VU; u++) {
          let j = j0 + u * NSUB;
          vx[u] = Oct(vec4<f32>(0.0), vec4<f32>(0.0));
          if (j < n) { vx[u] = vOct(kb + (c0 + j) * Q8 + oct); }
        }
        for (var u = 0u; u < VU; u++) {
          let j = j0 + u * NSUB;
          if (j < n) {
            for (var g = 0u; g < NH; g++) {
              let e = sc[g * C + j];
              acc[g] = Oct(acc[g].a + e * vx[u].a, acc[g].b + e * vx[u].b);
            }
          }
        }
      }
      workgroupBarrier(); // sc and red2 are rewritten by the next chunk
    }
    pre += nb;
    blk++;
  }

  // ---- the split's (m, l) and outputs of each head ----
  for (var g = 0u; g < NH; g++) { red[g * WG + lid] = lsum[g]; }
  reduceStage2(lid, false);
  var L: array<f32, GMAX>;
  for (var g = 0u; g < NH; g++) {
    var l = 0.0;
    for (var i = 0u; i < RR; i++) { l += red2[g * RR + i]; }
    L[g] = l;
  }
  let base = (split * p.rows + r) * p.heads + h0; // partial index of head h0
  if (lid < nh) {
    // (the loop keeps L's index constant after unrolling)
    for (var g = 0u; g < NH; g++) {
      if (g == lid) {
        if (DIRECT) {
          var e = NEG;
          if (L[g] > 0.0) { e = mrun[g] + log(L[g]); }
          pML[base + g] = e;
        } else {
          pML[2u * (base + g)] = mrun[g];
          pML[2u * (base + g) + 1u] = L[g];
        }
      }
    }
  }
  for (var g = 0u; g < NH; g++) {
    // sc[(sub * Q8 + oct) * 8 ..] = this thread's outputs of head g; threads < HD/4 sum a quad over the subsets
    sc[lid * 8u] = acc[g].a.x;
    sc[lid * 8u + 1u] = acc[g].a.y;
    sc[lid * 8u + 2u] = acc[g].a.z;
    sc[lid * 8u + 3u] = acc[g].a.w;
    sc[lid * 8u + 4u] = acc[g].b.x;
    sc[lid * 8u + 5u] = acc[g].b.y;
    sc[lid * 8u + 6u] = acc[g].b.z;
    sc[lid * 8u + 7u] = acc[g].b.w;
    workgroupBarrier();
    if (lid < HD / 4u && g < nh) {
      let o = (lid / 2u) * 8u + (lid % 2u) * 4u; // quad lid = half lid%2 of octet lid/2
      var sum = vec4<f32>(0.0);
      for (var i = 0u; i < NSUB; i++) {
        let x = i * Q8 * 8u + o;
        sum += vec4<f32>(sc[x], sc[x + 1u], sc[x + 2u], sc[x + 3u]);
      }
      if (DIRECT) {
        if (L[g] > 0.0) { sum = sum / L[g]; } else { sum = vec4<f32>(0.0); }
      }
      pAcc[(base + g) * (HD / 4u) + lid] = sum;
    }
    workgroupBarrier();
  }
}
