// attention_tiled_body: the tiled (FlashAttention-2 style) attention kernel shared by attention_tiled.wgsl
// (f32 KV pools) and attention_tiled_f16kv.wgsl (half-float pools); the including file binds kpool (1)
// and vpool (2) and defines kQuad(i) and vQuad(i) (key / value elements i..i+3 of the pools, f32;
// i a multiple of 4). See attention_tiled.wgsl's header for the interface.
//
// Work split. Query vectors (row, query head) of one kv head are numbered v = row * group + g; a tile
// is a run of at most MQ = 4 * TQ consecutive vectors of ONE row group (one block list), from the
// tile table. Thread (tq, tk) of the TQ x TK threads owns the vectors tq + i * TQ (i < 4):
//  - scores: those 4 vectors x the keys 4 * tk .. 4 * tk + 3 of each key tile of BC = 4 * TK keys;
//  - output: those 4 vectors x the head_dim quads tk + e * TK (e < RD4).
// Both use the same rows, so a row's running max m and its share of the sum l never leave the thread;
// only a key tile's row maxima meet in workgroup memory (red). Per key tile: K^T -> kv, barrier,
// S = Q K^T (16 vec4 FMAs per 8 vec4 loads), barrier, V -> kv and P -> pt, barrier, O += P V
// (4 * RD4 vec4 FMAs per 1 + RD4 loads), barrier. Q (pre-scaled) stays in workgroup memory throughout.
// Tiles no row of the tile can see (above the causal diagonal, outside the window) are skipped.
//#include attention_tiled_io.wgsl

override HD: u32 = 64u;        // head_dim, a multiple of 4, <= 32 * TK
override TQ: u32 = 16u;        // thread rows: a tile holds MQ = 4 * TQ query vectors
override TK: u32 = 4u;         // thread columns: a key tile holds BC = 4 * TK keys (default: fits 32 KiB)
override NT: u32 = TQ * TK;    // threads per workgroup
override HQ: u32 = HD / 4u;    // quads per head vector
override QS: u32 = HQ + 1u;    // row stride of qs in vec4s (odd: the 4 rows a warp reads hit distinct banks)
override MQ: u32 = 4u * TQ;
override BC: u32 = 4u * TK;
override QN: u32 = MQ * QS;
override KVN: u32 = BC * HQ;   // one key tile of K^T ([HD][BC]) or of V ([BC][HQ] quads)
override PN: u32 = BC * TQ;
override RD4: u32 = (HQ + TK - 1u) / TK; // output quads per thread and row
const RD4MAX = 8u;
const NEG = -1e30;

var<workgroup> qs: array<vec4<f32>, QN>;   // the tile's query vectors * scale, [MQ][QS]
var<workgroup> kv: array<vec4<f32>, KVN>;  // K^T of the key tile (vec4 = 4 keys), then its V
var<workgroup> pt: array<vec4<f32>, PN>;   // P^T: [key][tq] -> the 4 rows of thread row tq
var<workgroup> red: array<vec4<f32>, NT>;  // per thread: its 4 rows' tile maxima (at the end: sums)
var<workgroup> posLo: atomic<u32>;
var<workgroup> posHi: atomic<u32>;
var<workgroup> uni: vec4<u32>;

// Register arrays are only ever indexed by constant-trip loops over e (unrolled, so they stay in
// registers); per-row code is written out four times through these helpers instead of a loop over rows.

// position of local query vector vl (0 past the tile's end), folded into the tile's position range
fn rowPos(v0: u32, nv: u32, vl: u32) -> u32 {
  if (vl >= nv) { return 0u; }
  let pos = rowInfo[(v0 + vl) / p.group].x;
  atomicMin(&posLo, pos);
  atomicMax(&posHi, pos);
  return pos;
}

