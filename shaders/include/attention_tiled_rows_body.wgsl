// attention_tiled_rows_body: the row-per-invocation tiled attention kernel shared by
// attention_tiled_rows.wgsl (f32 KV pools) and attention_tiled_rows_f16kv.wgsl (half-float pools); the
// including file binds kpool (1) and vpool (2) and defines kQuad(i) and vQuad(i) (key / value elements
// i..i+3 of the pools as f32; i a multiple of 4). See attention_tiled_rows.wgsl's header for the interface.
//
// Work split. Query vectors (row, query head) of one kv head are numbered v = row * group + g; a tile is
// a run of at most NT consecutive vectors of ONE row group (one block list), from the tile table.
// Invocation i owns vector v0 + i WHOLE: its query (pre-scaled) and its output accumulator live in
// registers (HQ <= 16 quads each), and so do its running max m and sum l: no reduction between
// invocations, no P or Q in workgroup memory. Key tiles of BC keys stream through workgroup memory
// key-major ([BC][HQ] quads of K, then of V, the pools' own layout: coalesced vec loads, whole-vec4
// stores); every invocation then reads the same quad at the same time (a broadcast, no bank conflict):
// per key 2 * HQ vec4 loads feed 8 * HQ FMAs. Keys go 16 at a time (scores in registers, one online-
// softmax rescale per 16 keys). Two barriers per key tile. Tiles wholly visible to every row of the tile
// skip the per-key masks; tiles no row can see (causal, window) are skipped.
// Every private array is indexed only by loops of constant trip count (HQ, a pipeline constant that Tint and
// naga substitute before code generation, and CH), marked //#unroll: on GPUs they are unrolled in the source
// (src/gpu/unroll.ts; Deno's wgpu would otherwise emit loops drivers do not unroll), so the arrays stay in
// registers on every compiler.
//#include attention_tiled_io.wgsl

override HD: u32 = 64u;        // head_dim, a multiple of 4, <= 4 * QMAX
override NT: u32 = 128u;       // invocations = query vectors per tile
override BC: u32 = 32u;        // keys per key tile, a multiple of CH
override HQ: u32 = HD / 4u;    // quads per head vector
override KVN: u32 = BC * HQ;   // quads of one key tile of K (or V)
const QMAX = 16u;              // register quads per vector (head_dim <= 64)
const CH = 16u;                // keys per softmax step
const NEG = -1e30;

