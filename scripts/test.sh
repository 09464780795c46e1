#!/usr/bin/env bash
# Sets up and runs every test: the fixture repositories' own suites, then Quarry's unit and
# end-to-end tests against the release build (the e2e tests drive target/release/quarry).
# Ends with one line totalling every suite: "tests: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --test

# The local LLM that setup installed, for the tests that talk to a real model.
cache="${QUARRY_CACHE_DIR:-$HOME/.cache/quarry}"
export QUARRY_TEST_LLAMA_SERVER="${QUARRY_TEST_LLAMA_SERVER:-$cache/llm/bin/llama-server}"
export QUARRY_TEST_LLM_MODEL="${QUARRY_TEST_LLM_MODEL:-$cache/llm/models/SmolLM2-135M-Instruct.Q4_1.gguf}"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
failed=0

# run NAME CMD...: runs a suite, keeps its output for the totals, remembers a failure.
run() {
  local name="$1"; shift
  echo "== $name"
  set +e
  "$@" 2>&1 | tee -a "$log"
  local status=${PIPESTATUS[0]}
  set -e
  if [ "$status" -ne 0 ]; then
    echo "== $name FAILED (exit $status)"
    failed=1
  fi
}

run "fixture rust-shop: cargo test" bash -c 'cd fixtures/rust-shop && cargo test --quiet'
run "fixture py-notes: pytest" bash -c 'cd fixtures/py-notes && python3 -m pytest -q -p no:cacheprovider'
run "quarry: build" cargo build --release --workspace --locked
run "quarry: tests" cargo test --release --workspace --locked
if [ -z "${QUARRY_TEST_QDRANT_URL:-}" ]; then
  echo "note: the Qdrant server tests were skipped (set QUARRY_TEST_QDRANT_URL=http://host:6334 to run them; see the README's team index section)"
fi

# Sum cargo's "test result: ok. N passed; M failed" lines and pytest's "N passed in 0.1s".
awk '
  /^test result:/ || / in [0-9.]+s( =+)?$/ {
    for (i = 2; i <= NF; i++) {
      if ($(i) ~ /^passed/) p += $(i-1)
      if ($(i) ~ /^failed/) f += $(i-1)
    }
  }
  END { printf "tests: %d passed, %d failed\n", p, f }
' "$log"
exit "$failed"
