// attention_tiled_i8_sg1_f16kv: attention_tiled_i8_f16kv.wgsl with ONE subgroup per workgroup (16 query vectors of one
// kv head; workgroups of 32 invocations, so a workgroup barrier waits for one subgroup only; each workgroup copies its
// own K / V tiles). Inputs, outputs, layout and bounds as there (tiles of 16 query vectors).
diagnostic(off, chromium.subgroup_matrix_uniformity);
enable subgroups;
enable chromium_experimental_subgroup_matrix;
const SGQ = 1u; // subgroups per workgroup
//#include attention_tiled_i8_body.wgsl
