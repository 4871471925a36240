#!/usr/bin/env bash
# Writes each fuzz target's seed inputs into $1/<target>/, made from the repository's own
# examples and fixtures: valid inputs for the fuzzer to mutate from.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$1"
mkdir -p "$out"/{suite_yaml,noise_profile_yaml,audio_decode,twilio_messages,raw_pcm_messages,openai_realtime_messages,provider_messages,chat_reply,results_jsonl}

cp "$root/examples/orders.yaml" "$out/suite_yaml/orders.yaml"
printf 'name: s\nnoise:\n  - profile: cafe\n    snr: [20, 10, 0]\ntests:\n  - name: t\n    inputs: { n: "1" }\n    steps:\n      - goal: g {{ n }}\n        static_utterance: hi {{ n }}\n        check: { any_of: [ { contains: a }, { regex: "b+" }, { not: { metric: "turns >= 2" } } ] }\n' > "$out/suite_yaml/sweep.yaml"
for f in "$root"/fixtures/noise/*.yaml; do cp "$f" "$out/noise_profile_yaml/"; done
printf 'name: line\nbackground:\n  - file: car.wav\n    snr: [5, 15]\nbursts:\n  - file: dog_bark.wav\n    snr: 0\n    at: [0.5, 1.5]\nline:\n  telephone: true\n  clip_dbfs: -6\n  packet_loss: { percent: 5, burst: 2 }\n' > "$out/noise_profile_yaml/line.yaml"

i=0
for f in "$root"/fixtures/audio/formats/*; do
  # The head of each file: small inputs keep the fuzzer fast; a cut-off file is a case too.
  { printf "\\x$(printf %02x $i)"; head -c 6000 "$f"; } > "$out/audio_decode/$(basename "$f")"
  i=$((i + 1))
done

media='{"event":"media","streamSid":"MZ1","media":{"payload":"/////w=="}}'
mark='{"event":"mark","streamSid":"MZ1","mark":{"name":"m1"}}'
start='{"event":"start","streamSid":"MZ1","start":{"streamSid":"MZ1","customParameters":{"a":"b"}}}'
{ printf '\x00%s\xff\x00%s\xff\x00%s\xff\x00{"event":"clear","streamSid":"MZ1"}\xff\x00{"event":"dtmf","dtmf":{"digit":"5"}}\xff\x00{"event":"stop"}' "$start" "$media" "$mark"; } > "$out/twilio_messages/call"
{ printf '\x01\x00\x10\x00\x20\x00\x30\x00\x40\xff\x00{"action":"clear"}\xff\x00{"type":"hangup"}\xff\x00{"event":"websocket:connected","content-type":"audio/l16;rate=16000"}'; } > "$out/raw_pcm_messages/call"
{ printf '\x00{"type":"session.created"}\xff\x00{"type":"response.output_audio.delta","delta":"AAAAAA=="}\xff\x00{"type":"response.output_audio_transcript.delta","delta":"hi"}\xff\x00{"type":"input_audio_buffer.speech_started"}\xff\x00{"type":"conversation.item.input_audio_transcription.completed","transcript":"hello"}\xff\x00{"type":"response.done"}\xff\x00{"type":"session.update","session":{"audio":{"input":{"format":{"type":"audio/pcmu"},"turn_detection":{"type":"server_vad"}}}}}\xff\x00{"type":"input_audio_buffer.append","audio":"AAAA"}\xff\x00{"type":"error","error":{"message":"x"}}'; } > "$out/openai_realtime_messages/call"

# provider_messages: the first byte picks Telnyx (0), Plivo (1), Exotel (2), Vonage (3), Pipecat (4), Genesys (5).
{ printf '\x00\x00{"event":"start","stream_id":"s1","start":{"call_control_id":"v3:1","media_format":{"encoding":"PCMU"}}}\xff\x00{"event":"media","media":{"payload":"/////w=="}}\xff\x00{"event":"mark","mark":{"name":"m"}}\xff\x00{"event":"clear"}\xff\x00{"event":"dtmf","dtmf":{"digit":"1"}}'; } > "$out/provider_messages/telnyx"
{ printf '\x01\x00{"event":"start","start":{"streamId":"s","callId":"c"},"extra_headers":"{}"}\xff\x00{"event":"playAudio","media":{"payload":"/////w=="}}\xff\x00{"event":"checkpoint","name":"m"}\xff\x00{"event":"clearAudio"}\xff\x00{"event":"playedStream","name":"m"}'; } > "$out/provider_messages/plivo"
{ printf '\x02\x00{"event":"connected"}\xff\x00{"event":"media","stream_sid":"s","media":{"payload":"AAAAAA=="}}\xff\x00{"event":"mark","stream_sid":"s","mark":{"name":"m"}}\xff\x00{"event":"clear","stream_sid":"s"}'; } > "$out/provider_messages/exotel"
{ printf '\x03\x00{"event":"websocket:connected","content-type":"audio/l16;rate=16000"}\xff\x01\x00\x10\x00\x20\xff\x00{"action":"notify","payload":{"mark":"m"}}\xff\x00{"event":"websocket:dtmf","digit":"5"}\xff\x00{"action":"clear"}'; } > "$out/provider_messages/vonage"
{ printf '\x04\x01\x12\x0a\x1a\x04\x00\x00\x10\x00\x20\x80\x7d\x28\x01\xff\x01\x0a\x04\x1a\x02hi\xff\x01\x2a\x00\xff\x01\x22\x20\x0a\x1e{"type":"bot-stopped-speaking"}'; } > "$out/provider_messages/pipecat"
{ printf '\x05\x00{"version":"2","type":"opened","seq":1,"id":"x","parameters":{}}\xff\x01\xff\xff\x7f\x7f\xff\x00{"version":"2","type":"event","seq":2,"parameters":{"entities":[{"type":"barge_in"}]}}\xff\x00{"version":"2","type":"open","seq":1,"id":"x","parameters":{"media":[{"format":"PCMU"}]}}\xff\x00{"version":"2","type":"disconnect","seq":3,"parameters":{"reason":"completed"}}'; } > "$out/provider_messages/genesys"

printf '{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"{\\"met\\": true, \\"justification\\": \\"It said Friday.\\"}"},"finish_reason":"stop"}]}' > "$out/chat_reply/verdict.json"
printf '```json\n{"met": false, "justification": "no"}\n```' > "$out/chat_reply/fenced.txt"

# Two calls of a real run (a pass on a clean line, a failure in a cafe), and one cut off.
cat > "$out/results_jsonl/run.jsonl" <<'EOF'
{"suite":"sample","test":"order-status","tags":[],"condition":{"profile":"clean","snr":null},"run":2,"seed":7003466338748322910,"call_id":"61314f87757fd45e","origin":{"voicesim":"0.1.0","agent":"ws://127.0.0.1:8799/?token=***","protocol":"openai-realtime","seed":1},"started_at":"2026-11-30T02:44:56Z","outcome":"passed","steps":[{"goal":"Give order number","verdict":"met","justification":"the agent said \"friday\"","turns":1},{"goal":"End","verdict":"met","justification":"the agent said \"goodbye\"","turns":1}],"expectations":[{"name":"prompt","verdict":"met","justification":"latency_p95_ms was 1195.625, wanted < 3000"}],"metrics":{"latency_p50_ms":952.8333333333339,"latency_p95_ms":1195.625,"latency_max_ms":1195.625,"turns":3,"duration_s":19.4,"underruns":0,"wer":0.0},"latencies_ms":[1195.625,952.8333333333339],"faults":[],"ended":{"by":"agent_closed"},"transcript":[{"speaker":"agent","text":"Thank you for calling at me orders. What is your order number?","at_ms":3350.0},{"speaker":"caller","text":"Hi, my order number is four five two one.","at_ms":3350.0},{"speaker":"agent","text":"Order 4521, the ship. It will be delivered on Friday. Is there anything else I can tell you will?","at_ms":13360.0}]}
{"suite":"sample","test":"order-status","tags":[],"condition":{"profile":"cafe","snr":10.0},"run":2,"seed":13781293726075203625,"call_id":"bf40fda0a0083029","origin":{"voicesim":"0.1.0","agent":"ws://127.0.0.1:8799/?token=***","protocol":"openai-realtime","seed":1},"started_at":"2026-11-30T02:45:24Z","outcome":"failed","steps":[{"goal":"Give order number","verdict":"met","justification":"the agent said \"friday\"","turns":2},{"goal":"End","verdict":"not_met","justification":"the call ended before the agent met it","turns":1}],"expectations":[{"name":"prompt","verdict":"met","justification":"latency_p95_ms was 915.625, wanted < 3000"}],"metrics":{"latency_p50_ms":115.625,"latency_p95_ms":915.625,"latency_max_ms":915.625,"turns":3,"duration_s":40.02,"underruns":0,"wer":0.42857142857142855},"latencies_ms":[115.625,915.625],"faults":[{"fault":"no_answer","waited_ms":15000.0}],"ended":{"by":"no_answer","waited_ms":15000.0},"transcript":[{"speaker":"agent","text":"Thank you for calling at me orders. What is your order number?","at_ms":3370.0},{"speaker":"caller","text":"Hi, my order number is four five two one.","at_ms":3370.0},{"speaker":"agent","text":"Sorry, I did not catch that. What is your order, Humber?","at_ms":9840.0}]}
EOF
head -c 700 "$out/results_jsonl/run.jsonl" > "$out/results_jsonl/torn.jsonl"
