#!/usr/bin/env bash
# Prints the path of the venv holding the Pipecat pinned in tests/pipecat/requirements.txt,
# building it once into the cache (pipecat-<hash>). Used by `make setup-test`,
# tests/pipecat.rs and scripts/test-python.sh.
here="$(cd "$(dirname "$0")" && pwd)"
exec "$here/../../scripts/pinned-venv.sh" "$here/requirements.txt" pipecat
