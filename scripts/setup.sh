#!/usr/bin/env bash
# Installs whatever apekit needs that is missing, and nothing else: apt packages, the wasm32 std,
# wasm-bindgen-cli + wasm-pack, npm packages, Python test references, the wasm build and the default
# model. Every step is guarded, so a machine that has everything is through in a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
log() { printf '[setup] %s\n' "$*" >&2; }
export PATH="$HOME/.cargo/bin:$PATH"

# 1. apt: Mesa 25 (lavapipe Vulkan, needed by Dawn; 4-5x faster than bookworm's) from backports,
#    Debian's wasm-capable rustc (rustc-web) with std sources, lld for wasm,  
#    redis-server (the shared cache store's tests).
need_apt=()
mesa=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
case "$mesa" in *bpo*) ;; *) need_apt+=(mesa) ;; esac
for p in rustc-web cargo-web rust-web-src lld-22 redis-server zstd; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need_apt+=("$p")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt: installing ${need_apt[*]}"
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    cat > /etc/apt/sources.list.d/apekit-backports.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
  apt-get install -y -qq rustc-web cargo-web rust-web-src lld-22 redis-server zstd >/dev/null
fi

# 2. The wasm32 standard library (stamped by rustc's version).
bash scripts/wasm-std.sh

# 3. wasm-bindgen-cli at exactly the version in Cargo.lock, and wasm-pack (built from crates.io).
if [ ! -f wasm/Cargo.lock ]; then (cd wasm && cargo generate-lockfile -q); fi
wbg=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' wasm/Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | cut -d' ' -f2)" != "$wbg" ]; then
  log "cargo: installing wasm-bindgen-cli $wbg (a few minutes, once)"
  cargo install -q --force wasm-bindgen-cli --version "$wbg"
fi
if ! command -v wasm-pack >/dev/null; then
  log "cargo: installing wasm-pack (a few minutes, once)"
  cargo install -q wasm-pack
fi

# 4. npm packages (runtimes: Deno and Bun come from npm too).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm: installing packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

# 5. Python references for the differential tests (HF tokenizers, safetensors, gguf writer).
if ! python3 -c 'import tokenizers, safetensors, numpy, gguf' 2>/dev/null; then
  log "pip: installing test references"
  python3 -m pip install -q -r scripts/requirements-test.txt
fi

# 6. The wasm module (rebuilt only when its sources change).
bash scripts/build-wasm.sh

# 7. The default model (fetched once, checked against its pinned sha256).
if [ -f scripts/fetch-default-model.sh ]; then bash scripts/fetch-default-model.sh; fi
