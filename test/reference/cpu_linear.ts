// The float64 reference of every linear-layer kernel test: y = x W^T (+ bias) (+ y0), x [M, K], W [N, K] (HF layout);
// and RMSNorm, the input transform of the normed projections.

/** y = x W^T (+ bias[n]) (+ y0[m, n]) in float64, [M, N]. */
export function cpuLinear(x: ArrayLike<number>, w: Float32Array, M: number, N: number, K: number, bias?: Float32Array, y0?: Float32Array): Float64Array {
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

/** RMSNorm in float64: row m of x [M, K] times rsqrt(mean(row^2) + eps) times g [K], [M, K]. */
export function cpuRmsNorm(x: ArrayLike<number>, g: ArrayLike<number>, M: number, K: number, eps: number): Float64Array {
  const out = new Float64Array(M * K);
  for (let m = 0; m < M; m++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += x[m * K + k] ** 2;
    const scale = 1 / Math.sqrt(s / K + eps);
    for (let k = 0; k < K; k++) out[m * K + k] = x[m * K + k] * scale * g[k];
  }
  return out;
}
