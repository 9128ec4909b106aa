#!/usr/bin/env bash
# Carries the default model's GGUF (98 MB) to the GPU machine, whose calls carry at most 64 MiB each:
# the file travels in parts over consecutive device calls, each part parked under /tmp there (files under
# /tmp survive between calls while the machine stays warm, 30 s after a call), and the last call joins
# them into the model cache layout apekit reads, checking the sha256.
#
#   Here (once):   bash bench/gguf_carry.sh split          # -> .cache/gguf-carry/part1of2, part2of2 (git-ignored, 47 MiB each)
#   Device call 1: bash bench/gguf_carry.sh receive 1         carry: [".cache/gguf-carry/part1of2"]
#   Device call 2: bash bench/gguf_carry.sh receive 2         carry: [".cache/gguf-carry/part2of2"]   (joins, checks sha256)
#   Device call 3: source .device/boot.sh; export XDG_CACHE_HOME=/tmp/apekit-cache; $DENO run -A <job>
#                  carry: [".device", ...]   (the job: loadModel() with no path finds the model)
#   Each call within 30 s of the previous one (the machine stays warm, /tmp survives). A part and
#   .device (the Deno binary, ~30 MB; see /work/shared/device/prepare.sh) do not fit one 64 MiB call
#   together, hence the separate job call; `split 3` makes parts small enough (~32 MiB) to carry
#   .device alongside each, so the job can run in the same command as the last `receive`.
#   Any call:      bash bench/gguf_carry.sh status   # exit 0 if the model is already there (skip carrying)
#
# On the device the model lands in ${XDG_CACHE_HOME:-/tmp/apekit-cache}/apekit/models/<name>/model.gguf
# (the layout of apekit's model cache); `receive` prints the `export XDG_CACHE_HOME=...` line that makes
# loadModel() find it. `split N` makes N parts (receive 1..N, in any order).
set -euo pipefail
cd "$(dirname "$0")/.."

NAME=smollm2-135m-instruct-q4_1
SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
PARTS_DIR=.cache/gguf-carry
STAGE=/tmp/apekit-gguf-parts
log() { printf '[gguf_carry] %s\n' "$*" >&2; }

case "${1:-}" in
  split)
    n=${2:-2}
    src="${XDG_CACHE_HOME:-$HOME/.cache}/apekit/models/$NAME/model.gguf"
    [ -f "$src" ] || bash scripts/fetch-default-model.sh
    rm -rf "$PARTS_DIR"
    mkdir -p "$PARTS_DIR"
    size=$(stat -c %s "$src")
    per=$(( (size + n - 1) / n ))
    for i in $(seq 1 "$n"); do
      dd if="$src" of="$PARTS_DIR/part${i}of$n" bs=1M iflag=skip_bytes,count_bytes skip=$(( (i - 1) * per )) count="$per" status=none
    done
    ls -l "$PARTS_DIR" >&2
    log "carry $PARTS_DIR/part<i>of$n (and nothing else large) in device call i of $n"
    ;;
  receive)
    i=${2:?usage: receive <part number>}
    cache="${XDG_CACHE_HOME:-/tmp/apekit-cache}"
    dest="$cache/apekit/models/$NAME/model.gguf"
    if [ -f "$dest" ] && [ "$(sha256sum "$dest" | cut -d' ' -f1)" = "$SHA256" ]; then
      log "model already in place: $dest"
      echo "export XDG_CACHE_HOME=$cache"
      exit 0
    fi
    part=$(ls "$PARTS_DIR"/part"${i}"of* 2>/dev/null | head -1 || true)
    [ -n "$part" ] || { log "error: $PARTS_DIR/part${i}of<N> was not carried (name it in the call's carry)"; exit 1; }
    n=${part##*of}
    mkdir -p "$STAGE"
    cp "$part" "$STAGE/part$i"
    log "part $i of $n parked in $STAGE"
    missing=0
    for j in $(seq 1 "$n"); do [ -f "$STAGE/part$j" ] || missing=1; done
    if [ "$missing" = 1 ]; then
      log "waiting for the other parts (next call within 30 s, while the machine stays warm)"
      exit 0
    fi
    mkdir -p "$(dirname "$dest")"
    tmp="$dest.tmp.$$"
    for j in $(seq 1 "$n"); do cat "$STAGE/part$j"; done > "$tmp"
    got=$(sha256sum "$tmp" | cut -d' ' -f1)
    if [ "$got" != "$SHA256" ]; then
      rm -f "$tmp"
      rm -rf "$STAGE"
      log "error: joined file has sha256 $got, expected $SHA256 (parts from different splits, or one lost: start again)"
      exit 1
    fi
    mv -f "$tmp" "$dest"
    rm -rf "$STAGE"
    log "joined: $dest"
    echo "export XDG_CACHE_HOME=$cache"
    ;;
  status)
    dest="${XDG_CACHE_HOME:-/tmp/apekit-cache}/apekit/models/$NAME/model.gguf"
    if [ -f "$dest" ]; then log "present: $dest"; exit 0; fi
    log "absent: $dest"
    exit 1
    ;;
  *)
    sed -n '2,24p' "$0" >&2
    exit 2
    ;;
esac
