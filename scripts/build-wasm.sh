#!/usr/bin/env bash
# Builds wasm/ for wasm32-unknown-unknown with cargo (release), generates the JS glue with wasm-bindgen
# (--target web: glue that instantiates from bytes, so one module loads in Deno, Bun and Node), then
# shrinks the module with binaryen's wasm-opt from npm (Debian's binaryen 108 mis-rewrites the
# externref table export). The same output wasm-pack --target web --no-pack gave, without building
# wasm-pack (minutes of compiling on a fresh machine). Skipped when the sources are unchanged since the
# last build (stamp = hash of the crate's sources).
set -euo pipefail
cd "$(dirname "$0")/../wasm"
export PATH="$HOME/.cargo/bin:$PATH"
hash=$( (cat Cargo.toml Cargo.lock rust-toolchain.toml; find src -type f | sort | xargs cat) | sha256sum | cut -d' ' -f1)
if [ -f pkg/.stamp ] && [ "$(cat pkg/.stamp)" = "$hash" ] && [ -f pkg/apekit_wasm_bg.wasm ]; then exit 0; fi
# --compile-only: just the cargo step (setup.sh runs it while wasm-bindgen is still being built)
if [ "${1:-}" = --compile-only ]; then echo "[setup] compiling the wasm crate" >&2; else echo "[setup] building the wasm module" >&2; fi
RUSTFLAGS="-C linker=wasm-ld-22" cargo build -q --release --target wasm32-unknown-unknown --lib >&2
if [ "${1:-}" = --compile-only ]; then exit 0; fi
mkdir -p pkg
wasm-bindgen --target web --out-dir pkg --out-name apekit_wasm target/wasm32-unknown-unknown/release/apekit_wasm.wasm >&2
../node_modules/.bin/wasm-opt -O3 --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int \
  --enable-mutable-globals --enable-multivalue --enable-reference-types \
  pkg/apekit_wasm_bg.wasm -o pkg/apekit_wasm_bg.opt.wasm
mv pkg/apekit_wasm_bg.opt.wasm pkg/apekit_wasm_bg.wasm
echo "$hash" > pkg/.stamp
