// attention_tiled_rows: tiled (FlashAttention-2 style) attention for batches of many query rows (prefill,
// batched context encoding, APE queries) over a LIST of KV blocks, f32 KV pools, one query vector per
// invocation (head_dim <= 64). A workgroup of NT invocations owns a tile of up to NT query vectors
// (row, query head) of one row group and ONE kv head (all the query heads of its GQA group); each
// invocation keeps its query, output and softmax state in registers while key tiles of BC keys stream
// through workgroup memory (see include/attention_tiled_rows_body.wgsl).
// A key at position kp is visible to a query row at qp iff kp <= qp (and qp - kp < window when a sliding
// window is set); scores are q.k * scale (scale = 1/(sqrt(headDim) * T)). Key tiles no row of the tile
// can see are skipped. Split-K: workgroup z = split takes the list's key tiles t with t % splits == split.
// Inputs:  q: array<vec4<f32>> (fused qkv rows; head h of row r at r*qStride + h*headDim),
//          kpool, vpool: array<vec4<f32>> (layout of rope_store.wgsl: [kvHeads, capacity, headDim] per block),
//          rowInfo: array<vec4<u32>> per row (pos, listStart, listLen, _), blocks: array<vec4<u32>>
//          (base, tokens, capacity, firstPos), tiles: array<vec2<u32>> per workgroup y (first query vector,
//          count <= NT; vector v = row * group + g, all rows of one group), params.
// Outputs: splits == 1: out [rows, heads*headDim] (softmax-weighted values; 0 when nothing is visible) and
//          stats = lse [rows, heads] (log-sum-exp of the scaled scores; -1e30 when nothing is visible).
//          splits > 1: out = pAcc [splits, rows, heads, headDim] (sum exp(s - m) v) and stats = pML
//          [splits, rows, heads] x (m, l) (m: the split's largest score, -1e30 if none; l = sum exp(s - m)),
//          the input format of attention_combine.wgsl.
// Bounds:  headDim (override HD) a multiple of 4 and <= 64; BC a multiple of 16; grid (kvHeads, tiles,
//          splits); workgroup memory 32 * BC * HD / 4 + 24 bytes (K and V tiles as f32).
@group(0) @binding(1) var<storage, read> kpool: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> vpool: array<vec4<f32>>;
// elements i..i+3 (i a multiple of 4)
fn kQuad(i: u32) -> vec4<f32> { return kpool[i / 4u]; }
fn vQuad(i: u32) -> vec4<f32> { return vpool[i / 4u]; }
//#include attention_tiled_rows_body.wgsl
