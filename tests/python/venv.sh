#!/usr/bin/env bash
# Prints the path of the venv holding the tools pinned in tests/python/requirements.txt
# (maturin, auditwheel, pytest, mypy), building it once into the cache (pytools-<hash>). Used
# by `make setup-test` and scripts/test-python.sh.
here="$(cd "$(dirname "$0")" && pwd)"
exec "$here/../../scripts/pinned-venv.sh" "$here/requirements.txt" pytools
