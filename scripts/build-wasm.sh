#!/usr/bin/env bash
# Builds wasm/ with wasm-pack (release, --target web: glue that instantiates from bytes, so one module
# loads in Deno, Bun and Node), then shrinks it with binaryen's wasm-opt from npm (Debian's binaryen 108 mis-rewrites
# the externref table export). Skipped when the sources
# are unchanged since the last build (stamp = hash of the crate's sources).
set -euo pipefail
cd "$(dirname "$0")/../wasm"
export PATH="$HOME/.cargo/bin:$PATH"
hash=$( (cat Cargo.toml Cargo.lock rust-toolchain.toml; find src -type f | sort | xargs cat) | sha256sum | cut -d' ' -f1)
if [ -f pkg/.stamp ] && [ "$(cat pkg/.stamp)" = "$hash" ] && [ -f pkg/apekit_wasm_bg.wasm ]; then exit 0; fi
echo "[setup] building the wasm module" >&2
RUSTFLAGS="-C linker=wasm-ld-22" wasm-pack --quiet build --release --target web --out-dir pkg --no-pack . >&2
../node_modules/.bin/wasm-opt -O3 --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int \
  --enable-mutable-globals --enable-multivalue --enable-reference-types \
  pkg/apekit_wasm_bg.wasm -o pkg/apekit_wasm_bg.opt.wasm
mv pkg/apekit_wasm_bg.opt.wasm pkg/apekit_wasm_bg.wasm
echo "$hash" > pkg/.stamp
