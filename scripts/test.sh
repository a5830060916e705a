#!/usr/bin/env bash
# Every test of posbridge: cargo's (the whole workspace, every feature), then the Python
# bindings' (scripts/python-tests.sh: a wheel built with maturin, installed into a fresh
# virtualenv, pytest against the embedded simulator).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-features
scripts/python-tests.sh
