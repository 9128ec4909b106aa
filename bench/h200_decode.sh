#!/usr/bin/env bash
# Decode on the GPU machine under Bun + Dawn, in one device call of at most 10 minutes: the one-row decode
# step (`bench engine`), continuous batching with its per-kernel breakdown (`bench batch`), and sweeps of
# the decode attention kernels (`bench attention-decode`). Output goes to $OUT/decode.txt; figures go into
# bench/results-h200-engine.txt, results-h200-batch.txt and results-h200-long.txt.
#
# Once, on this machine, in the project's root: bash bench/prepare_bun_device.sh   (.device-bun/, git-ignored)
# Then through the device tool (carry [".device-bun"]; while the machine stays warm, [".device-bun/boot.sh"]):
#   source .device-bun/boot.sh; bash bench/h200_decode.sh [engine] [batch] [attention]
# Each part runs under its own timeout; PARTS_S (default 560) bounds the whole call.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
[ -x "${BUN:-}" ] || { echo "BUN is not set: begin with 'source .device-bun/boot.sh;'" >&2; exit 2; }
log() { tee -a "$out/decode.txt"; }
start=$SECONDS
left() { echo $((${PARTS_S:-560} - (SECONDS - start))); }
part() { # timeout-seconds label command...
  local limit=$1 label=$2; shift 2
  [ "$(left)" -lt "$limit" ] && limit=$(left)
  if [ "$limit" -lt 20 ]; then echo "=== $label: skipped, no time left ===" | log; return; fi
  echo "=== $label (timeout ${limit}s) ===" | log
  timeout -k 5 "$limit" "$@" 2>&1 | log
}
echo "### apekit decode (Bun $("$BUN" --version) + Dawn) on $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2> /dev/null | head -1), $(date -u +%FT%TZ)" | log
for p in "${@:-engine batch attention}"; do
  for q in $p; do
    case "$q" in
      engine) part 120 "bench engine --dtype f16 --prefill 1024 --decode 128" "$BUN" sdk/cli.ts bench engine --dtype f16 --prefill 1024 --decode 128 ;;
      batch) part 200 "bench batch --kv f16 --breakdown" "$BUN" sdk/cli.ts bench batch --kv f16 --streams ${STREAMS:-1,8,32} --breakdown ;;
      attention) part 220 "bench attention-decode" "$BUN" sdk/cli.ts bench attention-decode --dtypes f16 --keys ${KEYS:-64,256,8192,32768,131072} \
        --variants "${VARIANTS:-row,lanes,lanes:w=1024,lanes:w=4096,lanes:w=8192,lanes:t=256,lanes:t=256:w=4096}" --trials 2 ;;
      *) echo "unknown part '$q' (engine, batch, attention)" >&2; exit 2 ;;
    esac
  done
done
