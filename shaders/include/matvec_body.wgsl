// matvec_body: main() of every matvec_<format> kernel (decode, one row of x; GPUs): 256 threads =
// 256 / LANES lane groups of LANES lanes, each lane group computing ROWS consecutive output rows
// (LANES = 32, 64, 128 or 256 and ROWS = 1, 2 or 4: pipeline-overridable constants chosen per layer
// shape by matvecShape in src/engine/linear.ts; more lanes per row when rows are few and long, so a
// short layer still fills the GPU; more rows per lane group so that each input value, read and
// transformed once (matvec_input.wgsl: RMSNorm / SwiGLU on the fly), serves several rows' weights).
// The format's file binds w (binding 1) and defines StepIn (a step's inputs), step_count() (a row's
// dot product as that many steps), step_input(i) (step i's inputs, through xin4) and
// step_dot(n, i, xi) (step i of row n: its weights against xi).
// Lane l takes steps l, l + LANES, ...: with ROWS = 1 four steps per trip, with ROWS = 2 or 4 UNROLL (2 or
// 4) steps of every row, so that several loads are in flight together (a warp's row is a short chain of memory
// round trips, not one per step). The lanes of a group then add their shares (one vec4 per lane: a
// component per row) and lane r writes y[colOffset + n0 + r] (+ bias with flags bit 0, + the old y with
// bit 1: the fused residual add). Rows past N read row N - 1 (in bounds) and are not stored.
// flags bit 4 (SwiGLU out; ROWS 2 or 4): W holds [gate | up] (N = 2I rows, one chunk) and the layer
// writes I outputs y[c] = silu(gate_c) * up_c (bias added to both first with bit 0; no accumulate): lane
// group g takes gate and up rows c, c + I for its ROWS / 2 columns c = g * ROWS / 2 ..., so each output
// is finished in the epilogue and the next layer (down_proj) reads it as stored, not through SwiGLU.
// Entry point main_rope (one-row qkv projection, ROWS 2 or 4, LANES <= 128 with ROWS 2; one chunk, N = (heads +
// 2 kvHeads) * headDim): RoPE and the KV write of rope_store.wgsl in the epilogue, so a decode layer needs no
// rope_store dispatch. Output slots are mapped to W rows so that each rope quad, rows (i, i+1, i+half, i+half+1)
// of a q or k head (half = headDim/2; HF "rotate_half" pairs i with i + half), lies in one lane group (ROWS 4)
// or in two adjacent lane groups of one workgroup (ROWS 2); v rows keep their order. The quad's first lane
// group rotates it (bias added first with bit 0) with the row's (cos, sin) and writes q heads into y (as
// rope_store leaves them: rotated, in place) and k heads into the KV pool; v rows go to the pool as they are
// (y's k and v entries are not written). Its own bindings: 6 cs: array<f32> [headDim/2, 2] (cos, sin of the
// row), 7 dest: array<vec4<u32>> (base, capacity, t, _), 8 kpool and 9 vpool: array<u32> (f32 bits, or packed
// halves when rp.f16kv = 1; layout of rope_store.wgsl: token t of kv head h at (base*kvHeads + h*capacity +
// t)*headDim), 10 rp: RopeParams. main's bindings and layout do not change (it uses none of these).
struct Params { M: u32, N: u32, K: u32, ldy: u32, colOffset: u32, flags: u32, eps: f32 }
const WG_SIZE = 256u;
override LANES: u32 = 32u;
override ROWS: u32 = 1u;
override UNROLL: u32 = 2u; // ROWS 2 and 4: steps of every row per trip (2 or 4)
//#include matvec_input.wgsl
//#include linear_store.wgsl

var<workgroup> partial: array<vec4<f32>, 256>;
var<workgroup> partial_sq: array<f32, 256>; // RMSNorm: the lanes' input_sq, reduced with their dots

// the lane groups' shares added up (lane 0 of each group ends with its group's sums), from uniform control flow
fn reduce_lanes(t: u32, lane: u32, s: vec4<f32>) {
  partial[t] = s;
  partial_sq[t] = input_sq;
  workgroupBarrier();
  for (var step = LANES / 2u; step > 0u; step >>= 1u) {
    if (lane < step) {
      partial[t] += partial[t + step];
      partial_sq[t] += partial_sq[t + step];
    }
    workgroupBarrier();
  }
}

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

