// attention_body: the row attention kernel shared by attention.wgsl (f32 KV pools) and attention_f16kv.wgsl
// (half-float pools); the including file binds kpool (1) and vpool (2) and defines kQuad(i) and vQuad(i)
// (key / value elements 4i..4i+3 of the pool: quad i). See attention.wgsl's header.
//
// A workgroup serves one query row and NH query heads of one kv head's GQA group: every key and value is
// loaded once for all NH heads. The row's visible keys (block after block of its list; a block's visible
// keys are one range [a, b) of its tokens) are numbered 0..total-1 and taken in chunks of CH keys; a
// decode step over a short list (the GPU case: < 256 keys) is ONE chunk, so the kernel is three dependent
// memory round trips (rowInfo + q, the block descriptors, every K and V of the chunk at once) and five
// barriers, not two round trips and fourteen barriers per 64 keys. Per chunk:
//   1. key j's first quad (kaddr[j], a binary search of the blocks' scan)                          barrier
//   2. value lanes load their CH/KS keys' quads into registers (in flight through 3-5); score lanes
//      (KP lanes per key, KT keys each) store partial dots of NH heads                              barrier
//   3. R lanes per head sum the partials into scores and take their max                             barrier
//   4. one lane per head: the chunk's max                                                           barrier
//   5. lane j: probabilities exp(s - m) of key j                                                    barrier
//   6. value lanes: acc = acc * exp(m_old - m) + sum p * v, and their share of the probabilities' sum.
// HD, NH, WG, CH, KP are pipeline constants, so every per-thread loop has a fixed trip count; those are marked
// //#unroll (src/gpu/unroll.ts: on GPUs the source is unrolled, since Deno's wgpu emits loops drivers do not unroll).
struct Params { rows: u32, heads: u32, kvHeads: u32, headDim: u32, qStride: u32, scale: f32, window: u32 }
@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> rowInfo: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> blocks: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;
@group(0) @binding(7) var<uniform> p: Params;

override HD: u32 = 64u;  // head_dim (a multiple of 4, <= 256)
override NH: u32 = 4u;   // query heads per workgroup (<= NHMAX), of one kv head's group
override WG: u32 = 64u;  // threads (>= HD / 4)
override CH: u32 = 64u;  // keys per chunk (<= WG; (CH + KS - 1) / KS <= VMAX)
override KP: u32 = 1u;   // score lanes per key (1, 2 or 4; divides HD / 4)
const NHMAX = 8u;
const VMAX = 16u;
const NEG = -1e30;
override Q4 = HD / 4u;                  // quads per head vector
override KS = WG / Q4;                  // value slices: lane (ks, dq) holds quad dq of keys ks, ks + KS, ...
override KPS = (CH + KS - 1u) / KS;     // keys per value lane and chunk (<= VMAX)
override SL = WG / KP;                  // score slots: lane (slot, part) takes quads part, part + KP, ... of keys slot, slot + SL, ...
override KT = (CH + SL - 1u) / SL;      // keys per score lane and chunk
override QP = Q4 / KP;                  // quads per score lane and key
override R = min(WG / NH, 32u);         // lanes per head in the chunk max's first level
override PSN = max(CH * KP * NH, NH * KS * Q4 * 4u);
var<workgroup> qs: array<vec4<f32>, NH * Q4>; // the NH query heads, pre-scaled
var<workgroup> kaddr: array<u32, CH>;          // quad index of chunk key j's element 0 (this kv head)
var<workgroup> ps: array<f32, PSN>;            // [key][part][head] partial dots; at the end [head][slice][quad] outputs
var<workgroup> sc: array<f32, CH * NH>;        // [key][head] scores, then probabilities
var<workgroup> mx: array<f32, R * NH>;         // [lane][head] first-level maxima
var<workgroup> mfin: array<f32, NHMAX>;        // the chunk's max per head
var<workgroup> lred: array<f32, NHMAX * KS>;   // [head][slice] sums of probabilities
var<workgroup> scan: array<u32, WG>;           // inclusive scan of the batch's blocks' visible keys
var<workgroup> kq0: array<u32, WG>;            // per block: quad of its first visible key - (keys before) * Q4 (wrapping)
var<workgroup> shared4: vec4<u32>;

