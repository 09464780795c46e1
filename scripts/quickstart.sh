#!/usr/bin/env bash
# Sets up, builds Quarry, indexes a repository (this one by default) and searches it.
#
#   scripts/quickstart.sh [REPO] [QUERY]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="${1:-$here}"
query="${2:-chunk a file with tree-sitter}"

"$here/scripts/setup.sh"
(cd "$here" && cargo build --release --locked -p quarry-cli)
quarry="${CARGO_TARGET_DIR:-$here/target}/release/quarry"

"$quarry" index "$repo"
echo
echo "\$ quarry search \"$query\" -k 3"
"$quarry" search "$query" -k 3 --root "$repo"
echo
"$quarry" status --root "$repo"
echo
echo "quarry is at $quarry; put it on your PATH to use it anywhere."
