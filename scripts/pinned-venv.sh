#!/usr/bin/env bash
# Prints the path of a Python venv holding what REQUIREMENTS pins, building it first if it is
# missing:  scripts/pinned-venv.sh REQUIREMENTS NAME
# The venv lives in voicesim's cache folder ($VOICESIM_CACHE, else $XDG_CACHE_HOME/voicesim,
# else ~/.cache/voicesim) as NAME-<hash of REQUIREMENTS>, so a change of pins builds a new one.
# Progress goes to stderr, the path alone to stdout.
set -euo pipefail
requirements=$1 name=$2
cache="${VOICESIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/voicesim}"
key="$(sha256sum "$requirements" | cut -c1-16)"
venv="$cache/$name-$key"
if [ ! -f "$venv/.complete" ]; then
  echo "building the $name venv in $venv (once)" >&2
  # Built in place (a venv's scripts name their folder); `.complete` marks it finished.
  rm -rf "$venv"
  mkdir -p "$cache"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2
  touch "$venv/.complete"
fi
echo "$venv"
