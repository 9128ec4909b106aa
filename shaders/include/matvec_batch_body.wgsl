// matvec_batch_body: main() of every matvec_batch_<format> kernel (batched decode on GPUs: a few rows of x,
// each weight read from memory once for all of them). 256 threads = 256 / LANES lane groups of LANES
// lanes; a lane group computes ROWS consecutive rows of W (1, 2 or 4) against BATCH consecutive rows of x
// (1..8): ROWS * BATCH sums per thread, held in acc[b] (one vec4 per x row, a component per W row).
// Pipeline-overridable constants, chosen per layer shape and row count by batchShape in src/engine/linear.ts.
// The format's file binds w (binding 1) and defines W8 (8 weights as two vec4<f32>) and w8(n, i): step i
// (weights 8i .. 8i + 7) of row n, decoded to f32. Lane l takes steps l, l + LANES, ..., UNROLL (1 or 2) per
// trip (2: more loads in flight, 1: fewer registers); each step's weights are decoded once and multiplied by BATCH x rows
// (x values come through L1: every lane group of the workgroup reads the same ones).
// Grid: workgroup id = tile * blocks + block (blocks = ceil(M / BATCH)), so the workgroups sharing a tile
// of W rows run together and share its bytes through L2; ids fold x/y at 65535.
// Reduction: halving rounds through workgroup memory (128 * BATCH vec4), then lane 0 stores.
// Edges: W rows past N read row N - 1 and x rows past M read row M - 1 (in bounds); neither is stored.
struct Params { M: u32, N: u32, K: u32, ldy: u32, colOffset: u32, flags: u32 }
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
//#include linear_store.wgsl
const WG_SIZE = 256u;
override LANES: u32 = 32u;
override ROWS: u32 = 2u;
override BATCH: u32 = 8u;
override UNROLL: u32 = 2u;

var<workgroup> red: array<vec4<f32>, 128u * BATCH>;

// acc[b] += (step of x row b) . (the ROWS steps of weights)
fn step_fma(acc: ptr<function, array<vec4<f32>, 8>>, xr: ptr<function, array<u32, 8>>, i: u32, w0: W8, w1: W8, w2: W8, w3: W8) {
  for (var b = 0u; b < BATCH; b++) {
    let xa = x[(*xr)[b] + 2u * i];
    let xb = x[(*xr)[b] + 2u * i + 1u];
    (*acc)[b].x += dot(w0[0], xa) + dot(w0[1], xb);
    if (ROWS >= 2u) { (*acc)[b].y += dot(w1[0], xa) + dot(w1[1], xb); }
    if (ROWS == 4u) {
      (*acc)[b].z += dot(w2[0], xa) + dot(w2[1], xb);
      (*acc)[b].w += dot(w3[0], xa) + dot(w3[1], xb);
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
  for (var b = 0u; b < BATCH; b++) { xr[b] = min(m0 + b, p.M - 1u) * (p.K / 4u); }
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
          if (n0 + c < p.N) { store_y(m0 + b, n0 + c, acc[b][c]); }
        }
      }
    }
  }
}
