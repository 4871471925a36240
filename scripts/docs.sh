#!/usr/bin/env bash
# `make docs`: the CLI reference and the JSON Schemas written afresh from voicesim itself, then
# the book built offline into target/book (mdBook from the doctools venv, built once).
set -euo pipefail
cd "$(dirname "$0")/.."
tools=$(scripts/pinned-venv.sh docs/requirements.txt doctools)
# The features `make test` builds with, so the two share what cargo compiled.
VOICESIM_BLESS=1 ${CARGO:-cargo} test --locked --quiet --features test-hooks --test docs
"$tools/bin/mdbook" build docs
echo "the book: target/book/index.html"
