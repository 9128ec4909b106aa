#!/usr/bin/env bash
# The engine benchmarks on the GPU machine (through the device tool), results under $OUT:
#   source .device/boot.sh; bash bench/h200_engine.sh
# (.device/ comes from ../shared/device/prepare.sh and travels with `carry: [".device"]`.)
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
for dtype in f16 q4_1 q8_0 f32; do
  echo "=== ape bench engine --dtype $dtype ===" | tee -a "$out/engine.txt"
  timeout 150 "$DENO" run -A sdk/cli.ts bench engine --dtype "$dtype" --prefill 1024 --decode 128 2>&1 | tee -a "$out/engine.txt"
done
