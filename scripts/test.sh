#!/usr/bin/env bash
# Sets up and runs every test: the fixture repositories' own suites, then Quarry's unit and
# end-to-end tests against the release build (the e2e tests drive target/release/quarry).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --test

echo "== fixture: rust-shop (cargo test)"
(cd fixtures/rust-shop && cargo test --quiet 2>&1 | tail -n 3)

echo "== fixture: py-notes (pytest)"
(cd fixtures/py-notes && python3 -m pytest -q -p no:cacheprovider 2>&1 | tail -n 1)

echo "== quarry: build"
cargo build --release --workspace --locked

echo "== quarry: tests"
cargo test --release --workspace --locked
