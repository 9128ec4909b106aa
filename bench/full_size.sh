#!/usr/bin/env bash
# Full-size checks (GPU machine, one device call, ~4-6 min): random-weight bf16 models with the exact
# configs of Qwen2.5-0.5B-Instruct, SmolLM2-360M-Instruct, Qwen3-0.6B and Llama-3.2-1B-Instruct
# (bench/full_size.py make: real vocabularies, tied embeddings, qkv bias, q/k norm, llama3 rope scaling),
# served by the stand-in hub (test/hub_server.ts: resolve + API endpoints, LFS files via a CDN redirect),
# loaded by apekit through the hub path (`loadModel("standin/<name>")`, HF_ENDPOINT -> the stand-in, a
# fresh HF_HUB_CACHE: the f32 run downloads, the f16 run reuses the cache), and apekit's logits at every
# position compared with transformers' (float64 truth; transformers f32 and f16 beside as yardsticks):
# max / mean abs error per model and run, in $OUT/full_size.txt and $OUT/compare.json.
#
# Through the device tool, from the project's root (with .device/ from ../shared/device/prepare.sh):
#   command: source .device/boot.sh; bash bench/full_size.sh
#   carry:   [".device", "wasm/pkg", "node_modules/hono", "node_modules/@huggingface/jinja"]
# Env: MODELS (comma list, default all four), TOKENS (32), SHARD (one model saved sharded through
# model.safetensors.index.json, e.g. SHARD=smollm2-360m; default none: none of the real repos is sharded),
# TOTAL_S (560: the apekit runs stop starting when it is spent), TINY=1 (CPU-sized configs, for a CPU test:
#   TINY=1 DENO=node_modules/@deno/linux-x64-glibc/deno PYTHON=/path/to/venv/bin/python bash bench/full_size.sh)
set -uo pipefail
start=$SECONDS
out=${OUT:-/tmp/out}
W=${WORK:-/tmp/apekit-fullsize}
PY=${PYTHON:-python3}
DENO=${DENO:?source .device/boot.sh first (or set DENO)}
models=${MODELS:-qwen2.5-0.5b,smollm2-360m,qwen3-0.6b,llama3.2-1b}
mkdir -p "$out" "$W"
: > "$out/full_size.txt"
log() { tee -a "$out/full_size.txt"; }
tiny=()
[ -n "${TINY:-}" ] && tiny=(--tiny)
echo "=== bench/full_size.sh $(date -u +%FT%TZ) models=$models tokens=${TOKENS:-32} shard=${SHARD:-none} ${TINY:+tiny} ===" | log
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2> /dev/null | log
"$DENO" --version | head -1 | log

# 1. the models and transformers' references
timeout "${MAKE_S:-240}" "$PY" bench/full_size.py make --out "$W" --models "$models" --tokens "${TOKENS:-32}" --shard "${SHARD:-}" "${tiny[@]}" 2>&1 | log
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "FAILED: bench/full_size.py make" | log; exit 1; }
echo "(models and references: $((SECONDS - start)) s)" | log

# 2. the stand-in hub over them
repos=()
while read -r name id dir ids; do repos+=(--repo "$id=$dir"); done < <("$PY" bench/full_size.py ids --out "$W")
: > "$W/hub.json"
"$DENO" run -A test/hub_server.ts "${repos[@]}" > "$W/hub.json" 2> "$W/hub.err" &
hub=$!
trap 'kill $hub 2> /dev/null; wait $hub 2> /dev/null' EXIT
for _ in $(seq 1 600); do
  [ -s "$W/hub.json" ] && break
  kill -0 $hub 2> /dev/null || break
  sleep 0.2
done
endpoint=$("$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["endpoint"])' "$W/hub.json" 2> /dev/null)
[ -n "$endpoint" ] || { echo "FAILED: the stand-in hub did not start:" | log; tail -5 "$W/hub.err" | log; exit 1; }
echo "stand-in hub at $endpoint (hashing the files: $((SECONDS - start)) s in all)" | log

# 3. apekit through the hub path: f32 (downloads into a fresh cache), then f16 weights in f16 compute (cached)
export HF_ENDPOINT=$endpoint HF_HUB_CACHE=$W/hf-cache HF_TOKEN="" HF_HUB_OFFLINE="" XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
rm -rf "$HF_HUB_CACHE"
while read -r name id dir ids; do
  for run in f32:f32:f32 f16:f16:f16; do
    tag=${run%%:*} rest=${run#*:}
    dtype=${rest%%:*} compute=${rest#*:}
    left=$((${TOTAL_S:-560} - (SECONDS - start)))
    if [ $left -lt 20 ]; then echo "=== $name apekit_$tag: skipped, no time left ===" | log; continue; fi
    limit=$((left < ${RUN_S:-150} ? left : ${RUN_S:-150}))
    echo "=== $name apekit_$tag: loadModel(\"$id\") --dtype $dtype --compute $compute (timeout ${limit}s) ===" | log
    timeout -k 5 "$limit" "$DENO" run -A bench/full_size.ts --model "$id" --ids "$ids" --dtype "$dtype" --compute "$compute" \
      --out "$W/$name.apekit_$tag.bin" 2> "$W/$name.$tag.stderr" | log
    rc=${PIPESTATUS[0]}
    if [ "$rc" -ne 0 ]; then
      echo "(exit $rc$([ "$rc" -eq 124 ] && echo ': timed out'); last lines:)" | log
      tr '\r' '\n' < "$W/$name.$tag.stderr" | grep -v '^\s*$' | tail -6 | log
    fi
  done
done < <("$PY" bench/full_size.py ids --out "$W")
echo "(apekit runs done: $((SECONDS - start)) s in all)" | log

# 4. the comparison
"$PY" bench/full_size.py compare --out "$W" 2>&1 | log
rc=${PIPESTATUS[0]}
cp "$W/compare.json" "$W/manifest.json" "$out/" 2> /dev/null
echo "(total $((SECONDS - start)) s)" | log
exit "$rc"
