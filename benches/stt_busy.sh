#!/bin/sh
# Whisper beside a busy process: `voicesim stt` on a spoken sentence and on a 3 s ringback
# tone, idle and with one `yes > /dev/null` on the machine, median of three runs each.
#
#   benches/stt_busy.sh [VOICESIM]        (default: target/release/voicesim)
set -eu
voicesim=${1:-target/release/voicesim}
dir=$(mktemp -d)
trap 'rm -rf "$dir"; [ -n "${busy:-}" ] && kill "$busy" 2>/dev/null; true' EXIT
"$voicesim" tts "I would like to check the status of my order, the number is four five two one." \
    -o "$dir/speech.wav" >/dev/null
# A ringback (440 + 480 Hz, half a second on, half off), as agents play while they transfer.
python3 - "$dir/ringback.wav" <<'PY'
import math, struct, sys, wave
rate = 16000
samples = [0.3 * (math.sin(2 * math.pi * 440 * i / rate) + math.sin(2 * math.pi * 480 * i / rate))
           * (1 if (i // (rate // 2)) % 2 == 0 else 0) for i in range(3 * rate)]
with wave.open(sys.argv[1], "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate)
    w.writeframes(struct.pack("<%dh" % len(samples), *(int(s * 32767) for s in samples)))
PY
median() {
    for _ in 1 2 3; do
        "$voicesim" stt --json "$1" | python3 -c "import json, sys; print(json.load(sys.stdin)['wall_ms'])"
    done | sort -n | sed -n 2p
}
echo "| clip | idle | beside one busy loop |"
echo "| --- | --- | --- |"
for clip in speech ringback; do
    idle=$(median "$dir/$clip.wav")
    yes >/dev/null & busy=$!
    loaded=$(median "$dir/$clip.wav")
    kill "$busy"; busy=
    echo "| $clip | $idle ms | $loaded ms |"
done
