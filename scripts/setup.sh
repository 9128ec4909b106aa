#!/usr/bin/env bash
# Installs whatever apekit needs that is missing, and nothing else: apt packages, the wasm32 std,
# wasm-bindgen-cli, npm packages, Python test references, the wasm build and the default model. Every
# step is guarded, so a machine that has everything is through in a few seconds. On a fresh machine the
# downloads (npm, pip, the default model, the wasm crate's sources) and the wasm-bindgen build run in the
# background while apt installs and the wasm32 std builds (see the README's Quick start for the timings).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
log() { printf '[setup] %s\n' "$*" >&2; }
export PATH="$HOME/.cargo/bin:$PATH"

# The steps overlap: downloads and the wasm-bindgen build (none needs the apt packages) run in the
# background (their output is shown when they end) while the foreground installs the apt packages,
# builds the wasm32 std and compiles the wasm crate, so both cores stay busy through the serial
# stretches of each. Any failure stops the set-up with that step's output.
bg_dir=$(mktemp -d)
bg=()
trap 'rm -rf "$bg_dir"' EXIT
background() { # name command...
  local name=$1
  shift
  ("$@") >"$bg_dir/$name.log" 2>&1 &
  bg+=("$!:$name")
}
wait_background() {
  local entry failed=0
  for entry in "${bg[@]}"; do
    if ! wait "${entry%%:*}"; then failed=1; log "${entry#*:} failed:"; fi
    cat "$bg_dir/${entry#*:}.log" >&2
  done
  bg=()
  [ "$failed" = 0 ] || exit 1
}

# npm packages (runtimes: Deno and Bun come from npm too).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm: installing packages (background)"
  background npm npm ci --no-audit --no-fund --loglevel=error
fi
# Python references for the differential tests (HF tokenizers, safetensors, gguf writer).
if ! python3 -c 'import tokenizers, safetensors, numpy, gguf' 2>/dev/null; then
  log "pip: installing test references (background)"
  background pip python3 -m pip install -q -r scripts/requirements-test.txt
fi
# The default model (fetched once, checked against its pinned sha256; silent when present).
if [ -f scripts/fetch-default-model.sh ]; then background model bash scripts/fetch-default-model.sh; fi
# The wasm crate's sources from crates.io, while the std and wasm-bindgen build.
if [ ! -f wasm/Cargo.lock ]; then cargo generate-lockfile -q --manifest-path wasm/Cargo.toml; fi
# (from the root: rustup's own cargo, as wasm/'s toolchain, Debian's rustc-web, comes with apt)
if [ ! -f wasm/pkg/.stamp ]; then background crates cargo fetch -q --manifest-path wasm/Cargo.toml; fi

# 1. wasm-bindgen-cli at exactly the version in Cargo.lock, built from crates.io (background): only the
#    wasm-bindgen binary, without the test runner's TLS stack (--no-default-features), at opt-level 1
#    (a build tool run once per wasm build: half the compile, a second more per run). wasm-pack is not
#    needed: scripts/build-wasm.sh runs cargo and wasm-bindgen itself.
wbg=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' wasm/Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | cut -d' ' -f2)" != "$wbg" ]; then
  log "cargo: building wasm-bindgen $wbg from crates.io (background, a few minutes, once)"
  background wasm-bindgen env CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
    cargo install -q --force --no-default-features --bin wasm-bindgen wasm-bindgen-cli --version "$wbg"
fi

# 2. apt: Mesa 25 (lavapipe Vulkan, needed by Dawn; 4-5x faster than bookworm's) from backports,
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

# 3. The wasm32 standard library (stamped by rustc's version).
bash scripts/wasm-std.sh

# 4. The wasm crate compiled for wasm32 (when its sources changed), while wasm-bindgen still builds.
bash scripts/build-wasm.sh --compile-only

# 5. Everything started in the background.
wait_background

# 6. The wasm module: wasm-bindgen's glue and wasm-opt (when its sources changed).
bash scripts/build-wasm.sh

