// matvec_batch_body: main() of every matvec_batch_<format> kernel (batched decode on GPUs: a few rows of x,
// each weight read from memory once for all of them). 256 threads = 256 / LANES lane groups of LANES
// lanes; a lane group computes ROWS consecutive rows of W (1, 2 or 4) against BATCH consecutive rows of x
// (1..8): ROWS * BATCH sums per thread, held in acc[b] (one vec4 per x row, a component per W row).
// Pipeline-overridable constants, chosen per layer shape and row count by batchShape in src/engine/linear.ts.
// The format's file binds w (binding 1) and defines W8 (8 weights as two vec4<f32>) and w8(n, i): step i
// (weights 8i .. 8i + 7) of row n, decoded to f32. Lane l takes steps l, l + LANES, ..., UNROLL (1 or 2) per
// trip (2: more loads in flight, 1: fewer registers); each step's weights are decoded once and multiplied by BATCH x rows
// (x values come through L1: every lane group of the workgroup reads the same ones).
// x rows: the kernel's row m is x's row xRow + m (params; the LM head over a forward's logit rows): x holds
// [xRow + M, K/4].
// RMSNorm (NORM, a pipeline constant: recordLinear sets it, and flags bit 3, for LinearInput.norm; binding 5
// g: array<vec4<f32>> [K/4], the norm weight, any buffer without NORM): the input is x[m] * rsqrt(mean(x[m]^2) +
// eps) * g. Every workgroup first computes the inverse RMS of its BATCH x rows (norm_scales: each thread's sums of
// squares over a 256th of K, added up through `red` in two rounds, 3 barriers, all in uniform control flow), held
// by the storing lanes in xs; each step's decoded weights are multiplied by g's step once, shared by the BATCH
// rows, and the stored sums by xs[b] (a per-row constant of the dot product); forward.ts fuses it where that beats
// rmsnorm_copy's dispatch (linear.ts BATCH_NORM_MAX_ROWS: qkv-sized layers). Without NORM the kernel is the plain
// one (a constant, not a flags test: as a runtime test the norm's registers cost the kernels without it up to 75%
// on the H200, down_proj at 32 rows 64 -> 114 us). SwiGLU (flags bit 2) is not done here: the batched path runs
// it as a dispatch of its own (silu's exp for every x value in every lane group would cost more than the dispatch).
// Grid: workgroup id = tile * blocks + block (blocks = ceil(M / BATCH)), so the workgroups sharing a tile
// of W rows run together and share its bytes through L2; ids fold x/y at 65535.
// Reduction: halving rounds through workgroup memory (red: 128 * BATCH vec4, 16 KiB at BATCH = 8, WebGPU's
// default maxComputeWorkgroupStorageSize, 4 KiB at BATCH = 1; norm_scales reuses it), then lane 0 stores.
// Edges: W rows past N read row N - 1 and x rows past M read row M - 1 (in bounds); neither is stored.
struct Params { M: u32, N: u32, K: u32, ldy: u32, colOffset: u32, flags: u32, eps: f32, xRow: u32 }
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> g: array<vec4<f32>>;
//#include linear_store.wgsl
const WG_SIZE = 256u;
override LANES: u32 = 32u;
override ROWS: u32 = 2u;
override BATCH: u32 = 8u;
override UNROLL: u32 = 2u;
override NORM: bool = false;

// the lane reduction's 128 * BATCH vec4; norm_scales needs 256 * ceil(BATCH / 4) of them (BATCH = 1: 256)
var<workgroup> red: array<vec4<f32>, 128u * select(BATCH, 2u, BATCH == 1u)>;

// xs[b] = rsqrt(mean(x row b^2) + eps) for the block's BATCH x rows (xr: their first vec4s), in lane 0 of each
// lane group (the threads that store). Called by every thread t from uniform control flow; `red` is free again
// when it returns.
fn norm_scales(xs: ptr<function, array<f32, 8>>, xr: ptr<function, array<u32, 8>>, t: u32, lane: u32) {
  var ss = array<f32, 8>(); // thread t's share of each row's sum of squares: vec4s t, t + 256, ...
  for (var i = t; i < p.K / 4u; i += WG_SIZE) {
    for (var b = 0u; b < BATCH; b++) {
      let v = x[(*xr)[b] + i];
      ss[b] += dot(v, v);
    }
  }
  let nv = (BATCH + 3u) / 4u; // vec4s per thread
  for (var j = 0u; j < nv; j++) {
    var v = vec4<f32>(0.0);
    for (var c = 0u; c < 4u; c++) { if (4u * j + c < BATCH) { v[c] = ss[4u * j + c]; } }
    red[t * nv + j] = v;
  }
  workgroupBarrier();
  if (t < 32u) { // thread t adds threads t + 32, ..., t + 224 into its own slot, which no other thread reads now
    for (var j = 0u; j < nv; j++) {
      var v = red[t * nv + j];
      for (var k = 1u; k < WG_SIZE / 32u; k++) { v += red[(t + 32u * k) * nv + j]; }
      red[t * nv + j] = v;
    }
  }
  workgroupBarrier();
  if (lane == 0u) {
    for (var j = 0u; j < nv; j++) {
      var v = vec4<f32>(0.0);
      for (var k = 0u; k < 32u; k++) { v += red[k * nv + j]; }
      for (var c = 0u; c < 4u; c++) { if (4u * j + c < BATCH) { (*xs)[4u * j + c] = inverseSqrt(v[c] / f32(p.K) + p.eps); } }
    }
  }
  workgroupBarrier(); // before the lane reduction writes red
}

