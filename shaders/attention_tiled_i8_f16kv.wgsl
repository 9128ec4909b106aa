// attention_tiled_i8_f16kv: tiled (FlashAttention-2 style) attention for batches of many query rows (APE queries,
// prefill) with Q.K^T and P.V on Dawn's int8 subgroup matrices (chromium_experimental_subgroup_matrix, i8 x i8 -> i32,
// 16 x 16 x 32), for compute "int8" over half-float KV pools (src/engine/attention_i8.ts). SageAttention-style:
// Q quantized per query vector here, K and V per key vector (quantize_kv_i8.wgsl, before this kernel in the same
// layer); the scores' i32 sums rescaled by both scales; softmax online in f32; P.V with V's per-key scale folded into
// P, P quantized per (row, key tile) relative to its largest value (PARTS 1: one int8, 7 bits, this file; PARTS 2: a 14-bit
// fixed point as two int8 halves, hi * 127 + lo, two multiplies: attention_tiled_i8p2_f16kv.wgsl).
// A workgroup of SGQ = 4 subgroups owns a tile of up to 16 SGQ query vectors (row, query head) of one row group and ONE kv head
// (the query heads of its GQA group), each subgroup 16 of them, and streams key tiles of 64 keys. Visibility: a key at
// kp is visible to a row at qp iff kp <= qp (and qp - kp < window when set); scores q.k * scale. Key tiles no row of
// the tile can see are skipped; split-K: workgroup z = split takes the list's key tiles t with t % splits == split.
// Inputs:  q: array<vec4<f32>> (fused qkv rows; head h of row r at r * qStride + h * HD); kq, vq: array<vec4<u32>>
//          (int8 K / V at pool slots, HD bytes each: quantize_kv_i8.wgsl); scales: array<f32> (K's at [slot], V's at
//          [vsOff + slot]); rowInfo: array<vec4<u32>> per row (pos, listStart, listLen, _); blocks: array<vec4<u32>>
//          (base, tokens, capacity, firstPos); tiles: array<vec2<u32>> per workgroup y (first query vector, count;
//          vector v = row * group + g); params (scale includes log2(e): the softmax runs in base 2).
// Outputs: as attention_tiled.wgsl: splits == 1: out [rows, heads * HD] and stats = lse [rows, heads] (-1e30 when
//          nothing is visible); splits > 1: out = pAcc [splits, rows, heads, HD], stats = pML [splits, rows, heads] x
//          (m, l), natural-log units (attention_combine.wgsl's input).
// Layout:  lane (r, h) = (lane % 16, lane / 16) of subgroup s holds query vector 16 s + r: its output values
//          h * 32 .. h * 32 + 31 in registers, and the scores / probabilities of keys h * 32 .. h * 32 + 31 of each
//          tile. Per key tile: K and V int8 tiles copied to workgroup memory (rows of 80 bytes); S = Q K^T as 4 result
//          matrices (16 vectors x 16 keys, 2 k steps each), through workgroup memory to the lanes; P written as int8
//          (rows of 80 bytes); O_tile = P V as 4 result matrices (16 vectors x 16 values), through workgroup memory
//          again, added to the lanes' registers with the row's factor.
// Bounds:  HD = 64; subgroups of 32 (Gpu.hasInt8Matrix); grid (kvHeads, tiles, splits); workgroup memory ~35 KiB (PARTS 2: ~40).
// Every workgroup variable is a multiple of 16 bytes: on the H200 (Dawn, Vulkan) two 4-byte variables beside the
// staging arrays made every subgroupMatrixLoad from them read 8 bytes early.
diagnostic(off, chromium.subgroup_matrix_uniformity);
enable subgroups;
enable chromium_experimental_subgroup_matrix;
const SGQ = 4u;   // subgroups per workgroup
const PARTS = 1u; // P as one int8 (attention_tiled_i8p2_f16kv.wgsl: two)
//#include attention_tiled_i8_body.wgsl
