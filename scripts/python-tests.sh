#!/usr/bin/env bash
# The Python bindings' tests: builds posbridge's wheel with maturin (UniFFI bindings), installs it
# into a fresh virtualenv and runs pytest (with pytest-timeout: a deadlock fails) against the
# embedded simulator. Installs maturin, pytest and pytest-timeout from PyPI into target/py-tools
# on first use; needs python3 with venv.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=target/py-tools
if [ ! -x "$tools/bin/maturin" ]; then
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet --disable-pip-version-check \
    maturin==1.16.0 pytest==9.2.0 pytest-timeout==2.4.0
fi
rm -rf target/wheels
(cd crates/posbridge-ffi && "../../$tools/bin/maturin" build --quiet --jobs 2 --out ../../target/wheels)
# The wheel must install into a fresh virtualenv on its own.
rm -rf target/py-test
python3 -m venv target/py-test
target/py-test/bin/pip install --quiet --disable-pip-version-check target/wheels/posbridge-*.whl \
  pytest==9.2.0 pytest-timeout==2.4.0
cd crates/posbridge-ffi/python
../../../target/py-test/bin/python -m pytest -q
