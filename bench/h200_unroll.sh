#!/usr/bin/env bash
# Deno (wgpu) on the H200 with the `//#unroll` loops unrolled (APEKIT_UNROLL=1) and as written (0), through the
# device tool with carry [".device"]:   source .device/boot.sh; bash bench/h200_unroll.sh
# The tiled attention, the prefill matmuls and a 2048-token f16-compute prefill, then the PyTorch peer's 2K prefill
# (issue 16's Deno f16 target). Output on stdout and in $OUT/unroll.txt.
set -uo pipefail
out=${OUT:-/tmp/out}; mkdir -p "$out"
{
f() { echo "=== $* ($(date -u +%T)) ==="; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for u in 0 1; do f "APEKIT_UNROLL=$u bench attention --cases prefill2k,prefill8k,ape32k --kv f16 --check 8"
  APEKIT_UNROLL=$u timeout 100 "$DENO" run -A sdk/cli.ts bench attention --cases prefill2k,prefill8k,ape32k --kv f16 --check 8 2>&1 | grep -v -i deprecat; done
for u in 0 1; do f "APEKIT_UNROLL=$u bench matmul --rows 2048 --formats f16c,f16 --trials 1"
  APEKIT_UNROLL=$u timeout 100 "$DENO" run -A sdk/cli.ts bench matmul --rows 2048 --formats f16c,f16 --trials 1 2>&1 | grep -v -i deprecat; done
for u in 1 0; do f "APEKIT_UNROLL=$u bench engine --dtype f16 --compute f16 --kv f16 --prefill 2048 --decode 16"
  APEKIT_UNROLL=$u timeout 120 "$DENO" run -A sdk/cli.ts bench engine --dtype f16 --compute f16 --kv f16 --prefill 2048 --decode 16 2>&1 | grep -v -i deprecat; done
f "PyTorch peer, 2K"; LENGTHS=2K DECODE=8 TORCH_S=90 bash bench/h200_long.sh torch 2>&1 | tail -8
} 2>&1 | tee "$out/unroll.txt"
