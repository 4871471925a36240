#!/usr/bin/env bash
# Prints the path of a folder holding the npm packages that FOLDER's package.json and
# package-lock.json pin, installing them first (`npm ci`) if they are missing:
#   scripts/pinned-npm.sh FOLDER NAME
# As scripts/pinned-venv.sh does for Python: NAME-<hash of the lock> in voicesim's cache
# folder. Progress goes to stderr, the path alone to stdout.
set -euo pipefail
folder=$1 name=$2
cache="${VOICESIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/voicesim}"
key="$(cat "$folder/package.json" "$folder/package-lock.json" | sha256sum | cut -c1-16)"
dir="$cache/$name-$key"
if [ ! -f "$dir/.complete" ]; then
  echo "installing $name into $dir (once)" >&2
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$folder/package.json" "$folder/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
  touch "$dir/.complete"
fi
echo "$dir"