// lane's shares of rows r.x .. r.w (ROWS = 2: x and y only), UNROLL steps of each per trip (then 2, then 1)
fn rows_dot(r: vec4<u32>, lane: u32) -> vec4<f32> {
  let steps = step_count();
  var s = vec4<f32>(0.0);
  var i = lane;
  if (UNROLL == 4u) {
    for (; i + 3u * LANES < steps; i += 4u * LANES) {
      let a = step_input(i);
      let b = step_input(i + LANES);
      let c = step_input(i + 2u * LANES);
      let d = step_input(i + 3u * LANES);
      s.x += (step_dot(r.x, i, a) + step_dot(r.x, i + LANES, b)) + (step_dot(r.x, i + 2u * LANES, c) + step_dot(r.x, i + 3u * LANES, d));
      s.y += (step_dot(r.y, i, a) + step_dot(r.y, i + LANES, b)) + (step_dot(r.y, i + 2u * LANES, c) + step_dot(r.y, i + 3u * LANES, d));
      if (ROWS == 4u) {
        s.z += (step_dot(r.z, i, a) + step_dot(r.z, i + LANES, b)) + (step_dot(r.z, i + 2u * LANES, c) + step_dot(r.z, i + 3u * LANES, d));
        s.w += (step_dot(r.w, i, a) + step_dot(r.w, i + LANES, b)) + (step_dot(r.w, i + 2u * LANES, c) + step_dot(r.w, i + 3u * LANES, d));
      }
    }
  }
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
  reduce_lanes(lid.x, lane, s);
  let scale = input_scale(partial_sq[lid.x - lane]);
  if (swigluOut) {
    let k = ROWS / 2u; // outputs per lane group
    if (lane < k && c0 + lane < half) {
      let sum = partial[lid.x - lane] * scale;
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
  if (lane < ROWS && n0 + lane < p.N) { store_y(0u, n0 + lane, partial[lid.x - lane][lane] * scale); }
}

// ---- main_rope: the qkv projection with RoPE and the KV write in its epilogue (see the header) ----
struct RopeParams { heads: u32, kvHeads: u32, headDim: u32, f16kv: u32 }
@group(0) @binding(6) var<storage, read> cs: array<f32>;
@group(0) @binding(7) var<storage, read> dest: array<vec4<u32>>;
@group(0) @binding(8) var<storage, read_write> kpool: array<u32>;
@group(0) @binding(9) var<storage, read_write> vpool: array<u32>;
@group(0) @binding(10) var<uniform> rp: RopeParams;

// the W row of output slot s: in the q/k heads, slot 4Q + w is row w of rope quad Q (i, i+1, i+half, i+half+1
// of its head, i = 2 (Q mod headDim/4)); v rows keep their place
fn rope_row(s: u32) -> u32 {
  let hd = rp.headDim;
  if (s >= (rp.heads + rp.kvHeads) * hd) { return s; }
  let quad = s / 4u;
  let head = quad / (hd / 4u);
  let i = 2u * (quad % (hd / 4u));
  return head * hd + i + (s & 1u) + select(0u, hd / 2u, (s & 2u) != 0u);
}

// elements e, e+1 (e even) of a KV pool: f32 bits or one word of two halves
fn kv_store2(k: bool, e: u32, v: vec2<f32>) {
  if (rp.f16kv != 0u) {
    let w = pack2x16float(v);
    if (k) { kpool[e >> 1u] = w; } else { vpool[e >> 1u] = w; }
  } else if (k) {
    kpool[e] = bitcast<u32>(v.x);
    kpool[e + 1u] = bitcast<u32>(v.y);
  } else {
    vpool[e] = bitcast<u32>(v.x);
    vpool[e + 1u] = bitcast<u32>(v.y);
  }
}

fn with_bias(row: u32, v: f32) -> f32 {
  if ((p.flags & 1u) != 0u) { return v + bias[p.colOffset + row]; }
  return v;
}

@compute @workgroup_size(256)
fn main_rope(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  input_prepare(lid.x);
  let lane = lid.x % LANES;
  let s0 = ((wg.x + wg.y * 65535u) * (WG_SIZE / LANES) + lid.x / LANES) * ROWS; // this lane group's first slot
  var s = vec4<f32>(0.0);
  if (s0 < p.N) {
    let last = vec4<u32>(p.N - 1u);
    let sl = min(vec4<u32>(s0) + vec4<u32>(0u, 1u, 2u, 3u), last);
    s = rows_dot(vec4<u32>(rope_row(sl.x), rope_row(sl.y), rope_row(sl.z), rope_row(sl.w)), lane);
  }
  reduce_lanes(lid.x, lane, s);
  if (lane != 0u || s0 >= p.N) { return; }
  let scale = input_scale(partial_sq[lid.x]); // (every lane group has the same x: the same factor)
  let hd = rp.headDim;
  let half = hd / 2u;
  let nQK = (rp.heads + rp.kvHeads) * hd;
  let d = dest[0];
  if (s0 < nQK) {
    if (s0 % 4u != 0u) { return; } // ROWS 2: the quad's second lane group; the first one finishes it
    var x4 = partial[lid.x] * scale;
    if (ROWS == 2u) { x4 = vec4<f32>(partial[lid.x].xy, partial[lid.x + LANES].xy) * scale; }
    let r0 = rope_row(s0);
    let head = r0 / hd;
    let i = r0 % hd; // even, < half
    let x1 = vec2<f32>(with_bias(r0, x4.x), with_bias(r0 + 1u, x4.y));
    let x2 = vec2<f32>(with_bias(r0 + half, x4.z), with_bias(r0 + half + 1u, x4.w));
    let c = vec2<f32>(cs[2u * i], cs[2u * i + 2u]);
    let sn = vec2<f32>(cs[2u * i + 1u], cs[2u * i + 3u]);
    let lo = x1 * c - x2 * sn;
    let hi = x2 * c + x1 * sn;
    if (head < rp.heads) {
      y[p.colOffset + r0] = lo.x;
      y[p.colOffset + r0 + 1u] = lo.y;
      y[p.colOffset + r0 + half] = hi.x;
      y[p.colOffset + r0 + half + 1u] = hi.y;
    } else {
      let slot = (d.x * rp.kvHeads + (head - rp.heads) * d.y + d.z) * hd;
      kv_store2(true, slot + i, lo);
      kv_store2(true, slot + i + half, hi);
    }
    return;
  }
  // v rows s0 .. s0 + ROWS - 1 (nQK and s0 even: whole pairs of one head)
  let e = s0 - nQK;
  let slot = (d.x * rp.kvHeads + (e / hd) * d.y + d.z) * hd + e % hd;
  let v = partial[lid.x] * scale;
  kv_store2(false, slot, vec2<f32>(with_bias(s0, v.x), with_bias(s0 + 1u, v.y)));
  if (ROWS == 4u) { kv_store2(false, slot + 2u, vec2<f32>(with_bias(s0 + 2u, v.z), with_bias(s0 + 3u, v.w))); }
}
