// matmul_float_body: the register-blocked prefill matmul shared by matmul_f32, matmul_f16 (f32 arithmetic)
// and matmul_f16c (f16 arithmetic). The including file declares
//   alias T = f32 | f16;        the arithmetic type of the tiles and products
//   const HALF: bool;           true for f16 products: each output's f16 partial sum of KF products (8,
//                               as many as keep the model-level error of f16 compute within 2e-2) is
//                               promoted to f32 and accumulated in f32
// binds w (binding 1) and defines load_w4(i) -> vec4<T>: W's i-th group of 4 weights (along k).
// See matmul_f32.wgsl's header for the inputs, outputs and bounds.
//
// Tiling (pipeline override constants, chosen per adapter and layer shape by src/engine/linear.ts):
//   a workgroup computes a BM x BN tile of y (BM rows of x, BN rows of W) with (BM/TM) * (BN/TN) invocations,
//   each a TM x TN block of outputs held in registers. K advances BK at a time: each step the workgroup loads
//   x[row0.., k0..k0+BK) and W[col0.., k0..k0+BK) as vec4 along k (consecutive invocations read consecutive
//   pieces of a row: coalesced), and stores them transposed, k-major, into workgroup memory, so that each k
//   of the inner loop reads TM/4 vec4 of x rows and TN/4 vec4 of W rows for TM * TN FMAs.
//   Invocation (tx, ty) owns rows (ty + RY*i)*4 + 0..3 (i < TM/4, RY = BM/TM) and columns (tx + CX*j)*4 + 0..3
//   (j < TN/4, CX = BN/TN): neighbouring invocations read neighbouring vec4 (no bank conflicts) and write
//   neighbouring outputs. Each k-row of a tile is padded by one vec4 (stride BM/4 + 1) so the transposing
//   stores spread over the banks.
//   NB = 2 double-buffers the tiles: the next step's global loads are issued into registers before the
//   current step's arithmetic and stored into the other buffer after it, one barrier per step. NB = 1 uses
//   one buffer (half the workgroup memory) and two barriers per step, loading straight into it.
//   Every private-array index is a literal and the TM / TN / XL / WL branches fold away with the
//   constants, so the register block stays in registers on every compiler.
// Limits (checked by linear.ts tileConstants): TM, TN in {4, 8}; BM % TM == 0, BN % TN == 0, BK % 4 == 0;
//   with NB = 2 at most 4 vec4 of each operand per invocation per step (BM*BK/4 <= 4 * invocations, also
//   BN); workgroup memory NB * BK * (BM + 4 + BN + 4) * sizeof(T) bytes.
// Edges: rows >= M, columns >= N and k >= K load as zeros (clamped index, selected value: no divergent
//   branch around a load) and are not stored; K need not be a multiple of BK.
struct Params { M: u32, N: u32, K: u32, ldy: u32, colOffset: u32, flags: u32 }
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
//#include linear_store.wgsl

override BM: u32 = 64;
override BN: u32 = 64;
override BK: u32 = 16;
override TM: u32 = 4;
override TN: u32 = 4;
override NB: u32 = 2;
override KF: u32 = 8; // HALF: products per f16 partial sum (one f32 add per KF FMAs)
override CX: u32 = BN / TN; // invocations along columns
override WG: u32 = (BM / TM) * CX;
override SX: u32 = BM / 4u + 1u; // vec4 per k-row of the x tile (one of padding)
override SW: u32 = BN / 4u + 1u;
override XL: u32 = (BM * BK / 4u + WG - 1u) / WG; // vec4 of x each invocation loads per step
override WL: u32 = (BN * BK / 4u + WG - 1u) / WG;

var<workgroup> xs: array<vec4<T>, NB * BK * SX>; // xs[b][k][m/4][m%4] = x[row0 + m, k0 + k]
var<workgroup> ws: array<vec4<T>, NB * BK * SW>; // ws[b][k][n/4][n%4] = W[col0 + n, k0 + k]

// The l-th vec4 of step k0's x tile (idx = t + l * WG: row idx / (BK/4), k-group idx % (BK/4)); zeros past
// M or K. Index clamped, value selected: no divergent control flow (CPU adapters mask every lane's load
// inside a branch).
fn load_x(l: u32, row0: u32, k0: u32, t: u32) -> vec4<T> {
  let idx = t + l * WG;
  let m = row0 + idx / (BK / 4u);
  let kv = k0 / 4u + idx % (BK / 4u);
  let k4 = p.K / 4u;
  let v = vec4<T>(x[min(m, p.M - 1u) * k4 + min(kv, k4 - 1u)]);
  return select(vec4<T>(0.0), v, m < p.M && kv < k4);
}

