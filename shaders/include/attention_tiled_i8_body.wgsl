// attention_tiled_i8_body: the body of the int8 tiled attention kernel; the including file enables the subgroup-matrix
// extension and defines SGQ (subgroups per workgroup) and PARTS (P as one int8, or two: hi * 127 + lo) before including
// this. See attention_tiled_i8_f16kv.wgsl.

struct Params { rows: u32, heads: u32, kvHeads: u32, group: u32, qStride: u32, scale: f32, window: u32, splits: u32, vsOff: u32 }
@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> kq: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> vq: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> rowInfo: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> blocks: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read> tiles: array<vec2<u32>>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
@group(0) @binding(7) var<storage, read_write> stats: array<f32>;
@group(0) @binding(8) var<uniform> p: Params;
@group(0) @binding(9) var<storage, read> scales: array<f32>;

// Benchmarks only (`ape bench attention --variant i8:P:MASK`), wrong results: bits leave out a phase to time the rest:
// 1 the K / V copy, 2 the S products, 4 the softmax arithmetic, 8 the P V products and their read-back.
override ABLATE: u32 = 0u;
// Tests only: DEBUG 1 writes, instead of the output, the last key tile's scores (base-2 units) of each lane's 32 keys,
// 2 the raw i32 products, 3 the keys' K scales, 4 the row's running max, 5 K bytes, 6 Q bytes (wrong outputs otherwise).
override DEBUG: u32 = 0u;
// How the two lanes of a query vector (lid, lid ^ 16) exchange maxima and sums: 0 through workgroup memory (a barrier
// each), 1 by subgroupShuffleXor (no barrier).
override XCHG: u32 = 0u;
alias L = subgroup_matrix_left<i8, 32, 16>;
alias R = subgroup_matrix_right<i8, 16, 32>;
alias A = subgroup_matrix_result<i32, 16, 16>;
const WG = 32u * SGQ;     // invocations
const HD = 64u;
const BC = 64u;           // keys per key tile
const KW = 20u;           // words per staged 64-byte row (16 of padding against bank conflicts)
const KB = 80u;           // its bytes
const SS = 68u;           // i32 per staged row of a result matrix
const NEG = -1e30;
const LN2 = 0.6931471805599453;

var<workgroup> kst: array<i32, 1280>;              // K tile: 64 keys x 80 bytes
var<workgroup> vst: array<i32, 1280>;              // V tile
var<workgroup> kss: array<f32, 64>;                // K's scales of the tile's keys (0 past the block)
var<workgroup> vss: array<f32, 64>;                // V's
var<workgroup> sst: array<i32, SGQ * 16u * SS>;    // per subgroup 16 x SS i32: S, then P V
var<workgroup> pst: array<i32, SGQ * PARTS * 320u>; // per subgroup PARTS x (16 rows x 80 bytes): Q at first, then P (hi, lo)
var<workgroup> xm: array<f32, WG>;                 // the lanes' exchange of row maxima, sums and P maxima
var<workgroup> xl: array<f32, WG>;
var<workgroup> xp: array<f32, WG>;
// the tile's lowest and highest query position: 16 bytes, not two 4-byte variables (the H200 run showed every
// subgroup-matrix load of the arrays reading 8 bytes early while two 4-byte atomics were declared: keep every
// workgroup variable a multiple of 16 bytes)
var<workgroup> pos: array<atomic<u32>, 4>;
var<workgroup> uni: vec4<u32>;

