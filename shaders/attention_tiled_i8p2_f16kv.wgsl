// attention_tiled_i8p2_f16kv: attention_tiled_i8_f16kv.wgsl (inputs, outputs, layout and bounds there) with P as a
// 14-bit fixed point in two int8 halves (hi * 127 + lo, two P.V multiplies per key tile): half P's rounding error, at
// ~1.4x the time on the H200 (bench attention --variant i8:2). Workgroup memory ~40 KiB.
diagnostic(off, chromium.subgroup_matrix_uniformity);
enable subgroups;
enable chromium_experimental_subgroup_matrix;
const SGQ = 4u;   // subgroups per workgroup
const PARTS = 2u; // P as two int8
//#include attention_tiled_i8_body.wgsl
