// matvec_output: the end shared by the matvec_<format> kernels (workgroups of 8 rows x 32 lanes): the 32
// lanes of each row add their partial sums, and lane 0 writes y[colOffset + n] (+ bias with flags bit 0,
// + the old y with bit 1: the fused residual add). Call matvec_store from uniform control flow.
var<workgroup> partial: array<f32, 256>;

fn matvec_store(t: u32, lane: u32, n: u32, s: f32) {
  partial[t] = s;
  workgroupBarrier();
  for (var step = 16u; step > 0u; step >>= 1u) {
    if (lane < step) { partial[t] += partial[t + step]; }
    workgroupBarrier();
  }
  if (lane == 0u && n < p.N) {
    var v = partial[t];
    if ((p.flags & 1u) != 0u) { v += bias[p.colOffset + n]; }
    if ((p.flags & 2u) != 0u) { v += y[p.colOffset + n]; }
    y[p.colOffset + n] = v;
  }
}
