#!/usr/bin/env bash
# The Python package's tests, as `make test` runs them: build the wheel with maturin (the dev
# profile and the features `cargo test` built, so cargo reuses what it compiled), check it with
# auditwheel, install it into a fresh venv with pytest and nothing else, fetch the models with
# `voicesim setup`, and run tests/python there (the pytest plugin, the Python API, the Pipecat example through the
# agent fixture); mypy checks the package's types.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=$(tests/python/venv.sh)
pipecat=$(tests/pipecat/venv.sh)
wheels=target/wheels/test
rm -rf "$wheels"
# The wheel as maturin builds it, then auditwheel vendors the shared libraries a manylinux
# system lacks (libopus, ALSA) into it, patched with patchelf; maturin's own repair would patch
# cargo's binary in target/debug in place.
PATH="$tools/bin:$PATH" maturin build --quiet --profile dev --features test-hooks --locked \
  --auditwheel skip --compatibility linux --out "$wheels/built"
PATH="$tools/bin:$PATH" auditwheel repair --wheel-dir "$wheels" "$wheels"/built/voicesim-*.whl
wheel=$(ls "$wheels"/voicesim-*.whl)
"$tools/bin/auditwheel" show "$wheel" | tee target/wheels/auditwheel.txt
grep -q "manylinux_" target/wheels/auditwheel.txt
"$tools/bin/mypy" --strict python/voicesim
venv=target/py-venv
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "$wheel" pytest==8.4.2 pytest-xdist==3.8.0
# What a user types after `pip install voicesim`, into a cache of its own: the tests then run
# on the models it fetched.
export VOICESIM_CACHE="$PWD/target/py-cache"
rm -rf "$VOICESIM_CACHE"
PATH="$PWD/$venv/bin:$PATH" voicesim setup --no-llm
# Two at a time: the calls are real time, mostly waiting.
PIPECAT_PYTHON="$pipecat/bin/python" "$venv/bin/python" -m pytest -q -n 2 tests/python "$@"
