#!/usr/bin/env bash
# apekit's one entry point for people and CI: installs what is missing, then runs a job.
#   ./dev.sh demo          the main job on the embedded default model
#   ./dev.sh test          the whole test suite: type check (deno check), doc examples (deno test --doc),
#                          cargo test, then vitest under Node, Bun and Deno
#   ./dev.sh ape ARGS...   the CLI (same as `deno task ape ARGS...`)
set -euo pipefail
cd "$(dirname "$0")"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
bash scripts/setup.sh
DENO=$PWD/node_modules/@deno/linux-x64-glibc/deno
BUN=$PWD/node_modules/.bin/bun
# The @example blocks of src/ and sdk/ run as tests (Deno, lavapipe, fixture models; the Redis store's
# against a redis-server started here when none listens on 6379).
doc_examples() {
  local redis_pid="" rc=0
  if command -v redis-server >/dev/null && ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
    redis-server --port 6379 --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
    redis_pid=$!
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && break; sleep 0.1; done
  fi
  local log
  log=$(mktemp)
  NO_COLOR=1 "$DENO" test --doc -A --reporter=dot src/ sdk/ 2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
  # Deno's WebGPU teardown now and then aborts the process after the report ("double free or corruption",
  # exit 134): a run whose report says every example passed and nothing failed counts as passed
  if [ "$rc" -ne 0 ] && grep -Eq '^ok \| [0-9]+ passed \| 0 failed' "$log"; then
    echo "[doc examples] all passed; deno exited $rc after its report (its WebGPU teardown)" >&2
    rc=0
  fi
  rm -f "$log"
  if [ -n "$redis_pid" ]; then kill "$redis_pid"; wait "$redis_pid" 2>/dev/null || true; fi
  return "$rc"
}
job=${1:-}
shift || true
case "$job" in
  demo) exec "$DENO" run -A sdk/cli.ts demo "$@" ;;
  ape) exec "$DENO" run -A sdk/cli.ts "$@" ;;
  test)
    if [ $# -eq 0 ]; then # the whole suite (named test files: vitest only)
      echo "== type check: deno check src/ sdk/ bench/ examples/ =="
      "$DENO" check src/ sdk/ bench/ examples/
      echo "== doc examples: deno test --doc src/ sdk/ =="
      doc_examples
    fi
    echo "== cargo test (host) =="
    # (the debug profile: on a fresh 2-core machine 3 min to build and run against 7.8 min for --release, whose
    # optimised build of the crates outweighs its faster tests: 46 s vs 6 s)
    (cd wasm && cargo test -q 2>&1)
    # (which kernel files each runtime runs, and why: vitest.config.ts)
    echo "== vitest under Node $(node --version) =="
    node_modules/.bin/vitest run "$@"
    echo "== vitest under Bun $("$BUN" --version) (not the kernel-by-kernel files: Node ran them on the same Dawn) =="
    APEKIT_KERNEL_TESTS=0 "$BUN" --bun node_modules/.bin/vitest run "$@"
    echo "== vitest under Deno $("$DENO" --version | head -1) (of the kernel-by-kernel files, f16_compute) =="
    APEKIT_KERNEL_TESTS=deno "$DENO" run -A npm:vitest run "$@"
    ;;
  *) echo "usage: ./dev.sh demo|test|ape ..." >&2; exit 2 ;;
esac