// acc[b] += (step i of x row b) . (the ROWS steps of weights); with NORM the weights times g's step first
fn step_fma(acc: ptr<function, array<vec4<f32>, 8>>, xr: ptr<function, array<u32, 8>>, i: u32, w0: W8, w1: W8, w2: W8, w3: W8) {
  var u0 = w0; var u1 = w1; var u2 = w2; var u3 = w3;
  if (NORM) {
    let ga = g[2u * i];
    let gb = g[2u * i + 1u];
    u0 = W8(w0[0] * ga, w0[1] * gb);
    if (ROWS >= 2u) { u1 = W8(w1[0] * ga, w1[1] * gb); }
    if (ROWS == 4u) {
      u2 = W8(w2[0] * ga, w2[1] * gb);
      u3 = W8(w3[0] * ga, w3[1] * gb);
    }
  }
  for (var b = 0u; b < BATCH; b++) {
    let xa = x[(*xr)[b] + 2u * i];
    let xb = x[(*xr)[b] + 2u * i + 1u];
    (*acc)[b].x += dot(u0[0], xa) + dot(u0[1], xb);
    if (ROWS >= 2u) { (*acc)[b].y += dot(u1[0], xa) + dot(u1[1], xb); }
    if (ROWS == 4u) {
      (*acc)[b].z += dot(u2[0], xa) + dot(u2[1], xb);
      (*acc)[b].w += dot(u3[0], xa) + dot(u3[1], xb);
    }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let id = wg.x + wg.y * 65535u;
  let blocks = (p.M + BATCH - 1u) / BATCH;
  let m0 = (id % blocks) * BATCH;
  let lane = lid.x % LANES;
  let group = lid.x / LANES;
  let n0 = ((id / blocks) * (WG_SIZE / LANES) + group) * ROWS;
  let r = min(vec4<u32>(n0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.N - 1u));
  var xr = array<u32, 8>();
  for (var b = 0u; b < BATCH; b++) { xr[b] = (p.xRow + min(m0 + b, p.M - 1u)) * (p.K / 4u); }
  var xs = array<f32, 8>(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0);
  if (NORM) { norm_scales(&xs, &xr, lid.x, lane); } // a pipeline constant: every thread takes the same branch
  var acc = array<vec4<f32>, 8>();
  let steps = p.K / 8u;
  var w1: W8; var w2: W8; var w3: W8; var v1: W8; var v2: W8; var v3: W8;
  var i = lane;
  if (UNROLL == 2u) {
    for (; i + LANES < steps; i += 2u * LANES) {
      let j = i + LANES;
      let w0 = w8(r.x, i);
      let v0 = w8(r.x, j);
      if (ROWS >= 2u) { w1 = w8(r.y, i); v1 = w8(r.y, j); }
      if (ROWS == 4u) { w2 = w8(r.z, i); v2 = w8(r.z, j); w3 = w8(r.w, i); v3 = w8(r.w, j); }
      step_fma(&acc, &xr, i, w0, w1, w2, w3);
      step_fma(&acc, &xr, j, v0, v1, v2, v3);
    }
  }
  for (; i < steps; i += LANES) {
    let w0 = w8(r.x, i);
    if (ROWS >= 2u) { w1 = w8(r.y, i); }
    if (ROWS == 4u) { w2 = w8(r.z, i); w3 = w8(r.w, i); }
    step_fma(&acc, &xr, i, w0, w1, w2, w3);
  }
  for (var half = LANES / 2u; half > 0u; half >>= 1u) {
    if (lane >= half && lane < 2u * half) {
      let slot = (group * half + lane - half) * BATCH;
      for (var b = 0u; b < BATCH; b++) { red[slot + b] = acc[b]; }
    }
    workgroupBarrier();
    if (lane < half) {
      let slot = (group * half + lane) * BATCH;
      for (var b = 0u; b < BATCH; b++) { acc[b] += red[slot + b]; }
    }
    workgroupBarrier();
  }
  if (lane == 0u) {
    for (var b = 0u; b < BATCH; b++) {
      if (m0 + b < p.M) {
        for (var c = 0u; c < ROWS; c++) {
          if (n0 + c < p.N) { store_y(m0 + b, n0 + c, acc[b][c] * xs[b]); }
        }
      }
    }
  }
}
