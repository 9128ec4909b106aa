// attention_decode_body: the split-K (flash-decoding) attention kernel shared by attention_decode.wgsl
// (f32 KV pools) and attention_decode_f16kv.wgsl (half floats); the including file binds kpool (1) and
// vpool (2) and defines KvRaw (four elements as stored: vec4<f32>, or vec2<u32> of four halves), kRaw(i) / vRaw(i)
// (elements 4i..4i+3 of the pool, as stored) and unpackKv(w) (as vec4<f32>). Loads stay packed in registers until
// used (half the registers per key in flight with half floats). See attention_decode.wgsl.
struct Params {
  rows: u32, heads: u32, kvHeads: u32, qStride: u32, // qStride: floats from one qkv row to the next
  scale: f32, window: u32, splits: u32, chunks: u32,  // chunks: workgroups sharing one kv head's query heads
  rowOff: u32, scale1: f32, splits1: u32, rowOff1: u32, // rowInfo row of query row 0; a second part (APE), see below
}
@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> rowInfo: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> blocks: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read_write> pML: array<vec2<f32>>;
@group(0) @binding(6) var<storage, read_write> pAcc: array<vec4<f32>>;
@group(0) @binding(7) var<uniform> p: Params;

override HD: u32 = 64u;  // head_dim (a multiple of 4)
override NH: u32 = 4u;   // query heads per workgroup (<= GMAX)
override KT: u32 = 4u;   // keys per lane group per step (<= KMAX = 8)
override WG: u32 = 128u; // threads per workgroup (>= HD / 4)
// Load the next step's keys early (GPUs; CPU adapters gain nothing and compile slower). (Measured on the H200,
// 2026-12-04, with K / V unpacked to f32 at load, and dropped: V loaded a step ahead too: 8K keys 19.9 us vs 17.2,
// 32K 56.8 vs 43.3; the larger register arrays cost more than the longer prefetch gains. With loads kept packed,
// 8 keys per step measured 21.3 / 51.0 us against 4 keys' 19.4 / 39.3: GPUs keep KT = 4.)
override PREFETCH = true;
const GMAX = 8u;
const KMAX = 8u;
const NEG = -1e30;
override Q4 = HD / 4u;           // lanes per key: lane dq holds quad dq of the head
override NG = WG / Q4;           // lane groups (each walks its own keys with its own softmax state)
override P = KT * NH;            // (key, head) scores per group and step
override QP = Q4 | 1u;           // odd row stride of the partial dot products (no bank conflicts)
override TILE = NG * KT;         // keys per step of the workgroup
override RED = max(NG * P * QP, NH * NG * Q4 * 4u);
var<workgroup> red: array<f32, RED>; // [group][key * NH + head][lane] partial dot products; at the end [head][group][lane] outputs
var<workgroup> sp: array<f32, NG * P>;        // [group][key * NH + head] scores, then probabilities
var<workgroup> st: array<vec4<f32>, NG * NH>; // [group][head] (running max, running sum, rescale, _)
var<workgroup> scan: array<u32, WG>;
var<workgroup> shared4: vec4<u32>;

//#include visible_keys.wgsl