fn pack(v: vec4<f32>) -> i32 {
  let b = vec4<u32>(bitcast<vec4<u32>>(vec4<i32>(v)) & vec4<u32>(255u));
  return bitcast<i32>(b.x | (b.y << 8u) | (b.z << 16u) | (b.w << 24u));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let sg = lid / 32u;
  let lane = lid % 32u;
  let r = lane % 16u;
  let h = lane / 16u;
  let tile = tiles[wg.y];
  let v0 = tile.x;
  let nv = tile.y;
  let kvh = wg.x;
  let split = wg.z;
  let G = p.group;
  if (lid == 0u) {
    atomicStore(&pos[0], 0xffffffffu);
    atomicStore(&pos[1], 0u);
  }
  let iv = sg * 16u + r;
  let mine = iv < nv;
  let v = v0 + min(iv, nv - 1u);
  let row = v / G;
  let head = kvh * G + v % G;
  let qp = rowInfo[row].x;
  workgroupBarrier();
  if (mine && h == 0u) {
    atomicMin(&pos[0], qp);
    atomicMax(&pos[1], qp);
  }
  // this lane's 32 values of its query vector, quantized with the vector's scale (over both halves)
  let qBase = (row * p.qStride + head * HD) / 4u + h * 8u;
  var qv: array<vec4<f32>, 8>;
  var amax = 0.0;
  for (var i = 0u; i < 8u; i++) {
    qv[i] = select(vec4<f32>(0.0), q[qBase + i], mine);
    let a = abs(qv[i]);
    amax = max(amax, max(max(a.x, a.y), max(a.z, a.w)));
  }
  // the two lanes of a vector (lid and lid ^ 16) exchange (XCHG)
  if (XCHG == 1u) {
    amax = max(amax, subgroupShuffleXor(amax, 16u));
  } else {
    xm[lid] = amax;
    workgroupBarrier();
    amax = max(amax, xm[lid ^ 16u]);
  }
  let qInv = select(0.0, 127.0 / amax, amax > 0.0);
  let qScale = amax / 127.0 * p.scale;
  let pb = sg * PARTS * 320u; // this subgroup's P staging (words): hi at pb, lo at pb + 320
  for (var i = 0u; i < 8u; i++) { pst[pb + r * KW + h * 8u + i] = pack(clamp(round(qv[i] * qInv), vec4<f32>(-127.0), vec4<f32>(127.0))); }
  workgroupBarrier();
  var dq: array<f32, 32>;
  if (DEBUG == 6u) {
    for (var j = 0u; j < 32u; j++) { dq[j] = f32((pst[pb + r * KW + (h * 32u + j) / 4u] << (24u - 8u * ((h * 32u + j) % 4u))) >> 24u); }
  }
  let qa0 = subgroupMatrixLoad<L>(&pst, pb * 4u, false, KB);
  let qa1 = subgroupMatrixLoad<L>(&pst, pb * 4u + 32u, false, KB);
  if (lid == 0u) { uni = vec4<u32>(atomicLoad(&pos[0]), atomicLoad(&pos[1]), 0u, 0u); }
  let range = workgroupUniformLoad(&uni); // the tile's lowest and highest query position
  let loPos = range.x;
  let hiPos = range.y;
  let r0 = rowInfo[v0 / G]; // every row of a tile shares its group's list
  let listStart = r0.y;
  let listEnd = r0.y + r0.z;
  let w = p.window;
  let sb = sg * 16u * SS; // this subgroup's result staging (i32)
  let qf = select(0.0, 1.0, mine);

  var m = NEG; // running max (base-2 units)
  var l = 0.0;
  var o: array<f32, 32>;
  var dbg: array<f32, 32>;
  var c = 0u; // tiles of the list before the current block
  for (var b = listStart; b < listEnd; b++) {
    let blk = blocks[b];
    let nt = (blk.y + BC - 1u) / BC;
    let slot0 = blk.x * p.kvHeads + kvh * blk.z;
    for (var t = (split + p.splits - c % p.splits) % p.splits; t < nt; t += p.splits) {
      let t0 = t * BC;
      let n = min(BC, blk.y - t0);
      let kp0 = blk.w + t0;
      if (kp0 > hiPos || (w > 0u && kp0 + n - 1u + w <= loPos)) { continue; }
      let full = n == BC && kp0 + n - 1u <= loPos && (w == 0u || hiPos - kp0 < w);
      workgroupBarrier(); // everyone is done with the previous tile
      // 64 keys x 64 bytes of K and of V: 256 vec4 each, two per invocation
      for (var e = lid; e < select(256u, 0u, (ABLATE & 1u) != 0u); e += WG) {
        let key = e / 4u;
        let src = (slot0 + t0 + key) * 4u + e % 4u;
        let x = kq[src];
        let y = vq[src];
        let at = key * KW + 4u * (e % 4u);
        kst[at] = bitcast<i32>(x.x); kst[at + 1u] = bitcast<i32>(x.y); kst[at + 2u] = bitcast<i32>(x.z); kst[at + 3u] = bitcast<i32>(x.w);
        vst[at] = bitcast<i32>(y.x); vst[at + 1u] = bitcast<i32>(y.y); vst[at + 2u] = bitcast<i32>(y.z); vst[at + 3u] = bitcast<i32>(y.w);
      }
      for (var e = lid; e < 64u; e += WG) {
        let ok = e < n; // past the block: scale 0 (whatever the slots hold)
        kss[e] = select(0.0, scales[slot0 + t0 + min(e, n - 1u)], ok);
        vss[e] = select(0.0, scales[p.vsOff + slot0 + t0 + min(e, n - 1u)], ok);
      }
      workgroupBarrier();
      if ((ABLATE & 2u) == 0u) {
        // S = Q K^T: 16 vectors x 64 keys
        // (each product starts from subgroupMatrixMultiply: no reliance on a matrix variable's zero value in a loop)
        var s0 = subgroupMatrixMultiply<i32>(qa0, subgroupMatrixLoad<R>(&kst, 0u * KB, true, KB));
        s0 = subgroupMatrixMultiplyAccumulate(qa1, subgroupMatrixLoad<R>(&kst, 0u * KB + 32u, true, KB), s0);
        var s1 = subgroupMatrixMultiply<i32>(qa0, subgroupMatrixLoad<R>(&kst, 16u * KB, true, KB));
        s1 = subgroupMatrixMultiplyAccumulate(qa1, subgroupMatrixLoad<R>(&kst, 16u * KB + 32u, true, KB), s1);
        var s2 = subgroupMatrixMultiply<i32>(qa0, subgroupMatrixLoad<R>(&kst, 32u * KB, true, KB));
        s2 = subgroupMatrixMultiplyAccumulate(qa1, subgroupMatrixLoad<R>(&kst, 32u * KB + 32u, true, KB), s2);
        var s3 = subgroupMatrixMultiply<i32>(qa0, subgroupMatrixLoad<R>(&kst, 48u * KB, true, KB));
        s3 = subgroupMatrixMultiplyAccumulate(qa1, subgroupMatrixLoad<R>(&kst, 48u * KB + 32u, true, KB), s3);
        subgroupMatrixStore(&sst, sb, s0, false, SS);
        subgroupMatrixStore(&sst, sb + 16u, s1, false, SS);
        subgroupMatrixStore(&sst, sb + 32u, s2, false, SS);
        subgroupMatrixStore(&sst, sb + 48u, s3, false, SS);
      }
      workgroupBarrier();
      // online softmax over this lane's 32 keys (and its partner lane's, h ^ 1, for the row's max and sum)
      var sc: array<f32, 32>;
      var mt = NEG;
      for (var j = 0u; j < select(32u, 0u, (ABLATE & 4u) != 0u); j++) {
        let key = h * 32u + j;
        var x = f32(sst[sb + r * SS + key]) * qScale * kss[key];
        if (!full) {
          let kp = kp0 + key;
          x = select(NEG, x, key < n && kp <= qp && (w == 0u || qp - kp < w));
        }
        sc[j] = x;
        mt = max(mt, x);
        if (DEBUG == 1u) { dbg[j] = x; }
        if (DEBUG == 2u) { dbg[j] = f32(sst[sb + r * SS + key]); }
        if (DEBUG == 3u) { dbg[j] = kss[key]; }
        // 5: the K bytes of key r (values h * 32 + j) as staged; 6: this lane's Q bytes as quantized (pst before P)
        if (DEBUG == 5u) { dbg[j] = f32((kst[r * KW + (h * 32u + j) / 4u] << (24u - 8u * ((h * 32u + j) % 4u))) >> 24u); }
      }
      if (XCHG == 1u) {
        mt = max(mt, subgroupShuffleXor(mt, 16u));
      } else {
        xm[lid] = mt;
        workgroupBarrier();
        mt = max(mt, xm[lid ^ 16u]);
      }
      let mNew = max(m, mt);
      let corr = exp2(m - mNew);
      m = mNew;
      var ls = 0.0;
      var pm = 0.0;
      for (var j = 0u; j < 32u; j++) {
        let pj = select(0.0, exp2(sc[j] - mNew), sc[j] > NEG);
        ls += pj;
        sc[j] = pj * vss[h * 32u + j]; // V's scale folded into P
        pm = max(pm, sc[j]);
      }
      if (XCHG == 1u) {
        ls += subgroupShuffleXor(ls, 16u);
        pm = max(pm, subgroupShuffleXor(pm, 16u));
      } else {
        xl[lid] = ls;
        xp[lid] = pm;
        workgroupBarrier();
        ls += xl[lid ^ 16u];
        pm = max(pm, xp[lid ^ 16u]);
      }
      l = l * corr + ls;
      let top = select(127.0, 16129.0, PARTS == 2u);
      let pInv = select(0.0, top / pm, pm > 1e-30); // (a tile this far below the running max adds nothing; no inf)
      let fr = pm / top * qf; // the row's factor: O_tile = fr * (P_q V_q)
      for (var i = 0u; i < 8u; i++) {
        let x = round(vec4<f32>(sc[4u * i], sc[4u * i + 1u], sc[4u * i + 2u], sc[4u * i + 3u]) * pInv);
        if (PARTS == 2u) {
          let hi = floor(x / 127.0);
          pst[pb + r * KW + h * 8u + i] = pack(hi);
          pst[pb + 320u + r * KW + h * 8u + i] = pack(x - 127.0 * hi);
        } else {
          pst[pb + r * KW + h * 8u + i] = pack(x);
        }
      }
      for (var i = 0u; i < 32u; i++) { o[i] *= corr; }
      workgroupBarrier();
      // O_tile = P V: 16 vectors x 64 values, P's hi part (or its only part)
      for (var part = 0u; part < select(PARTS, 0u, (ABLATE & 8u) != 0u); part++) {
        let pa0 = subgroupMatrixLoad<L>(&pst, (pb + part * 320u) * 4u, false, KB);
        let pa1 = subgroupMatrixLoad<L>(&pst, (pb + part * 320u) * 4u + 32u, false, KB);
        var o0 = subgroupMatrixMultiply<i32>(pa0, subgroupMatrixLoad<R>(&vst, 0u, false, KB));
        o0 = subgroupMatrixMultiplyAccumulate(pa1, subgroupMatrixLoad<R>(&vst, 32u * KB, false, KB), o0);
        var o1 = subgroupMatrixMultiply<i32>(pa0, subgroupMatrixLoad<R>(&vst, 16u, false, KB));
        o1 = subgroupMatrixMultiplyAccumulate(pa1, subgroupMatrixLoad<R>(&vst, 32u * KB + 16u, false, KB), o1);
        var o2 = subgroupMatrixMultiply<i32>(pa0, subgroupMatrixLoad<R>(&vst, 32u, false, KB));
        o2 = subgroupMatrixMultiplyAccumulate(pa1, subgroupMatrixLoad<R>(&vst, 32u * KB + 32u, false, KB), o2);
        var o3 = subgroupMatrixMultiply<i32>(pa0, subgroupMatrixLoad<R>(&vst, 48u, false, KB));
        o3 = subgroupMatrixMultiplyAccumulate(pa1, subgroupMatrixLoad<R>(&vst, 32u * KB + 48u, false, KB), o3);
        if (part == 1u) { workgroupBarrier(); } // the lanes are done reading the hi part's products
        subgroupMatrixStore(&sst, sb, o0, false, SS);
        subgroupMatrixStore(&sst, sb + 16u, o1, false, SS);
        subgroupMatrixStore(&sst, sb + 32u, o2, false, SS);
        subgroupMatrixStore(&sst, sb + 48u, o3, false, SS);
        workgroupBarrier();
        let f = select(fr, fr * 127.0, PARTS == 2u && part == 0u);
        for (var i = 0u; i < 32u; i++) { o[i] += f * f32(sst[sb + r * SS + h * 32u + i]); }
      }
    }
    c += nt;
  }
  if (!mine) { return; }
  if (DEBUG > 0u) {
    let rd = (split * p.rows + row) * p.heads + head;
    for (var i = 0u; i < 32u; i++) { out[rd * HD + h * 32u + i] = select(select(dbg[i], dq[i], DEBUG == 6u), m, DEBUG == 4u); }
    return;
  }
  let rh = (split * p.rows + row) * p.heads + head;
  var f = 1.0;
  if (p.splits == 1u) { f = select(0.0, 1.0 / l, l > 0.0); }
  for (var i = 0u; i < 32u; i++) { out[rh * HD + h * 32u + i] = o[i] * f; }
  if (h == 0u) {
    if (p.splits == 1u) {
      stats[rh] = select(NEG, m * LN2 + log(l), l > 0.0);
    } else {
      stats[2u * rh] = select(NEG, m * LN2, m > NEG);
      stats[2u * rh + 1u] = l;
    }
  }
}
