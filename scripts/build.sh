#!/usr/bin/env bash
# Builds the npm package into dist/ (git-ignored): tsc compiles sdk/mod.ts (the SDK) and sdk/cli.ts (the
# `ape` command) with everything they import to ES2022 JavaScript + .d.ts (tsconfig.build.json; type
# errors are `deno check`'s job, in ./dev.sh test), then the files the code loads at run time are copied
# beside it in the repository's layout, so the same relative URLs work from dist/ as from a clone:
#   dist/shaders/*.wgsl, dist/shaders/include/   read by src/gpu/shaders.ts  (new URL("../../shaders/"))
#   dist/wasm/pkg/apekit_wasm{.js,_bg.wasm}      loaded by src/wasm/module.ts (wasm-bindgen glue + module)
#   dist/examples/data/facts.json                read by `ape demo`'s loadFacts
#   dist/bench/data/quality.json                 read by src/eval/data.ts (`ape eval rag`, `ape tune`)
# The benchmarks (bench/*.ts) are developer tools with developer-only dependencies and do not ship.
# Run by `npm pack` / `npm publish` (the prepack script); about 10 s.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f wasm/pkg/apekit_wasm_bg.wasm ]; then
  echo "build: wasm/pkg/ is missing: run scripts/setup.sh (or scripts/build-wasm.sh) first" >&2
  exit 1
fi
rm -rf dist
node_modules/.bin/tsc -p tsconfig.build.json
rm -rf dist/bench
mkdir -p dist/shaders/include dist/wasm/pkg dist/examples/data dist/bench/data
cp shaders/*.wgsl dist/shaders/
cp shaders/include/*.wgsl dist/shaders/include/
cp wasm/pkg/apekit_wasm.js wasm/pkg/apekit_wasm.d.ts wasm/pkg/apekit_wasm_bg.wasm wasm/pkg/apekit_wasm_bg.wasm.d.ts dist/wasm/pkg/
cp examples/data/facts.json dist/examples/data/
cp bench/data/quality.json dist/bench/data/
chmod +x dist/sdk/cli.js