// Two parts in one dispatch (APE's context and plain parts, splits1 > 0): workgroups x < splits take part 0
// (rowInfo rows rowOff + r, scores * scale), x >= splits part 1 (rows rowOff1 + r, scores * scale1, its
// split x - splits of splits1); both parts' lists index the one blocks array, and part 1's partials follow
// part 0's (split index x in the partials' layout: part 1's split s sits at split splits + s).
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let lid = lid3.x;
  let second = wg.x >= p.splits; // uniform: from the workgroup id
  let split = select(wg.x, wg.x - p.splits, second);
  let splits = select(p.splits, p.splits1, second);
  let scale = select(p.scale, p.scale1, second);
  let infoRow = wg.z + select(p.rowOff, p.rowOff1, second);
  let kvh = wg.y / p.chunks;
  let G = p.heads / p.kvHeads;
  let h0 = kvh * G + (wg.y % p.chunks) * NH; // this workgroup's first query head
  let r = wg.z;
  let dq = lid % Q4;
  let grp = lid / Q4;
  let busy = grp < NG; // lanes past NG * Q4 idle

  // this lane's quad of each query head, pre-scaled
  var qv: array<vec4<f32>, GMAX>;
  var acc: array<vec4<f32>, GMAX>;
  //#unroll
  for (var g = 0u; g < NH; g++) {
    acc[g] = vec4<f32>(0.0);
    qv[g] = vec4<f32>(0.0);
    if (busy && h0 + g < (kvh + 1u) * G) { qv[g] = q[(r * p.qStride) / 4u + (h0 + g) * Q4 + dq] * scale; }
  }
  for (var i = lid; i < NG * NH; i += WG) { st[i] = vec4<f32>(NEG, 0.0, 1.0, 0.0); }
  if (lid == 0u) { shared4 = rowInfo[infoRow]; }
  let info = workgroupUniformLoad(&shared4);
  let qpos = info.x;
  let listStart = info.y;
  let listLen = info.z;

  // ---- this split's share of the row's visible keys, from the CURRENT block list ----
  // Visible keys are numbered block after block; thread lid counts those of blocks [b0, b1) of the list,
  // an inclusive scan gives every thread the number before its blocks, and the split takes keys
  // [lo, hi) of ceil(total / splits).
  let per = (listLen + WG - 1u) / WG;
  var owners = 0u; // threads that own blocks: the scan's width
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
  let chunk = (total + splits - 1u) / splits;
  let lo = min(total, split * chunk);
  let hi = min(total, lo + chunk);
  // the block holding key lo, and the number of visible keys before it
  var before = scan[lid] - mine;
  for (var b = b0; b < b1; b++) {
    let v = visible(blocks[b], qpos);
    let n = v.y - v.x;
    if (lo < hi && before <= lo && lo < before + n) { shared4 = vec4<u32>(b, before, 0u, 0u); }
    before += n;
  }
  let start = workgroupUniformLoad(&shared4);

  // ---- online softmax over keys [lo, hi), block by block ----
  var blk = start.x;
  var pre = start.y; // visible keys before block blk
  while (lo < hi && pre < hi && blk < listStart + listLen) {
    workgroupBarrier();
    if (lid == 0u) { shared4 = blocks[blk]; }
    let d = workgroupUniformLoad(&shared4);
    let v = visible(d, qpos);
    let n = v.y - v.x;
    // keys t in [ta, tb) of this block belong to the split
    let ta = v.x + max(lo, pre) - pre;
    let tb = v.x + min(hi, pre + n) - pre;
    let kb = (d.x * p.kvHeads + kvh * d.z) * Q4 + dq; // quad dq of key 0 of this kv head
    // With PREFETCH, K of the first step here, and each step loads the next step's K once its partial
    // dots are stored (latency hidden behind the step's three barriers); else each step loads its own.
    var kq: array<KvRaw, KMAX>;
    var vq: array<KvRaw, KMAX>;
    if (PREFETCH) {
      //#unroll
      for (var k = 0u; k < KT; k++) {
        let t = ta + k * NG + grp;
        kq[k] = KvRaw();
        if (busy && t < tb) { kq[k] = kRaw(kb + t * Q4); }
      }
    }
    for (var t0 = ta; t0 < tb; t0 += TILE) {
      // group grp takes keys t0 + k*NG + grp: for each k the workgroup reads NG consecutive keys
      //#unroll
      for (var k = 0u; k < KT; k++) {
        let t = t0 + k * NG + grp;
        vq[k] = KvRaw();
        if (!PREFETCH) { kq[k] = KvRaw(); }
        if (busy && t < tb) {
          vq[k] = vRaw(kb + t * Q4);
          if (!PREFETCH) { kq[k] = kRaw(kb + t * Q4); }
        }
      }
      if (busy) {
        //#unroll
        for (var k = 0u; k < KT; k++) {
          let kf = unpackKv(kq[k]);
          //#unroll
          for (var g = 0u; g < NH; g++) { red[(grp * P + k * NH + g) * QP + dq] = dot(qv[g], kf); }
        }
      }
      if (PREFETCH) {
        //#unroll
        for (var k = 0u; k < KT; k++) {
          let t = t0 + TILE + k * NG + grp;
          kq[k] = KvRaw();
          if (busy && t < tb) { kq[k] = kRaw(kb + t * Q4); }
        }
      }
      workgroupBarrier();
      // the scores: lane dq sums the partials of pairs dq, dq + Q4, ...
      if (busy) {
        for (var j = dq; j < P; j += Q4) {
          let o = (grp * P + j) * QP;
          var s = 0.0;
          //#unroll
          for (var i = 0u; i < Q4; i++) { s += red[o + i]; }
          if (t0 + (j / NH) * NG + grp >= tb) { s = NEG; }
          sp[grp * P + j] = s;
        }
      }
      workgroupBarrier();
      // the group's softmax state: lane dq updates head dq (and dq + Q4, ...)
      if (busy) {
        for (var g = dq; g < NH; g += Q4) {
          let sg = st[grp * NH + g];
          var mt = NEG;
          //#unroll
          for (var k = 0u; k < KT; k++) { mt = max(mt, sp[grp * P + k * NH + g]); }
          let m = max(sg.x, mt);
          let corr = exp(sg.x - m);
          var l = sg.y * corr;
          //#unroll
          for (var k = 0u; k < KT; k++) {
            let i = grp * P + k * NH + g;
            let s = sp[i];
            var e = 0.0;
            if (s > NEG) { e = exp(s - m); }
            sp[i] = e;
            l += e;
          }
          st[grp * NH + g] = vec4<f32>(m, l, corr, 0.0);
        }
      }
      workgroupBarrier();
      if (busy) {
        // (per head: acc * rescale, then + p_k v_k in key order; each V unpacked once for all heads)
        //#unroll
        for (var g = 0u; g < NH; g++) { acc[g] *= st[grp * NH + g].z; }
        //#unroll
        for (var k = 0u; k < KT; k++) {
          let vf = unpackKv(vq[k]);
          //#unroll
          for (var g = 0u; g < NH; g++) { acc[g] += sp[grp * P + k * NH + g] * vf; }
        }
      }
    }
    pre += n;
    blk++;
  }

  // ---- the groups' partial results merged into the split's (m, l, acc) of each head ----
  // (loops without barriers inside, so that they unroll and acc stays in registers). The last step's
  // barriers already made st visible and ended every read of red.
  //#unroll
  for (var g = 0u; g < NH; g++) {
    var M = NEG;
    //#unroll
    for (var i = 0u; i < NG; i++) { M = max(M, st[i * NH + g].x); }
    if (busy) {
      let a = acc[g] * exp(st[grp * NH + g].x - M);
      let o = ((g * NG + grp) * Q4 + dq) * 4u;
      red[o] = a.x;
      red[o + 1u] = a.y;
      red[o + 2u] = a.z;
      red[o + 3u] = a.w;
    }
  }
  workgroupBarrier();
  let nh = min(NH, (kvh + 1u) * G - h0); // heads of this workgroup that exist
  for (var e = lid; e < nh * Q4; e += WG) {
    let g = e / Q4;
    var sum = vec4<f32>(0.0);
    for (var i = 0u; i < NG; i++) {
      let o = ((g * NG + i) * Q4 + e % Q4) * 4u;
      sum += vec4<f32>(red[o], red[o + 1u], red[o + 2u], red[o + 3u]);
    }
    pAcc[((wg.x * p.rows + r) * p.heads + h0 + g) * Q4 + e % Q4] = sum;
  }
  if (lid < nh) {
    var M = NEG;
    for (var i = 0u; i < NG; i++) { M = max(M, st[i * NH + lid].x); }
    var L = 0.0;
    for (var i = 0u; i < NG; i++) { L += st[i * NH + lid].y * exp(st[i * NH + lid].x - M); }
    pML[(wg.x * p.rows + r) * p.heads + h0 + lid] = vec2<f32>(M, L);
  }
}