var<workgroup> ks: array<vec4<f32>, KVN>; // K of the key tile, [key][quad]
var<workgroup> vs: array<vec4<f32>, KVN>; // V of the key tile, [key][quad]
var<workgroup> posLo: atomic<u32>;
var<workgroup> posHi: atomic<u32>;
var<workgroup> uni: vec4<u32>;

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let tile = tiles[wg.y];
  let v0 = tile.x;
  let nv = tile.y;
  let kvh = wg.x;
  let split = wg.z;
  let G = p.group;
  if (lid == 0u) {
    atomicStore(&posLo, 0xffffffffu);
    atomicStore(&posHi, 0u);
  }
  // this invocation's query vector, scaled (zeros past the tile's end), and its position
  let mine = lid < nv;
  let v = v0 + min(lid, nv - 1u);
  let qBase = ((v / G) * p.qStride + (kvh * G + v % G) * HD) / 4u;
  var qv: array<vec4<f32>, QMAX>;
  //#unroll
  for (var i = 0u; i < HQ; i++) { qv[i] = select(vec4<f32>(0.0), q[qBase + i] * p.scale, mine); }
  let qp = rowInfo[v / G].x;
  workgroupBarrier(); // posLo / posHi initialised
  if (mine) {
    atomicMin(&posLo, qp);
    atomicMax(&posHi, qp);
  }
  workgroupBarrier();
  if (lid == 0u) { uni = vec4<u32>(atomicLoad(&posLo), atomicLoad(&posHi), 0u, 0u); }
  let range = workgroupUniformLoad(&uni); // the tile's lowest and highest query position
  let loPos = range.x;
  let hiPos = range.y;
  let r0 = rowInfo[v0 / G]; // every row of a tile shares its group's list (read-only storage, uniform index)
  let listStart = r0.y;
  let listEnd = r0.y + r0.z;
  let w = p.window;

  var m = NEG;
  var l = 0.0;
  var o: array<vec4<f32>, QMAX>;
  var c = 0u; // tiles of the list before the current block (split z takes tiles c % splits == z)
  for (var b = listStart; b < listEnd; b++) {
    let blk = blocks[b]; // base, tokens, capacity, firstPos (uniform: read-only storage, uniform index)
    let nt = (blk.y + BC - 1u) / BC;
    let kvBase = (blk.x * p.kvHeads + kvh * blk.z) * HD;
    for (var t = (split + p.splits - c % p.splits) % p.splits; t < nt; t += p.splits) {
      let t0 = t * BC;
      let n = min(BC, blk.y - t0);
      let kp0 = blk.w + t0;
      if (kp0 > hiPos || (w > 0u && kp0 + n - 1u + w <= loPos)) { continue; }
      // every key of the tile visible to every row of the tile: no masks
      let full = n == BC && kp0 + n - 1u <= loPos && (w == 0u || hiPos - kp0 < w);
      workgroupBarrier(); // everyone is done with the previous tile
      for (var e = lid; e < KVN; e += NT) {
        let kk = e / HQ;
        var x = vec4<f32>(0.0);
        var y = vec4<f32>(0.0); // zeros past the block: 0 * garbage could be NaN
        if (kk < n) {
          let at = kvBase + t0 * HD + 4u * e;
          x = kQuad(at);
          y = vQuad(at);
        }
        ks[e] = x;
        vs[e] = y;
      }
      workgroupBarrier();
      for (var c0 = 0u; c0 < BC; c0 += CH) {
        var s: array<f32, CH>;
        //#unroll
        for (var j = 0u; j < CH; j++) {
          let kb = (c0 + j) * HQ;
          var a = qv[0] * ks[kb];
          //#unroll
          for (var i = 1u; i < HQ; i++) { a += qv[i] * ks[kb + i]; }
          s[j] = (a.x + a.y) + (a.z + a.w);
        }
        if (!full) {
          //#unroll
          for (var j = 0u; j < CH; j++) {
            let kp = kp0 + c0 + j;
            let vis = c0 + j < n && kp <= qp && (w == 0u || qp - kp < w);
            s[j] = select(NEG, s[j], vis);
          }
        }
        var mx = s[0];
        //#unroll
        for (var j = 1u; j < CH; j++) { mx = max(mx, s[j]); }
        let mNew = max(m, mx);
        let corr = exp(m - mNew);
        m = mNew;
        l *= corr;
        //#unroll
        for (var i = 0u; i < HQ; i++) { o[i] *= corr; }
        //#unroll
        for (var j = 0u; j < CH; j++) {
          // masked scores are exactly NEG: probability 0 (also while the row has seen nothing, mNew = NEG)
          let pj = select(0.0, exp(s[j] - mNew), s[j] > NEG);
          l += pj;
          let vb = (c0 + j) * HQ;
          //#unroll
          for (var i = 0u; i < HQ; i++) { o[i] += pj * vs[vb + i]; }
        }
      }
    }
    c += nt;
  }
  if (!mine) { return; }
  let rh = (split * p.rows + v / G) * p.heads + kvh * G + v % G;
  var f = 1.0;
  if (p.splits == 1u) { f = select(0.0, 1.0 / l, l > 0.0); }
  //#unroll
  for (var i = 0u; i < HQ; i++) { out[rh * HQ + i] = o[i] * f; }
  if (p.splits == 1u) {
    stats[rh] = select(NEG, m + log(l), l > 0.0);
  } else {
    stats[2u * rh] = m;
    stats[2u * rh + 1u] = l;
  }
}
