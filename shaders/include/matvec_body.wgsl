// matvec_body: main() of every matvec_<format> kernel (decode, one row of x; GPUs): 256 threads =
// 256 / LANES lane groups of LANES lanes, each lane group computing ROWS consecutive output rows
// (LANES = 32, 64, 128 or 256 and ROWS = 1, 2 or 4: pipeline-overridable constants chosen per layer
// shape by matvecShape in src/engine/linear.ts; more lanes per row when rows are few and long, so a
// short layer still fills the GPU; more rows per lane group so that each input value, read and
// transformed once (matvec_input.wgsl: RMSNorm / SwiGLU on the fly), serves several rows' weights).
// The format's file binds w (binding 1) and defines StepIn (a step's inputs), step_count() (a row's
// dot product as that many steps), step_input(i) (step i's inputs, through xin4) and
// step_dot(n, i, xi) (step i of row n: its weights against xi).
// Lane l takes steps l, l + LANES, ...: with ROWS = 1 four steps per trip, with ROWS = 2 or 4 two steps
// of every row, so that several loads are in flight together (a warp's row is a short chain of memory
// round trips, not one per step). The lanes of a group then add their shares (one vec4 per lane: a
// component per row) and lane r writes y[colOffset + n0 + r] (+ bias with flags bit 0, + the old y with
// bit 1: the fused residual add). Rows past N read row N - 1 (in bounds) and are not stored.
// flags bit 4 (SwiGLU out; ROWS 2 or 4): W holds [gate | up] (N = 2I rows, one chunk) and the layer
// writes I outputs y[c] = silu(gate_c) * up_c (bias added to both first with bit 0; no accumulate): lane
// group g takes gate and up rows c, c + I for its ROWS / 2 columns c = g * ROWS / 2 ..., so each output
// is finished in the epilogue and the next layer (down_proj) reads it as stored, not through SwiGLU.
struct Params { M: u32, N: u32, K: u32, ldy: u32, colOffset: u32, flags: u32, eps: f32 }
const WG_SIZE = 256u;
override LANES: u32 = 32u;
override ROWS: u32 = 1u;
//#include matvec_input.wgsl
//#include linear_store.wgsl

var<workgroup> partial: array<vec4<f32>, 256>;

// lane's share of row n . input, ROWS = 1: four steps per trip
fn row_dot(n: u32, lane: u32) -> f32 {
  let steps = step_count();
  var s = vec4<f32>(0.0);
  var i = lane;
  for (; i + 3u * LANES < steps; i += 4u * LANES) {
    s += vec4<f32>(step_dot(n, i, step_input(i)), step_dot(n, i + LANES, step_input(i + LANES)),
                   step_dot(n, i + 2u * LANES, step_input(i + 2u * LANES)), step_dot(n, i + 3u * LANES, step_input(i + 3u * LANES)));
  }
  for (; i < steps; i += LANES) { s.x += step_dot(n, i, step_input(i)); }
  return (s.x + s.y) + (s.z + s.w);
}

// lane's shares of rows r.x .. r.w (ROWS = 2: x and y only), two steps of each per trip
fn rows_dot(r: vec4<u32>, lane: u32) -> vec4<f32> {
  let steps = step_count();
  var s = vec4<f32>(0.0);
  var i = lane;
  for (; i + LANES < steps; i += 2u * LANES) {
    let a = step_input(i);
    let b = step_input(i + LANES);
    s.x += step_dot(r.x, i, a) + step_dot(r.x, i + LANES, b);
    s.y += step_dot(r.y, i, a) + step_dot(r.y, i + LANES, b);
    if (ROWS == 4u) {
      s.z += step_dot(r.z, i, a) + step_dot(r.z, i + LANES, b);
      s.w += step_dot(r.w, i, a) + step_dot(r.w, i + LANES, b);
    }
  }
  for (; i < steps; i += LANES) {
    let a = step_input(i);
    s.x += step_dot(r.x, i, a);
    s.y += step_dot(r.y, i, a);
    if (ROWS == 4u) {
      s.z += step_dot(r.z, i, a);
      s.w += step_dot(r.w, i, a);
    }
  }
  return s;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  input_prepare(lid.x);
  let lane = lid.x % LANES;
  let n0 = ((wg.x + wg.y * 65535u) * (WG_SIZE / LANES) + lid.x / LANES) * ROWS;
  let swigluOut = (p.flags & 16u) != 0u && ROWS >= 2u;
  let half = p.N / 2u;
  let c0 = n0 / 2u; // SwiGLU out: this lane group's first output column
  var s = vec4<f32>(0.0);
  if (n0 < p.N) {
    if (ROWS == 1u) {
      s.x = row_dot(n0, lane);
    } else if (swigluOut) {
      // ROWS = 4: gate rows c0, c0 + 1 and their up rows; ROWS = 2: gate c0 and up c0 (z, w unused)
      let c1 = min(c0 + 1u, half - 1u);
      var r = vec4<u32>(c0, half + c0, c0, half + c0);
      if (ROWS == 4u) { r = vec4<u32>(c0, c1, half + c0, half + c1); }
      s = rows_dot(r, lane);
    } else {
      s = rows_dot(min(vec4<u32>(n0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.N - 1u)), lane);
    }
  }
  partial[lid.x] = s;
  workgroupBarrier();
  for (var step = LANES / 2u; step > 0u; step >>= 1u) {
    if (lane < step) { partial[lid.x] += partial[lid.x + step]; }
    workgroupBarrier();
  }
  if (swigluOut) {
    let k = ROWS / 2u; // outputs per lane group
    if (lane < k && c0 + lane < half) {
      let sum = partial[lid.x - lane];
      var gate = sum[lane];
      var up = sum[lane + k];
      if ((p.flags & 1u) != 0u) {
        gate += bias[p.colOffset + c0 + lane];
        up += bias[p.colOffset + half + c0 + lane];
      }
      y[c0 + lane] = gate / (1.0 + exp(-gate)) * up;
    }
    return;
  }
  if (lane < ROWS && n0 + lane < p.N) { store_y(0u, n0 + lane, partial[lid.x - lane][lane]); }
}
