// sample: picks the next token from each row of logits, on the GPU, so decoding never waits on the CPU.
// Workgroup r samples row r with the row's own settings, step and repetition mask: a request decoding alone
// is one row (src/engine/sampler.ts Sampler), a batched decode step all its rows in one dispatch (SamplerBank);
// a row's choice is the same either way (the same operations in the same order on the same values).
// Order (as in HF generate): repetition penalty over every token seen so far (prompt + generated;
// logit > 0 ? logit / penalty : logit * penalty), then greedy argmax when temperature == 0 (ties: lowest
// id), else logits / temperature, top-k, top-p (nucleus) and a draw from the renormalised distribution
// with a counter-based RNG keyed by (seed, step), so a seed reproduces a run.
// Inputs:  logits: array<f32> [rows, vocab] (row r at r * vocab; modified in place), seen: array<atomic<u32>>
//          [rows, words] (words = ceil(vocab / 32); row r's bitmask of tokens seen at r * words),
//          rowp: array<Row> [rows] (row r's step index, token slot `at` and settings), p.vocab.
// Outputs: tokens[rowp[r].at] = row r's chosen id, next[r] = the same id (the next step's embedding input),
//          and its bit set in row r's mask. A row with a NaN or infinite logit is not sampled: tokens[at] =
//          NONFINITE (0xffffffff, outside every vocabulary; the host raises an error), next[r] = 0; the
//          other rows are sampled as usual.
// Bounds:  one workgroup of 1024 threads per row; dispatch (rows, 1, 1), rows <= 65535; the host keeps every
//          `at` inside `tokens`. Top-k / top-p thresholds are found by 32-step bisection over logit values
//          (ties at the threshold are all kept).
struct Row { step: u32, at: u32, topK: u32, seed: u32, temperature: f32, topP: f32, penalty: f32, pad: f32 }
struct Params { vocab: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<storage, read_write> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> seen: array<atomic<u32>>;
@group(0) @binding(2) var<storage, read_write> tokens: array<u32>;
@group(0) @binding(3) var<storage, read_write> next: array<u32>;
@group(0) @binding(4) var<storage, read> rowp: array<Row>;
@group(0) @binding(5) var<uniform> p: Params;

const WG = 1024u;
const NONFINITE = 0xffffffffu;
var<workgroup> redF: array<f32, WG>;
var<workgroup> redU: array<u32, WG>;
var<workgroup> chosen: u32;

fn sumF(lid: u32, v: f32) -> f32 {
  workgroupBarrier();
  redF[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { redF[lid] += redF[lid + s]; }
    workgroupBarrier();
  }
  return workgroupUniformLoad(&redF[0]);
}

fn maxF(lid: u32, v: f32) -> f32 {
  workgroupBarrier();
  redF[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { redF[lid] = max(redF[lid], redF[lid + s]); }
    workgroupBarrier();
  }
  return workgroupUniformLoad(&redF[0]);
}

fn minF(lid: u32, v: f32) -> f32 {
  workgroupBarrier();
  redF[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { redF[lid] = min(redF[lid], redF[lid + s]); }
    workgroupBarrier();
  }
  return workgroupUniformLoad(&redF[0]);
}

fn sumU(lid: u32, v: u32) -> u32 {
  workgroupBarrier();
  redU[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { redU[lid] += redU[lid + s]; }
    workgroupBarrier();
  }
  return workgroupUniformLoad(&redU[0]);
}

fn nonfinite(l: f32) -> bool { return (bitcast<u32>(l) & 0x7f800000u) == 0x7f800000u; }

// a row with a non-finite logit is not sampled (see the header)
fn refuse(lid: u32, r: u32, at: u32) {
  if (lid == 0u) {
    tokens[at] = NONFINITE;
    next[r] = 0u;
  }
}

// PCG-style hash: a uniform float in [0, 1) from (seed, step).
fn random01(seed: u32, step: u32) -> f32 {
  var x = seed * 747796405u + step * 2891336453u + 1u;
  for (var i = 0u; i < 3u; i++) {
    x = x * 747796405u + 2891336453u;
    let w = ((x >> ((x >> 28u) + 4u)) ^ x) * 277803737u;
    x = (w >> 22u) ^ w;
  }
  return f32(x >> 8u) / 16777216.0;
}

// the row's logits start at `base`
fn count(lid: u32, base: u32, threshold: f32) -> u32 {
  var c = 0u;
  for (var i = lid; i < p.vocab; i += WG) { if (logits[base + i] >= threshold) { c++; } }
  return sumU(lid, c);
}

fn mass(lid: u32, base: u32, threshold: f32, mx: f32) -> f32 {
  var s = 0.0;
  for (var i = lid; i < p.vocab; i += WG) {
    let l = logits[base + i];
    if (l >= threshold) { s += exp(l - mx); }
  }
  return sumF(lid, s);
}

@compute @workgroup_size(1024)
fn main(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
  let lid = lid3.x;
  let r = wg.x;
  let row = rowp[r]; // uniform: read-only storage at the workgroup's index
  let V = p.vocab;
  let base = r * V; // the row's logits
  let words = (V + 31u) / 32u;
  let sbase = r * words; // the row's bitmask
  // 0. non-finite logits (exponent bits all ones: NaN or +-inf; a bit test, as WGSL may assume no NaN);
  // greedy decoding tests them in its argmax pass instead (one pass over the logits, not two: below)
  let greedy = row.temperature <= 0.0;
  var bad = 0u;
  if (!greedy) {
    for (var i = lid; i < V; i += WG) { if (nonfinite(logits[base + i])) { bad = 1u; } }
    if (sumU(lid, bad) > 0u) {
      refuse(lid, r, row.at);
      return;
    }
  }
  // 1. repetition penalty
  // (walks the bitmask's words and touches only the seen ids)
  if (row.penalty != 1.0) {
    for (var wi = lid; wi < words; wi += WG) {
      var m = atomicLoad(&seen[sbase + wi]);
      while (m != 0u) {
        let i = wi * 32u + firstTrailingBit(m);
        m &= m - 1u;
        if (i < V) {
          let l = logits[base + i];
          logits[base + i] = select(l * row.penalty, l / row.penalty, l > 0.0);
        }
      }
    }
  }
  storageBarrier();
  workgroupBarrier();
  // 2. greedy: argmax, lowest id on ties (and the non-finite test: the penalty keeps a finite logit finite
  // unless it overflows, which then counts as non-finite too)
  if (greedy) {
    var best = -3.4e38;
    var bestI = 0xffffffffu;
    // four consecutive ids per thread per trip: independent loads in flight, 16 contiguous bytes per lane
    for (var i = lid * 4u; i < V; i += WG * 4u) {
      for (var j = 0u; j < 4u; j++) {
        let l = logits[base + min(i + j, V - 1u)];
        if (nonfinite(l)) { bad = 1u; }
        if (l > best) { best = l; bestI = min(i + j, V - 1u); }
      }
    }
    if (sumU(lid, bad) > 0u) {
      refuse(lid, r, row.at);
      return;
    }
    let mx = maxF(lid, best);
    var cand = 0xffffffffu;
    if (best == mx) { cand = bestI; }
    workgroupBarrier();
    redU[lid] = cand;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
      if (lid < s) { redU[lid] = min(redU[lid], redU[lid + s]); }
      workgroupBarrier();
    }
    if (lid == 0u) { chosen = redU[0]; }
  } else {
    // 3. temperature
    for (var i = lid; i < V; i += WG) { logits[base + i] = logits[base + i] / row.temperature; }
    storageBarrier();
    workgroupBarrier();
    var lmax = -3.4e38;
    var lmin = 3.4e38;
    for (var i = lid; i < V; i += WG) { lmax = max(lmax, logits[base + i]); lmin = min(lmin, logits[base + i]); }
    let mx = maxF(lid, lmax);
    let mn = minF(lid, lmin);
    // 4. top-k: the largest threshold keeping at least k tokens
    var thr = mn;
    if (row.topK > 0u && row.topK < V) {
      var lo = mn;
      var hi = mx;
      for (var it = 0u; it < 32u; it++) {
        let mid = 0.5 * (lo + hi);
        if (count(lid, base, mid) >= row.topK) { lo = mid; } else { hi = mid; }
      }
      thr = lo;
    }
    // 5. top-p: the largest threshold (>= thr) whose kept mass is still >= topP of the top-k mass
    if (row.topP < 1.0) {
      let total = mass(lid, base, thr, mx);
      var lo = thr;
      var hi = mx;
      for (var it = 0u; it < 32u; it++) {
        let mid = 0.5 * (lo + hi);
        if (mass(lid, base, mid, mx) >= row.topP * total) { lo = mid; } else { hi = mid; }
      }
      thr = lo;
    }
    // 6. draw: u in [0, kept mass); walk contiguous per-thread chunks in id order
    let chunk = (V + WG - 1u) / WG;
    let start = lid * chunk;
    var local = 0.0;
    for (var i = start; i < min(start + chunk, V); i++) {
      let l = logits[base + i];
      if (l >= thr) { local += exp(l - mx); }
    }
    workgroupBarrier();
    redF[lid] = local;
    workgroupBarrier();
    if (lid == 0u) {
      var total = 0.0;
      for (var t = 0u; t < WG; t++) { total += redF[t]; }
      let u = random01(row.seed, row.step) * total;
      var acc = 0.0;
      var pick = 0xffffffffu;
      var last = 0xffffffffu;
      for (var t = 0u; t < WG && pick == 0xffffffffu; t++) {
        if (acc + redF[t] > u) {
          for (var i = t * chunk; i < min(t * chunk + chunk, V); i++) {
            let l = logits[base + i];
            if (l >= thr) {
              last = i;
              acc += exp(l - mx);
              if (acc > u) { pick = i; break; }
            }
          }
        } else {
          acc += redF[t];
          if (redF[t] > 0.0) {
            for (var i = t * chunk; i < min(t * chunk + chunk, V); i++) { if (logits[base + i] >= thr) { last = i; } }
          }
        }
      }
      if (pick == 0xffffffffu) { pick = last; } // rounding at the very end of the distribution
      chosen = pick;
    }
  }
  workgroupBarrier();
  if (lid == 0u) {
    let c = chosen;
    tokens[row.at] = c;
    next[r] = c;
    atomicOr(&seen[sbase + c / 32u], 1u << (c % 32u));
  }
}
