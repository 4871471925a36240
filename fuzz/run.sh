#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each, from the seeds and the findings
# kept as regressions, with a fixed seed; stops at the first crash and says how to replay it.
# Usage: fuzz/run.sh [--smoke] SECONDS [TARGET ...]
# --smoke builds without optimizations (a minute and a half sooner, several times fewer inputs
# a second): enough for `make test`'s short pass over the seeds and regressions.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
profile=()
if [ "${1:-}" = "--smoke" ]; then
  profile=(--dev)
  shift
fi
seconds="${1:?usage: fuzz/run.sh [--smoke] SECONDS [TARGET ...]}"
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(suite_yaml noise_profile_yaml audio_decode twilio_messages raw_pcm_messages openai_realtime_messages provider_messages chat_reply results_jsonl)

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "error: fuzzing needs the nightly toolchain (rustup toolchain install nightly)" >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz (once)"
  cargo install cargo-fuzz --locked --quiet
fi

work="$root/fuzz/target/work"
rm -rf "$work/seeds"
mkdir -p "$work"
fuzz/seeds.sh "$work/seeds" >/dev/null
# Safe Rust: what the fuzzer hunts is panics (and overflows: debug assertions are on), which
# need no sanitizer; without one it runs several times faster.
if ! cargo +nightly fuzz build -s none "${profile[@]}" >"$work/build.log" 2>&1; then
  tail -40 "$work/build.log" >&2
  echo "error: the fuzz targets did not build (full log: $work/build.log)" >&2
  exit 1
fi
for t in "${targets[@]}"; do
  mkdir -p "$work/corpus/$t" "$root/fuzz/artifacts/$t"
  dirs=("$work/corpus/$t" "$work/seeds/$t")
  [ -d "$root/fuzz/regressions/$t" ] && dirs+=("$root/fuzz/regressions/$t")
  log="$work/$t.log"
  if ! cargo +nightly fuzz run -s none "${profile[@]}" "$t" "${dirs[@]}" -- \
      -max_total_time="$seconds" -seed=1 -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$root/fuzz/artifacts/$t/" >"$log" 2>&1; then
    grep -E "panicked|overflow|ERROR|SUMMARY|Test unit written|timeout" "$log" | cut -c1-300 | head -20 >&2
    echo "error: fuzz target $t found a failing input (in fuzz/artifacts/$t/); replay it with" >&2
    echo "  cargo +nightly fuzz run -s none $t fuzz/artifacts/$t/<file>" >&2
    exit 1
  fi
  runs=$(grep -Eo '^Done [0-9]+ runs' "$log" | grep -Eo '[0-9]+' || echo '?')
  echo "fuzz $t: $runs inputs in ${seconds} s, no failure"
done
