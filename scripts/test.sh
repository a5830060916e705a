#!/usr/bin/env bash
# Every test of posbridge: cargo's (the whole workspace, every feature), then the bindings':
# Python (scripts/python-tests.sh: a wheel built with maturin, installed into a fresh virtualenv,
# pytest against the embedded simulator) and Kotlin (scripts/kotlin-tests.sh: compiled with
# kotlinc, run on the JVM against the embedded simulator; the Swift bindings generated). The back
# office's tests (in cargo's) start PostgreSQL clusters of their own (initdb; Debian: postgresql).
# The model check (posbridge-model, with its mutations) runs in cargo's; the test vectors are
# checked a second time by an independent Python implementation (scripts/check_vectors.py).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/check_vectors.py
cargo test --workspace --all-features
scripts/python-tests.sh
scripts/kotlin-tests.sh
