#!/usr/bin/env bash
# Builds the Rust standard library for wasm32-unknown-unknown from Debian's rust-web-src, once.
# rustup cannot download targets on these machines (../shared/ENVIRONMENT.md), so we build std with
# Debian's rustc-web and -Zbuild-std, offline from the vendored sources, and install the rlibs where
# rustc looks for them. A stamp holding sha256(rustc -vV) makes reruns free until rustc changes.
set -euo pipefail
RUSTC=/usr/bin/rustc
libdir=/usr/lib/rustlib/wasm32-unknown-unknown/lib
stamp=$libdir/.apekit-stamp
want=$($RUSTC -vV | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
echo "[setup] building the wasm32 standard library (once, ~2 min)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/dummy/src" "$work/dummy/.cargo"
cat > "$work/dummy/Cargo.toml" <<'TOML'
[package]
name = "stdbuild"
version = "0.0.0"
edition = "2021"
[lib]
crate-type = ["rlib"]
[profile.release]
panic = "abort"
TOML
echo '#![no_std]' > "$work/dummy/src/lib.rs"
cat > "$work/dummy/.cargo/config.toml" <<'TOML'
[source.crates-io]
replace-with = "vendored"
[source.vendored]
directory = "/usr/lib/rustlib/src/rust/library/vendor"
[net]
offline = true
TOML
(cd "$work/dummy" && RUSTC_BOOTSTRAP=1 RUSTC=$RUSTC CARGO_HOME="$work/cargo-home" /usr/bin/cargo build -q --release \
  --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort --config "$work/dummy/.cargo/config.toml")
mkdir -p "$libdir"
find "$work/dummy/target/wasm32-unknown-unknown/release/deps" -name '*.rlib' ! -name 'libstdbuild*' -exec cp {} "$libdir/" \;
echo "$want" > "$stamp"
echo "[setup] wasm32 std installed in $libdir"