// one row's results: its quads of the output (normalised with one split) and its lse, or its partials
fn storeRow(o: array<vec4<f32>, RD4MAX>, m: f32, l: f32, v: u32, split: u32, kvh: u32, tk: u32) {
  let G = p.group;
  let rh = (split * p.rows + v / G) * p.heads + kvh * G + v % G;
  var f = 1.0;
  if (p.splits == 1u) { f = select(0.0, 1.0 / l, l > 0.0); }
  for (var e = 0u; e < RD4; e++) {
    let d4 = tk + e * TK;
    if (d4 < HQ) { out[rh * HQ + d4] = o[e] * f; }
  }
  if (tk == 0u) {
    if (p.splits == 1u) {
      stats[rh] = select(NEG, m + log(l), l > 0.0);
    } else {
      stats[2u * rh] = m;
      stats[2u * rh + 1u] = l;
    }
  }
}

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let tile = tiles[wg.y];
  let v0 = tile.x;
  let nv = tile.y;
  let kvh = wg.x;
  let split = wg.z;
  let G = p.group;
  let tq = lid / TK;
  let tk = lid % TK;
  if (lid == 0u) {
    atomicStore(&posLo, 0xffffffffu);
    atomicStore(&posHi, 0u);
  }
  // the tile's query vectors, scaled, into qs (zeros past the tile's end)
  for (var e = lid; e < MQ * HQ; e += NT) {
    let vl = e / HQ;
    let d4 = e % HQ;
    var x = vec4<f32>(0.0);
    if (vl < nv) {
      let v = v0 + vl;
      x = q[((v / G) * p.qStride + (kvh * G + v % G) * HD) / 4u + d4] * p.scale;
    }
    qs[vl * QS + d4] = x;
  }
  workgroupBarrier(); // posLo / posHi initialised
  // this thread's 4 rows' positions; the tile's position range (for skipping key tiles)
  let qp = vec4<u32>(rowPos(v0, nv, tq), rowPos(v0, nv, tq + TQ), rowPos(v0, nv, tq + 2u * TQ), rowPos(v0, nv, tq + 3u * TQ));
  workgroupBarrier();
  if (lid == 0u) {
    let r0 = rowInfo[v0 / G]; // every row of a tile shares its group's list
    uni = vec4<u32>(r0.y, r0.z, atomicLoad(&posLo), atomicLoad(&posHi));
  }
  let info = workgroupUniformLoad(&uni); // listStart, listLen, lowest and highest query position
  let loPos = info.z;
  let hiPos = info.w;

  let kOff = vec4<u32>(0u, 1u, 2u, 3u) + 4u * tk; // this thread's keys in a key tile
  var m = vec4<f32>(NEG);
  var l = vec4<f32>(0.0);
  // rows tq + i * TQ: oi[e] holds quad tk + e * TK of the output
  var o0: array<vec4<f32>, RD4MAX>;
  var o1: array<vec4<f32>, RD4MAX>;
  var o2: array<vec4<f32>, RD4MAX>;
  var o3: array<vec4<f32>, RD4MAX>;
  var c = 0u; // tiles of the list before the current block (split z takes tiles c % splits == z)
  for (var b = info.x; b < info.x + info.y; b++) {
    workgroupBarrier();
    if (lid == 0u) { uni = blocks[b]; }
    let blk = workgroupUniformLoad(&uni); // base, tokens, capacity, firstPos
    let nt = (blk.y + BC - 1u) / BC;
    let kvBase = (blk.x * p.kvHeads + kvh * blk.z) * HD;
    for (var t = (split + p.splits - c % p.splits) % p.splits; t < nt; t += p.splits) {
      let t0 = t * BC;
      let n = min(BC, blk.y - t0);
      let kp0 = blk.w + t0;
      if (kp0 > hiPos || (p.window > 0u && kp0 + n - 1u + p.window <= loPos)) { continue; }
      // K^T: element (d, key kk) at kv[d * TK + kk / 4][kk % 4]
      for (var e = lid; e < KVN; e += NT) {
        let kk = e % BC;
        let d4 = e / BC;
        var x = vec4<f32>(0.0);
        if (kk < n) { x = kQuad(kvBase + (t0 + kk) * HD + 4u * d4); }
        let at = 4u * d4 * TK + kk / 4u;
        kv[at][kk % 4u] = x.x;
        kv[at + TK][kk % 4u] = x.y;
        kv[at + 2u * TK][kk % 4u] = x.z;
        kv[at + 3u * TK][kk % 4u] = x.w;
      }
      workgroupBarrier();
      // scores of the 4 rows x 4 keys
      var s0 = vec4<f32>(0.0);
      var s1 = vec4<f32>(0.0);
      var s2 = vec4<f32>(0.0);
      var s3 = vec4<f32>(0.0);
      for (var d4 = 0u; d4 < HQ; d4++) {
        let qa = qs[tq * QS + d4];
        let qb = qs[(tq + TQ) * QS + d4];
        let qc = qs[(tq + 2u * TQ) * QS + d4];
        let qd = qs[(tq + 3u * TQ) * QS + d4];
        for (var j = 0u; j < 4u; j++) {
          let kt = kv[(4u * d4 + j) * TK + tk];
          s0 += qa[j] * kt;
          s1 += qb[j] * kt;
          s2 += qc[j] * kt;
          s3 += qd[j] * kt;
        }
      }
      // visibility: kp <= qp and (no window or qp - kp < window), for keys inside the block
      let kp = vec4<u32>(kp0) + kOff;
      let inBlock = kOff < vec4<u32>(n);
      let w = p.window;
      s0 = select(vec4<f32>(NEG), s0, inBlock & (kp <= vec4<u32>(qp.x)) & ((vec4<u32>(qp.x) - kp < vec4<u32>(w)) | vec4<bool>(w == 0u)));
      s1 = select(vec4<f32>(NEG), s1, inBlock & (kp <= vec4<u32>(qp.y)) & ((vec4<u32>(qp.y) - kp < vec4<u32>(w)) | vec4<bool>(w == 0u)));
      s2 = select(vec4<f32>(NEG), s2, inBlock & (kp <= vec4<u32>(qp.z)) & ((vec4<u32>(qp.z) - kp < vec4<u32>(w)) | vec4<bool>(w == 0u)));
      s3 = select(vec4<f32>(NEG), s3, inBlock & (kp <= vec4<u32>(qp.w)) & ((vec4<u32>(qp.w) - kp < vec4<u32>(w)) | vec4<bool>(w == 0u)));
      red[lid] = vec4<f32>(
        max(max(s0.x, s0.y), max(s0.z, s0.w)), max(max(s1.x, s1.y), max(s1.z, s1.w)),
        max(max(s2.x, s2.y), max(s2.z, s2.w)), max(max(s3.x, s3.y), max(s3.z, s3.w)));
      workgroupBarrier(); // every thread is done with K^T; red is complete
      // V: quad d4 of key kk at kv[kk * HQ + d4]
      for (var e = lid; e < KVN; e += NT) {
        let kk = e / HQ;
        var x = vec4<f32>(0.0); // zeros past the block: 0 * garbage could be NaN
        if (kk < n) { x = vQuad(kvBase + (t0 + kk) * HD + 4u * (e % HQ)); }
        kv[e] = x;
      }
      var mx = vec4<f32>(NEG);
      for (var t2 = 0u; t2 < TK; t2++) { mx = max(mx, red[tq * TK + t2]); }
      let mNew = max(m, mx);
      let corr = exp(m - mNew);
      m = mNew;
      // masked scores are exactly NEG: probability 0 (also while the row has seen nothing, mNew = NEG)
      let p0 = select(vec4<f32>(0.0), exp(s0 - mNew.x), s0 > vec4<f32>(NEG));
      let p1 = select(vec4<f32>(0.0), exp(s1 - mNew.y), s1 > vec4<f32>(NEG));
      let p2 = select(vec4<f32>(0.0), exp(s2 - mNew.z), s2 > vec4<f32>(NEG));
      let p3 = select(vec4<f32>(0.0), exp(s3 - mNew.w), s3 > vec4<f32>(NEG));
      let one = vec4<f32>(1.0);
      l = l * corr + vec4<f32>(dot(p0, one), dot(p1, one), dot(p2, one), dot(p3, one));
      for (var e = 0u; e < RD4; e++) {
        o0[e] *= corr.x;
        o1[e] *= corr.y;
        o2[e] *= corr.z;
        o3[e] *= corr.w;
      }
      for (var j = 0u; j < 4u; j++) {
        pt[(4u * tk + j) * TQ + tq] = vec4<f32>(p0[j], p1[j], p2[j], p3[j]);
      }
      workgroupBarrier(); // V and P are complete
      // all BC keys (a constant trip count): past the block's end p and v are 0
      for (var j = 0u; j < BC; j++) {
        let pr = pt[j * TQ + tq];
        for (var e = 0u; e < RD4; e++) {
          let d4 = tk + e * TK;
          if (HQ % TK == 0u || d4 < HQ) {
            let x = kv[j * HQ + d4];
            o0[e] += pr.x * x;
            o1[e] += pr.y * x;
            o2[e] += pr.z * x;
            o3[e] += pr.w * x;
          }
        }
      }
      workgroupBarrier(); // kv and pt may be overwritten
    }
    c += nt;
  }
  // each row's sum over the TK threads that hold a share of its keys
  workgroupBarrier();
  red[lid] = l;
  workgroupBarrier();
  var lt = vec4<f32>(0.0);
  for (var t2 = 0u; t2 < TK; t2++) { lt += red[tq * TK + t2]; }
  if (tq < nv) { storeRow(o0, m.x, lt.x, v0 + tq, split, kvh, tk); }
  if (tq + TQ < nv) { storeRow(o1, m.y, lt.y, v0 + tq + TQ, split, kvh, tk); }
  if (tq + 2u * TQ < nv) { storeRow(o2, m.z, lt.z, v0 + tq + 2u * TQ, split, kvh, tk); }
  if (tq + 3u * TQ < nv) { storeRow(o3, m.w, lt.w, v0 + tq + 3u * TQ, split, kvh, tk); }
}
