#!/usr/bin/env bash
# The book, as `make test` checks it: built offline with mdBook, then its links, its YAML
# examples, the bundled examples and real results lines checked (scripts/check-docs.py) with
# the voicesim that `cargo test` built and check-jsonschema, and the bundled suite opened in
# the YAML language server an editor runs. That the generated pages (the CLI
# reference, the JSON Schemas) are current is a cargo test (tests/docs.rs).
# Usage: scripts/test-docs.sh [VOICESIM]   (default target/debug/voicesim)
set -euo pipefail
cd "$(dirname "$0")/.."
voicesim=${1:-target/debug/voicesim}
if [ ! -x "$voicesim" ]; then
  echo "error: $voicesim is not built; run \`cargo test --all-targets --features test-hooks\` first (make test does)" >&2
  exit 2
fi
tools=$(scripts/pinned-venv.sh docs/requirements.txt doctools)
editor=$(scripts/pinned-npm.sh tests/editor yamlls)
if ! "$tools/bin/mdbook" build docs > target/mdbook.log 2>&1; then
  cat target/mdbook.log >&2
  exit 1
fi
"$tools/bin/python" scripts/check-docs.py "$voicesim" "$tools/bin/check-jsonschema" "$editor"
