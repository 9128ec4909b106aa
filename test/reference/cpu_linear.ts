// The float64 reference of every linear-layer kernel test: y = x W^T (+ bias) (+ y0), x [M, K], W [N, K] (HF layout).

/** y = x W^T (+ bias[n]) (+ y0[m, n]) in float64, [M, N]. */
export function cpuLinear(x: Float32Array, w: Float32Array, M: number, N: number, K: number, bias?: Float32Array, y0?: Float32Array): Float64Array {
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = (bias ? bias[n] : 0) + (y0 ? y0[m * N + n] : 0);
      for (let k = 0; k < K; k++) s += x[m * K + k] * w[n * K + k];
      y[m * N + n] = s;
    }
  }
  return y;
}
