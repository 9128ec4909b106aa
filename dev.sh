#!/usr/bin/env bash
# apekit's one entry point for people and CI: installs what is missing, then runs a job.
#   ./dev.sh demo          the main job on the embedded default model
#   ./dev.sh test          the whole test suite: cargo test, then vitest under Node, Bun and Deno
#   ./dev.sh ape ARGS...   the CLI (same as `deno task ape ARGS...`)
set -euo pipefail
cd "$(dirname "$0")"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
bash scripts/setup.sh
DENO=$PWD/node_modules/@deno/linux-x64-glibc/deno
BUN=$PWD/node_modules/.bin/bun
job=${1:-}
shift || true
case "$job" in
  demo) exec "$DENO" run -A sdk/cli.ts demo "$@" ;;
  ape) exec "$DENO" run -A sdk/cli.ts "$@" ;;
  test)
    echo "== cargo test (host) =="
    (cd wasm && cargo test -q --release 2>&1)
    echo "== vitest under Node $(node --version) =="
    node_modules/.bin/vitest run "$@"
    echo "== vitest under Bun $("$BUN" --version) =="
    "$BUN" --bun node_modules/.bin/vitest run "$@"
    echo "== vitest under Deno $("$DENO" --version | head -1) =="
    "$DENO" run -A npm:vitest run "$@"
    ;;
  *) echo "usage: ./dev.sh demo|test|ape ..." >&2; exit 2 ;;
esac
