// linear_store: the output side of every linear-layer kernel (matmul_*, matvec_*, matvec_rows_*), spliced
// in by `//#include linear_store.wgsl` after the kernel's `struct Params` (fields ldy, colOffset, flags):
// the y (2), params (3) and bias (4) bindings, and store_y: y[m, colOffset + n] = v, + bias[colOffset + n]
// with flags bit 0, + the old value with bit 1 (the fused residual add). Decode kernels pass m = 0.
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

fn store_y(m: u32, n: u32, acc: f32) {
  let o = m * p.ldy + p.colOffset + n;
  var v = acc;
  if ((p.flags & 1u) != 0u) { v += bias[p.colOffset + n]; }
  if ((p.flags & 2u) != 0u) { v += y[o]; }
  y[o] = v;
}
