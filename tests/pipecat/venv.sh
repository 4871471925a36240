#!/usr/bin/env bash
# Prints the path of a Python venv holding the Pipecat pinned in tests/pipecat/requirements.txt,
# building it first if it is missing. The venv lives in voicesim's cache folder
# ($VOICESIM_CACHE, else $XDG_CACHE_HOME/voicesim, else ~/.cache/voicesim), named by a hash
# of the requirements, so a change of pins builds a new one. Used by `make setup-test` and by
# tests/pipecat.rs; progress goes to stderr, the path alone to stdout.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${VOICESIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/voicesim}"
key="$(sha256sum "$here/requirements.txt" | cut -c1-16)"
venv="$cache/pipecat-$key"
if [ ! -f "$venv/.complete" ]; then
  echo "building the Pipecat venv for the interop tests in $venv (once)" >&2
  # Built in place (a venv's scripts name their folder); `.complete` marks it finished.
  rm -rf "$venv"
  mkdir -p "$cache"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
  touch "$venv/.complete"
fi
echo "$venv"
