#!/usr/bin/env bash
# The default model's answer quality on the GPU machine (through the device tool), several processes at
# once (decode at batch 1 leaves the GPU mostly idle). Results under $OUT.
#   first: bash bench/gguf_carry.sh split 2; receive 1; receive 2   (see bench/gguf_carry.sh)
#   then:  source .device/boot.sh; export XDG_CACHE_HOME=/tmp/apekit-cache
#          bash bench/h200_quality.sh grid                 # APE (T, S) grid on the validation split
#          bash bench/h200_quality.sh test T S             # sequential, parallel, APE(T, S), APE(0.9, 0.9) on the test split
#          bash bench/h200_quality.sh protocols [NAME...]  # each prompt protocol (below) on the validation split, all
#                                                          # at once (env: GRID=T..:S.., MODES=.., SPLIT=..)
#   carry: [".device", "wasm/pkg", "node_modules/@huggingface/jinja"]
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
q() { timeout "${LIMIT:-540}" "$DENO" run -A sdk/cli.ts bench quality "$@"; }
scores() { grep -hE "^(sequential|parallel|ape T=[0-9.]+ S=[0-9.]+): [0-9]+/" "$@"; }  # the result lines of bench quality
case "${1:-}" in
  grid)
    q --split validation --modes sequential,parallel > "$out/grid-baselines.txt" 2>&1 &
    for ts in 0.4,0.5 0.6,0.7 0.8 0.9 1.0; do
      q --split validation --modes ape --grid "$ts:0.4,0.5,0.6,0.7,0.8,0.9,1.0" > "$out/grid-T${ts//,/_}.txt" 2>&1 &
    done
    wait
    scores "$out"/grid-*.txt | tee "$out/grid-summary.txt"
    ;;
  test)
    t=${2:?T}; s=${3:?S}
    q --split test --modes sequential > "$out/test-sequential.txt" 2>&1 &
    q --split test --modes parallel > "$out/test-parallel.txt" 2>&1 &
    q --split test --modes ape --temperature "$t" --scale "$s" > "$out/test-ape-$t-$s.txt" 2>&1 &
    q --split test --modes ape --temperature 0.9 --scale 0.9 > "$out/test-ape-0.9-0.9.txt" 2>&1 &
    q --split demo --modes sequential,parallel,ape --temperature "$t" --scale "$s" > "$out/demo-split.txt" 2>&1 &
    wait
    scores "$out"/test-*.txt "$out/demo-split.txt" | tee "$out/test-summary.txt"
    ;;
  protocols)
    shift
    names=("$@")
    [ ${#names[@]} -gt 0 ] || names=(base nl dash label ask prefix8 system again)
    grid=${GRID:-0.5,0.7,0.9:0.9}; modes=${MODES:-sequential,ape}
    for name in "${names[@]}"; do
      args=()
      case "$name" in
        base) ;;                                                   # the SDK's defaults and the demo's instruction
        nl) args=(--doc-template '{text}\n') ;;                    # one newline after each document
        dash) args=(--doc-template '- {text}\n') ;;                # a bulleted list
        label) args=(--doc-template 'Document: {text}\n\n') ;;
        facts) args=(--doc-template 'Fact: {text}\n') ;;
        ask) args=(--query-template 'Question: {query}\nAnswer with a short phrase copied from the documents.') ;;
        prefix8) args=(--prefix 'Answer the question using the documents.\n\n') ;;
        noinstr) args=(--prefix '') ;;
        system) args=(--system 'You answer questions using only the documents in the user message.') ;;
        dash-ask) args=(--doc-template '- {text}\n' --query-template '\nQuestion: {query}\nAnswer with a short phrase copied from the documents.') ;;
        again) args=(--query-template 'Using the documents above, answer this question: {query}') ;;
        d3) args=(--distractors 3) ;;
        *) echo "unknown protocol $name" >&2; exit 2 ;;
      esac
      q --split "${SPLIT:-validation}" --modes "$modes" --grid "$grid" "${args[@]}" > "$out/protocol-$name.txt" 2>&1 &
    done
    wait
    for name in "${names[@]}"; do
      scores "$out/protocol-$name.txt" | sed "s/^/$name /"
    done | tee "$out/protocols-summary.txt"
    ;;
  *) sed -n '2,11p' "$0" >&2; exit 2 ;;
esac
