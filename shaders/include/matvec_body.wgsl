// matvec_body: main() of every matvec_<format> kernel (decode: one row of x, or a batch of rows; GPUs):
// 256 threads = 256 / LANES lane groups of LANES lanes, each lane group computing ROWS consecutive output
// rows for BATCH input rows (LANES = 32, 64, 128 or 256, ROWS = 1, 2 or 4, BATCH = 1 .. MAX_BATCH:
// pipeline-overridable constants chosen per layer shape and row count by matvecShape in
// src/engine/linear.ts; more lanes per row when rows are few and long, so a short layer still fills the
// GPU; more rows per lane group so that each input value, read and transformed once (matvec_input.wgsl:
// RMSNorm / SwiGLU on the fly), serves several rows' weights; more input rows per workgroup so that each
// weight, loaded and decoded once, serves several input rows: decode is weight-bandwidth bound, and a
// batched step of M rows reads the weights once per BATCH rows, not once per row).
// The format's file binds w (binding 1) and defines StepIn (a step's inputs), StepW (a step's weights of
// one row, decoded), step_count() (a row's dot product as that many steps), step_input(j, i, swiglu)
// (step i's inputs from the workgroup's input row j, through xin4), step_weights(n, i) (step i of output row n)
// and wdot(w, xi) (their dot product).
// Grid: workgroup w (= wg.x + 65535 wg.y) takes input rows m0 = (w % B) * BATCH .. m0 + BATCH - 1, with
// B = ceil(M / BATCH) row blocks, and output rows from ((w / B) * 256 / LANES + group) * ROWS: the B
// workgroups that share a tile of W run next to each other, so that the tile comes from DRAM once and
// from L2 for the others.
// BATCH = 1: lane l takes steps l, l + LANES, ...: with ROWS = 1 four steps per trip, with ROWS = 2 or 4
// two steps of every row, so that several loads are in flight together (a warp's row is a short chain of
// memory round trips, not one per step). The lanes of a group then add their shares (one vec4 per lane: a
// component per row) and lane r writes y[m0, colOffset + n0 + r].
// BATCH > 1: each trip loads one step of the lane group's ROWS rows, then adds its products with every
// input row into BATCH vec4 accumulators (registers: BATCH * ROWS floats, f = j * ROWS + r for input row
// j and output row n0 + r); the lanes add their shares 16 floats per round (a tree in 16 KiB of
// workgroup memory; one round when BATCH * ROWS <= 16, as matvecShape keeps it) and lane l of round c
// writes float f = 16 c + l: y[m0 + f / ROWS, colOffset + n0 + f % ROWS].
// Stores add bias with flags bit 0 and the old y with bit 1 (the fused residual add). Rows past N read
// row N - 1 and input rows past M read row M - 1 (in bounds); nothing is stored for them.
struct Params { M: u32, N: u32, K: u32, ldy: u32, colOffset: u32, flags: u32, eps: f32 }
const WG_SIZE = 256u;
const MAX_BATCH = 16u;
override LANES: u32 = 32u;
override ROWS: u32 = 1u;
override BATCH: u32 = 1u;
//#include matvec_input.wgsl
//#include linear_store.wgsl

// 4 KiB for one input row, 16 KiB for a batch (its reduction rounds of 16 floats; matvec_input.wgsl's norm sums):
// a single-row decode kernel keeps the small footprint (more of the SM's memory left to L1)
override PARTIAL_SLOTS: u32 = select(4u, 1u, BATCH == 1u);
var<workgroup> partial: array<vec4<f32>, PARTIAL_SLOTS * WG_SIZE>;

fn step_dot(n: u32, i: u32, xi: StepIn) -> f32 { return wdot(step_weights(n, i), xi); }

// lane's share of row n . input, BATCH = ROWS = 1: four steps per trip
fn row_dot(n: u32, lane: u32) -> f32 {
  let steps = step_count();
  var s = vec4<f32>(0.0);
  var i = lane;
  for (; i + 3u * LANES < steps; i += 4u * LANES) {
    s += vec4<f32>(step_dot(n, i, step_input(0u, i, gated())), step_dot(n, i + LANES, step_input(0u, i + LANES, gated())),
                   step_dot(n, i + 2u * LANES, step_input(0u, i + 2u * LANES, gated())), step_dot(n, i + 3u * LANES, step_input(0u, i + 3u * LANES, gated())));
  }
  for (; i < steps; i += LANES) { s.x += step_dot(n, i, step_input(0u, i, gated())); }
  return (s.x + s.y) + (s.z + s.w);
}

