#!/bin/sh
# Runs a command beside N busy loops (one process each spinning on a core), as on a shared CI
# machine, and stops them however the command ends: `scripts/busy.sh 2 cargo test`.
set -eu
n=${1:?usage: scripts/busy.sh LOOPS COMMAND...}
shift
pids=""
stop() { [ -z "$pids" ] || kill $pids 2>/dev/null || true; }
trap stop EXIT INT TERM
i=0
while [ "$i" -lt "$n" ]; do
	yes >/dev/null &
	pids="$pids $!"
	i=$((i + 1))
done
echo "busy.sh: $n busy loop(s) running beside: $*" >&2
"$@"
