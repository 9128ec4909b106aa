// dequant_q8_0: expands rows of a GGUF Q8_0 weight into f32, so prefill can run the fast
// matmul_f32 on them (one pass over the weights per forward, instead of decoding every block in every
// output tile of a fused kernel).
// Inputs:  w: array<u32>, one chunk's raw blocks: row n starts at byte n * (K/BLOCK) * BLOCK_BYTES, rows
//          contiguous, plus >= 4 bytes of padding; params { rows, K, rowOffset }: rows rowOffset ..
//          rowOffset+rows-1 of the chunk are expanded.
//          34-byte blocks of 32: f16 d, int8 qs[32]; x = d * q.
// Outputs: out: array<vec4<f32>> [rows, K/4] (row-major f32).
// Bounds:  K a multiple of the block size; one invocation per 8 weights: dispatch
//          (ceil(rows*K/8/64) folded over x and y); invocations past the end return at once.
const BLOCK = 32u;
const BLOCK_BYTES = 34u;
//#include block_q8_0.wgsl
//#include dequant_blocks.wgsl