//#include visible_keys.wgsl

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let lid = lid3.x;
  let r = wg.y + wg.z * 65535u;
  if (r >= p.rows) { return; }
  let G = p.heads / p.kvHeads;
  let chunks = (G + NH - 1u) / NH; // workgroups per kv head
  let kvh = wg.x / chunks;
  let h0 = kvh * G + (wg.x % chunks) * NH; // this workgroup's first query head
  let nh = min(NH, (kvh + 1u) * G - h0);  // its heads that exist
  for (var i = lid; i < NH * Q4; i += WG) {
    var v = vec4<f32>(0.0);
    if (i / Q4 < nh) { v = q[(r * p.qStride) / 4u + h0 * Q4 + i] * p.scale; }
    qs[i] = v;
  }
  if (lid == 0u) { shared4 = rowInfo[r]; }
  let info = workgroupUniformLoad(&shared4); // (also makes qs visible)
  let qpos = info.x;
  let dq = lid % Q4;
  let ks = lid / Q4; // >= KS: no value work
  let part = lid % KP;
  let slot = lid / KP;

  var m: array<f32, NHMAX>;          // running max per head (the same in every lane)
  var l: array<f32, NHMAX>;          // this value lane's share of the running sum
  var acc: array<vec4<f32>, NHMAX>;  // this value lane's share of quad dq of each head's output
  var vr: array<vec4<f32>, VMAX>;
  //#unroll
  for (var g = 0u; g < NHMAX; g++) { m[g] = NEG; l[g] = 0.0; acc[g] = vec4<f32>(0.0); }

  for (var b0 = 0u; b0 < info.z; b0 += WG) {
    // this batch of up to WG blocks: visible keys per block, an inclusive scan, each block's kq0
    let nb = min(WG, info.z - b0);
    var cnt = 0u;
    var first = 0u;
    if (lid < nb) {
      let d = blocks[info.y + b0 + lid];
      let v = visible(d, qpos);
      cnt = v.y - v.x;
      first = (d.x * p.kvHeads + kvh * d.z + v.x) * Q4;
    }
    workgroupBarrier(); // the previous batch's reads of scan and kq0 are done
    scan[lid] = cnt;
    for (var off = 1u; off < nb; off <<= 1u) {
      workgroupBarrier();
      var s = scan[lid];
      if (lid >= off) { s += scan[lid - off]; }
      workgroupBarrier();
      scan[lid] = s;
    }
    kq0[lid] = first - (scan[lid] - cnt) * Q4;
    let total = workgroupUniformLoad(&scan[nb - 1u]);

    for (var c0 = 0u; c0 < total; c0 += CH) {
      let n = min(CH, total - c0);
      // 1. key j's address: the block whose scan range holds key c0 + j
      if (lid < n) {
        let kidx = c0 + lid;
        var lo = 0u;
        var hi = nb - 1u;
        while (lo < hi) {
          let mid = (lo + hi) / 2u;
          if (scan[mid] > kidx) { hi = mid; } else { lo = mid + 1u; }
        }
        kaddr[lid] = kq0[lo] + kidx * Q4;
      }
      workgroupBarrier();
      // 2. values into registers (past the chunk's n keys: key n - 1 again, in bounds, weight 0 later);
      //    partial dots of the score lanes' keys
      if (ks < KS) {
        //#unroll
        for (var u = 0u; u < KPS; u++) { vr[u] = vQuad(kaddr[min(ks + u * KS, n - 1u)] + dq); }
      }
      //#unroll
      for (var k = 0u; k < KT; k++) {
        let j = slot + k * SL;
        if (j < n) {
          let a = kaddr[j] + part;
          var d: array<f32, NHMAX>;
          //#unroll
          for (var g = 0u; g < NH; g++) { d[g] = 0.0; }
          //#unroll
          for (var i = 0u; i < QP; i++) {
            let kv = kQuad(a + i * KP);
            //#unroll
            for (var g = 0u; g < NH; g++) { d[g] += dot(qs[g * Q4 + part + i * KP], kv); }
          }
          //#unroll
          for (var g = 0u; g < NH; g++) { ps[(j * KP + part) * NH + g] = d[g]; }
        }
      }
      workgroupBarrier();
      // 3. scores (the KP partials summed) and their max: lane (rr, g) takes keys rr, rr + R, ...
      if (lid < R * NH) {
        let g = lid % NH;
        let rr = lid / NH;
        var mloc = NEG;
        for (var j = rr; j < CH; j += R) {
          var s = NEG;
          if (j < n) {
            s = 0.0;
            //#unroll
            for (var e = 0u; e < KP; e++) { s += ps[(j * KP + e) * NH + g]; }
          }
          sc[j * NH + g] = s;
          mloc = max(mloc, s);
        }
        mx[rr * NH + g] = mloc;
      }
      workgroupBarrier();
      // 4. the chunk's max per head
      if (lid < NH) {
        var mc = NEG;
        for (var i = 0u; i < R; i++) { mc = max(mc, mx[i * NH + lid]); }
        mfin[lid] = mc;
      }
      workgroupBarrier();
      var mNew: array<f32, NHMAX>;
      //#unroll
      for (var g = 0u; g < NH; g++) { mNew[g] = max(m[g], mfin[g]); }
      // 5. probabilities (0 past the chunk's keys)
      if (lid < CH) {
        //#unroll
        for (var g = 0u; g < NH; g++) {
          let s = sc[lid * NH + g];
          var e = 0.0;
          if (s > NEG) { e = exp(s - mNew[g]); }
          sc[lid * NH + g] = e;
        }
      }
      workgroupBarrier();
      // 6. the values, weighted
      if (ks < KS) {
        //#unroll
        for (var g = 0u; g < NH; g++) {
          let corr = exp(m[g] - mNew[g]);
          var a = acc[g] * corr;
          var ls = l[g] * corr;
          //#unroll
          for (var u = 0u; u < KPS; u++) {
            let j = ks + u * KS;
            let pr = select(0.0, sc[min(j, CH - 1u) * NH + g], j < n);
            a += pr * vr[u];
            ls += pr;
          }
          acc[g] = a;
          l[g] = ls;
        }
      }
      //#unroll
      for (var g = 0u; g < NH; g++) { m[g] = mNew[g]; }
    }
  }

  // the slices' partial outputs and sums, added up (every read of ps ended before the last chunk's barriers)
  if (ks < KS) {
    //#unroll
    for (var g = 0u; g < NH; g++) {
      let o = ((g * KS + ks) * Q4 + dq) * 4u;
      ps[o] = acc[g].x;
      ps[o + 1u] = acc[g].y;
      ps[o + 2u] = acc[g].z;
      ps[o + 3u] = acc[g].w;
      if (dq == 0u) { lred[g * KS + ks] = l[g]; }
    }
  }
  workgroupBarrier();
  for (var e = lid; e < nh * Q4; e += WG) {
    let g = e / Q4;
    let d = e % Q4;
    var v = vec4<f32>(0.0);
    var L = 0.0;
    //#unroll
    for (var i = 0u; i < KS; i++) {
      let o = ((g * KS + i) * Q4 + d) * 4u;
      v += vec4<f32>(ps[o], ps[o + 1u], ps[o + 2u], ps[o + 3u]);
      L += lred[g * KS + i];
    }
    if (L > 0.0) { v = v / L; } else { v = vec4<f32>(0.0); }
    let oo = (r * p.heads + h0 + g) * HD + 4u * d;
    out[oo] = v.x;
    out[oo + 1u] = v.y;
    out[oo + 2u] = v.z;
    out[oo + 3u] = v.w;
  }
  //#unroll
  for (var g = 0u; g < NH; g++) {
    if (lid == g && g < nh) {
      var L = 0.0;
      //#unroll
      for (var i = 0u; i < KS; i++) { L += lred[g * KS + i]; }
      var e = NEG;
      if (L > 0.0) { e = m[g] + log(L); }
      lse[r * p.heads + h0 + g] = e;
    }
  }
}
