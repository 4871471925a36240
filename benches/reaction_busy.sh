#!/bin/sh
# voicesim's timing beside busy processes: 20 calls (4 at a time) into a Twilio agent that
# answers a fixed delay after 500 ms of caller quiet (benches/fixed_delay_agent.py), with 0, 1
# and 2 busy loops (`yes > /dev/null`) on the machine. Per load: the error of the agent's
# measured response latency against the known delay, the caller's reaction time against its
# persona's target, voicesim's own frame send slip, and the calls' outcomes.
#
#   benches/reaction_busy.sh [VOICESIM]        (default: target/release/voicesim)
set -eu
voicesim=$(realpath "${1:-target/release/voicesim}")
here=$(cd "$(dirname "$0")/.." && pwd)
python="$("$here/tests/pipecat/venv.sh")/bin/python -W ignore::DeprecationWarning"
delay_ms=300
dir=$(mktemp -d)
busy=""
trap '[ -z "$busy" ] || kill $busy 2>/dev/null; [ -z "${agent:-}" ] || kill "$agent" 2>/dev/null; rm -rf "$dir"' EXIT
"$voicesim" tts "Thank you, I have noted that." -o "$dir/reply16.wav" >/dev/null
$python - "$dir/reply16.wav" "$dir/reply.wav" <<'PY'
import audioop, sys, wave
with wave.open(sys.argv[1]) as w:
    pcm, rate = w.readframes(w.getnframes()), w.getframerate()
pcm, _ = audioop.ratecv(pcm, 2, 1, rate, 8000, None)
with wave.open(sys.argv[2], "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000); w.writeframes(pcm)
PY
port=$($python -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
$python "$here/benches/fixed_delay_agent.py" "$port" "$dir/reply.wav" "$delay_ms" >"$dir/agent.log" 2>&1 &
agent=$!
until grep -q ready "$dir/agent.log"; do sleep 0.2; done
cat >"$dir/suite.yaml" <<'YAML'
name: busy
runs: 20
personas:
  person: { reaction_ms: [200, 800] }
scenarios:
  caller-first: { first: caller }
stop: { answer_timeout_seconds: 10 }
tests:
  - name: three-turns
    persona: person
    scenario: caller-first
    steps:
      - goal: Give the order number
        static_utterance: My order number is four five two one.
        check: { contains: noted }
      - goal: Ask about the delivery
        static_utterance: When will it arrive?
        check: { contains: noted }
      - goal: Say goodbye
        static_utterance: Thank you, goodbye.
        check: { contains: noted }
    expectations:
      - name: answers in time
        check: { metric: "latency_p95_ms < 2000" }
YAML
echo "| busy loops | agent latency error (mean / worst) | caller reaction p50 / p95 (target 200-800 ms) | answers on their target | frame send slip p99 (worst call) | passed / not judged / failed |"
echo "| --- | --- | --- | --- | --- | --- |"
for loops in 0 1 2; do
    i=0
    while [ "$i" -lt "$loops" ]; do yes >/dev/null & busy="$busy $!"; i=$((i + 1)); done
    "$voicesim" run "$dir/suite.yaml" --agent "ws://127.0.0.1:$port/" --parallel 4 \
        --out "$dir/run-$loops" >/dev/null 2>&1 || true
    [ -z "$busy" ] || kill $busy; busy=""
    $python - "$dir/run-$loops/results.jsonl" "$loops" "$delay_ms" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
expected = 500 + float(sys.argv[3])  # the agent's quiet window, then its delay
errors = [l - expected for r in rows for l in r["latencies_ms"]]
reactions = sorted(a["reaction_ms"] for r in rows for a in r.get("reactions", []))
on_time = sum(1 for r in rows for a in r.get("reactions", []) if a["late_ms"] <= 20)
slip = max(r["metrics"].get("send_slip_p99_ms", 0) for r in rows)
pct = lambda xs, p: xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")
count = lambda o: sum(1 for r in rows if r["outcome"] == o)
mean = sum(errors) / len(errors) if errors else float("nan")
worst = max(errors, key=abs) if errors else float("nan")
print(f"| {sys.argv[2]} | {mean:+.0f} / {worst:+.0f} ms | {pct(reactions, .5):.0f} / {pct(reactions, .95):.0f} ms "
      f"| {on_time} of {len(reactions)} | {slip:.1f} ms | {count('passed')} / {count('not_judged')} / {count('failed') + count('error')} |")
PY
done