// lane's shares of rows r.x .. r.w (ROWS = 2: x and y only), BATCH = 1, two steps of each per trip
fn rows_dot(r: vec4<u32>, lane: u32) -> vec4<f32> {
  let steps = step_count();
  var s = vec4<f32>(0.0);
  var i = lane;
  for (; i + LANES < steps; i += 2u * LANES) {
    let a = step_input(0u, i, gated());
    let b = step_input(0u, i + LANES, gated());
    s.x += step_dot(r.x, i, a) + step_dot(r.x, i + LANES, b);
    s.y += step_dot(r.y, i, a) + step_dot(r.y, i + LANES, b);
    if (ROWS == 4u) {
      s.z += step_dot(r.z, i, a) + step_dot(r.z, i + LANES, b);
      s.w += step_dot(r.w, i, a) + step_dot(r.w, i + LANES, b);
    }
  }
  for (; i < steps; i += LANES) {
    let a = step_input(0u, i, gated());
    s.x += step_dot(r.x, i, a);
    s.y += step_dot(r.y, i, a);
    if (ROWS == 4u) {
      s.z += step_dot(r.z, i, a);
      s.w += step_dot(r.w, i, a);
    }
  }
  return s;
}

// lane's shares of rows r.x .. r.w (the first ROWS of them) for the BATCH input rows: acc[j][q] is
// input row j . output row r[q]
fn batch_dot(r: vec4<u32>, lane: u32, swiglu: bool) -> array<vec4<f32>, MAX_BATCH> {
  var acc: array<vec4<f32>, MAX_BATCH>;
  for (var i = lane; i < step_count(); i += LANES) {
    let w0 = step_weights(r.x, i);
    var w1 = w0;
    var w2 = w0;
    var w3 = w0;
    if (ROWS >= 2u) { w1 = step_weights(r.y, i); }
    if (ROWS == 4u) {
      w2 = step_weights(r.z, i);
      w3 = step_weights(r.w, i);
    }
    for (var j = 0u; j < BATCH; j++) {
      let xi = step_input(j, i, swiglu);
      var d = vec4<f32>(wdot(w0, xi), 0.0, 0.0, 0.0);
      if (ROWS >= 2u) { d.y = wdot(w1, xi); }
      if (ROWS == 4u) {
        d.z = wdot(w2, xi);
        d.w = wdot(w3, xi);
      }
      acc[j] += d;
    }
  }
  return acc;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let w = wg.x + wg.y * 65535u;
  let blocks = (p.M + BATCH - 1u) / BATCH;
  let m0 = (w % blocks) * BATCH;
  let lane = lid.x % LANES;
  let n0 = ((w / blocks) * (WG_SIZE / LANES) + lid.x / LANES) * ROWS;
  let r = min(vec4<u32>(n0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.N - 1u));
  input_prepare(lid.x, m0);
  if (BATCH == 1u) {
    var s = vec4<f32>(0.0);
    if (n0 < p.N) {
      if (ROWS == 1u) {
        s.x = row_dot(n0, lane);
      } else {
        s = rows_dot(r, lane);
      }
    }
    partial[lid.x] = s;
    workgroupBarrier();
    for (var step = LANES / 2u; step > 0u; step >>= 1u) {
      if (lane < step) { partial[lid.x] += partial[lid.x + step]; }
      workgroupBarrier();
    }
    if (lane < ROWS && n0 + lane < p.N) { store_y(m0, n0 + lane, partial[lid.x - lane][lane]); }
    return;
  }
  var acc: array<vec4<f32>, MAX_BATCH>;
  // swiglu passed as a literal: each copy of the loop reads its input without a branch (matvec_input.wgsl)
  if (n0 < p.N) {
    if (gated()) { acc = batch_dot(r, lane, true); } else { acc = batch_dot(r, lane, false); }
  }
  let floats = BATCH * ROWS;
  for (var c = 0u; c < floats; c += 16u) {
    // floats c .. c+15 of the lane's accumulators, four to a slot
    let slots = min(4u, (floats - c + 3u) / 4u);
    for (var q = 0u; q < slots; q++) {
      var v = vec4<f32>(0.0);
      for (var e = 0u; e < 4u; e++) {
        let f = c + 4u * q + e;
        if (f < floats) { v[e] = acc[f / ROWS][f % ROWS]; }
      }
      partial[q * WG_SIZE + lid.x] = v;
    }
    workgroupBarrier();
    for (var step = LANES / 2u; step > 0u; step >>= 1u) {
      if (lane < step) {
        for (var q = 0u; q < slots; q++) { partial[q * WG_SIZE + lid.x] += partial[q * WG_SIZE + lid.x + step]; }
      }
      workgroupBarrier();
    }
    let f = c + lane;
    let m = m0 + f / ROWS;
    let n = n0 + f % ROWS;
    if (lane < 16u && f < floats && m < p.M && n < p.N) { store_y(m, n, partial[(lane / 4u) * WG_SIZE + lid.x - lane][lane % 4u]); }
    workgroupBarrier();
  }
}
