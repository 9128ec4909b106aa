#!/usr/bin/env bash
# The engine benchmarks on the GPU machine (through the device tool), results under $OUT:
#   source .device/boot.sh; bash bench/h200_engine.sh [dtype...]      (default: f16 q4_1)
# (.device/ comes from ../shared/device/prepare.sh and travels with `carry: [".device"]`.)
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
for dtype in "${@:-f16 q4_1}"; do
  for d in $dtype; do
    echo "=== ape bench engine --dtype $d ===" | tee -a "$out/engine.txt"
    timeout 250 "$DENO" run -A sdk/cli.ts bench engine --dtype "$d" --prefill 1024 --decode 128 2>&1 | tee -a "$out/engine.txt"
  done
done