fn load_w(l: u32, col0: u32, k0: u32, t: u32) -> vec4<T> {
  let idx = t + l * WG;
  let n = col0 + idx / (BK / 4u);
  let kv = k0 / 4u + idx % (BK / 4u);
  let k4 = p.K / 4u;
  let v = load_w4(min(n, p.N - 1u) * k4 + min(kv, k4 - 1u));
  return select(vec4<T>(0.0), v, n < p.N && kv < k4);
}

// Stores a piece loaded by load_x(l, ...) transposed (k-major) into tile buffer b. (The first test folds
// to true when the tile's pieces divide evenly among the invocations, leaving no branch.)
fn store_x(b: u32, l: u32, t: u32, v: vec4<T>) {
  let idx = t + l * WG;
  if ((BM * (BK / 4u)) % WG == 0u || idx < BM * (BK / 4u)) {
    let r = idx / (BK / 4u);
    let base = b * BK * SX + (idx % (BK / 4u)) * 4u * SX + r / 4u;
    xs[base][r % 4u] = v.x;
    xs[base + SX][r % 4u] = v.y;
    xs[base + 2u * SX][r % 4u] = v.z;
    xs[base + 3u * SX][r % 4u] = v.w;
  }
}

fn store_w(b: u32, l: u32, t: u32, v: vec4<T>) {
  let idx = t + l * WG;
  if ((BN * (BK / 4u)) % WG == 0u || idx < BN * (BK / 4u)) {
    let r = idx / (BK / 4u);
    let base = b * BK * SW + (idx % (BK / 4u)) * 4u * SW + r / 4u;
    ws[base][r % 4u] = v.x;
    ws[base + SW][r % 4u] = v.y;
    ws[base + 2u * SW][r % 4u] = v.z;
    ws[base + 3u * SW][r % 4u] = v.w;
  }
}

// y for the 4 rows m0.. and 4 columns n0.. of one accumulator group (a<r> = row m0 + r).
fn store4(m0: u32, n0: u32, a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>) {
  let rows = array<vec4<f32>, 4>(a0, a1, a2, a3);
  //#unroll
  for (var r = 0u; r < 4u; r++) {
    if (m0 + r >= p.M) { return; }
    //#unroll
    for (var c = 0u; c < 4u; c++) {
      if (n0 + c < p.N) { store_y(m0 + r, n0 + c, rows[r][c]); }
    }
  }
}

