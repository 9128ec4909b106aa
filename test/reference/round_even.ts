/** WGSL's round(): halves to even (what the int8 quantize kernels do), for the CPU quantizers the tests compare with. */
export const roundEven = (v: number): number => {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};
