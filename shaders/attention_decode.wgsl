// attention_decode: split-K ("flash-decoding") attention for the few query rows of a decode step.
// A workgroup owns (key split, kv head [, chunk of its query heads], row): it walks its slice of the
// row's visible keys in the row's LIST of KV blocks (layout of rope_store.wgsl) and reads each key and
// value once for all the query heads of the GQA group that it serves (NH of them), writing the split's
// partial softmax (max, sum, un-normalised output); attention_combine.wgsl merges the splits.
// The slice comes from the block list as it is when the kernel runs (token counts grow between replays):
// visible keys are numbered block after block (a workgroup scan over the list), and split s takes
// keys [s*c, (s+1)*c) with c = ceil(total / splits).
// Visibility: a key at position kp is visible to the row's query at qp iff kp <= qp and (window == 0
// or qp - kp < window). Scores are q.k * scale, scale = 1/(sqrt(headDim) * T).
// Threads: lane dq = lid % (HD/4) holds quad dq of a key; lane group grp = lid / (HD/4) takes keys
// t0 + k*NG + grp (k < KT) of each step of NG*KT keys, with its own online-softmax state; the groups'
// states merge at the end. Three barriers per step: partial dots -> scores -> probabilities -> values;
// with PREFETCH (GPUs) the next step's keys are loaded while this step's barriers pass.
// Inputs:  q: array<f32> fused qkv rows (read as vec4; head h of row r at r*qStride + h*HD),
//          kpool, vpool: array<f32> (read as vec4), rowInfo: array<vec4<u32>> per row (pos, listStart,
//          listLen, _), blocks: array<vec4<u32>> (base, tokens, capacity, firstPos), params.
// Outputs: pML: array<vec2<f32>> and pAcc: array<f32> (written as vec4) at i = (split*rows + row)*heads
//          + head, in the format of attention_combine.wgsl: (m, l) with m = -1e30, l = 0 and pAcc 0 for a
//          split that sees no key.
// Bounds:  override constants HD (head_dim, a multiple of 4, HD/4 <= WG), NH <= 8 query heads per
//          workgroup, KT <= 8 keys per lane group and step, WG threads, PREFETCH; dispatch (splits,
//          kvHeads * chunks, rows), chunks = ceil((heads/kvHeads) / NH) workgroups per kv head.
@group(0) @binding(1) var<storage, read> kpool: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> vpool: array<vec4<f32>>;
alias KvRaw = vec4<f32>;
fn kRaw(i: u32) -> KvRaw { return kpool[i]; }
fn vRaw(i: u32) -> KvRaw { return vpool[i]; }
fn unpackKv(w: KvRaw) -> vec4<f32> { return w; }
//#include attention_decode_body.wgsl