// f16 products: adds the step's partial sums to the f32 accumulators and clears them.
fn flush(part: ptr<function, array<vec4<T>, 16>>, acc: ptr<function, array<vec4<f32>, 16>>) {
  (*acc)[0] += vec4<f32>((*part)[0]); (*acc)[1] += vec4<f32>((*part)[1]);
  (*acc)[2] += vec4<f32>((*part)[2]); (*acc)[3] += vec4<f32>((*part)[3]);
  (*acc)[4] += vec4<f32>((*part)[4]); (*acc)[5] += vec4<f32>((*part)[5]);
  (*acc)[6] += vec4<f32>((*part)[6]); (*acc)[7] += vec4<f32>((*part)[7]);
  (*acc)[8] += vec4<f32>((*part)[8]); (*acc)[9] += vec4<f32>((*part)[9]);
  (*acc)[10] += vec4<f32>((*part)[10]); (*acc)[11] += vec4<f32>((*part)[11]);
  (*acc)[12] += vec4<f32>((*part)[12]); (*acc)[13] += vec4<f32>((*part)[13]);
  (*acc)[14] += vec4<f32>((*part)[14]); (*acc)[15] += vec4<f32>((*part)[15]);
  *part = array<vec4<T>, 16>();
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let row0 = wg.y * BM;
  let col0 = wg.x * BN;
  let tx = t % CX;
  let ty = t / CX;
  let RY = BM / TM;
  // part[2 * r + j]: row (ty + RY * (r / 4)) * 4 + r % 4 (r < TM), columns (tx + CX * j) * 4 + 0..3 (j < TN/4):
  // the running sums (f32), or with HALF the f16 partial sums of the last KF products, then flushed into acc.
  var part = array<vec4<T>, 16>();
  var acc = array<vec4<f32>, 16>();
  // NB = 2: one step's global loads, held in registers between the read and the tile store
  var x0: vec4<T>; var x1: vec4<T>; var x2: vec4<T>; var x3: vec4<T>;
  var w0: vec4<T>; var w1: vec4<T>; var w2: vec4<T>; var w3: vec4<T>;
  let steps = (p.K + BK - 1u) / BK;
  for (var s = 0u; s <= steps; s++) {
    // s = 0 only loads the first step; step s - 1 is computed from buffer (s - 1) % NB while step s loads
    if (NB == 2u && s < steps) {
      let k0 = s * BK;
      x0 = load_x(0u, row0, k0, t);
      if (XL > 1u) { x1 = load_x(1u, row0, k0, t); }
      if (XL > 2u) { x2 = load_x(2u, row0, k0, t); }
      if (XL > 3u) { x3 = load_x(3u, row0, k0, t); }
      w0 = load_w(0u, col0, k0, t);
      if (WL > 1u) { w1 = load_w(1u, col0, k0, t); }
      if (WL > 2u) { w2 = load_w(2u, col0, k0, t); }
      if (WL > 3u) { w3 = load_w(3u, col0, k0, t); }
    }
    if (s > 0u) {
      let xb = ((s - 1u) % NB) * BK * SX + ty;
      let wb = ((s - 1u) % NB) * BK * SW + tx;
      //#unroll
      for (var kk = 0u; kk < BK; kk++) {
        let a0 = xs[xb + kk * SX];
        let b0 = ws[wb + kk * SW];
        var a1 = a0;
        var b1 = b0;
        if (TM == 8u) { a1 = xs[xb + kk * SX + RY]; }
        if (TN == 8u) { b1 = ws[wb + kk * SW + CX]; }
        part[0] += a0.x * b0; part[2] += a0.y * b0; part[4] += a0.z * b0; part[6] += a0.w * b0;
        if (TN == 8u) { part[1] += a0.x * b1; part[3] += a0.y * b1; part[5] += a0.z * b1; part[7] += a0.w * b1; }
        if (TM == 8u) {
          part[8] += a1.x * b0; part[10] += a1.y * b0; part[12] += a1.z * b0; part[14] += a1.w * b0;
          if (TN == 8u) { part[9] += a1.x * b1; part[11] += a1.y * b1; part[13] += a1.z * b1; part[15] += a1.w * b1; }
        }
        if (HALF && (kk + 1u) % KF == 0u) { flush(&part, &acc); }
      }
      if (HALF && BK % KF != 0u) { flush(&part, &acc); }
    }
    if (NB == 1u) {
      // one buffer: everyone is done reading it before it is refilled, straight from global memory
      workgroupBarrier();
      if (s < steps) {
        for (var l = 0u; l < XL; l++) { store_x(0u, l, t, load_x(l, row0, s * BK, t)); }
        for (var l = 0u; l < WL; l++) { store_w(0u, l, t, load_w(l, col0, s * BK, t)); }
      }
    } else if (s < steps) {
      let b = s % 2u;
      store_x(b, 0u, t, x0);
      if (XL > 1u) { store_x(b, 1u, t, x1); }
      if (XL > 2u) { store_x(b, 2u, t, x2); }
      if (XL > 3u) { store_x(b, 3u, t, x3); }
      store_w(b, 0u, t, w0);
      if (WL > 1u) { store_w(b, 1u, t, w1); }
      if (WL > 2u) { store_w(b, 2u, t, w2); }
      if (WL > 3u) { store_w(b, 3u, t, w3); }
    }
    workgroupBarrier();
  }
  if (!HALF) { flush(&part, &acc); }
  let m0 = row0 + ty * 4u;
  let m1 = row0 + (ty + RY) * 4u;
  let n0 = col0 + tx * 4u;
  let n1 = col0 + (tx + CX) * 4u;
  store4(m0, n0, acc[0], acc[2], acc[4], acc[6]);
  if (TN == 8u) { store4(m0, n1, acc[1], acc[3], acc[5], acc[7]); }
  if (TM == 8u) {
    store4(m1, n0, acc[8], acc[10], acc[12], acc[14]);
    if (TN == 8u) { store4(m1, n1, acc[9], acc[11], acc[13], acc[15]); }
  }
}
