#!/usr/bin/env bash
# The engine benchmarks on the GPU machine (through the device tool), results under $OUT:
#   source .device/boot.sh; bash bench/h200_engine.sh [dtype[:compute]...]   (default: f16 f16:f16 q4_1)
# e.g. `f16:f16` is f16 weights computed in f16 (shader-f16). Each run loads its own random model.
# (.device/ comes from ../shared/device/prepare.sh and travels with `carry: [".device", "wasm/pkg"]`.)
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
for spec in ${@:-f16 f16:f16 q4_1}; do
  dtype=${spec%%:*}
  compute=f32
  [ "$spec" != "$dtype" ] && compute=${spec#*:}
  echo "=== ape bench engine --dtype $dtype --compute $compute ===" | tee -a "$out/engine.txt"
  timeout 200 "$DENO" run -A sdk/cli.ts bench engine --dtype "$dtype" --compute "$compute" --prefill 1024 --decode 128 2>&1 | tee -a "$out/engine.txt"
done
