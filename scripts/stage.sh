#!/usr/bin/env bash
# stage.sh NAME COMMAND...: run one stage of the suite, print its wall time, and append it to
# .cache/timings.txt so `make test` can print a summary at the end.
set -uo pipefail
name="$1"; shift
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$root/.cache"
start=$(date +%s)
printf '\n===== stage %s: start %s =====\n' "$name" "$(date +%H:%M:%S)"
"$@"
rc=$?
secs=$(( $(date +%s) - start ))
status=$([ "$rc" = 0 ] && echo ok || echo "FAILED rc=$rc")
printf '===== stage %s: %s in %dm%02ds =====\n' "$name" "$status" $((secs / 60)) $((secs % 60))
printf '%-28s %6ss  %s\n' "$name" "$secs" "$status" >>"$root/.cache/timings.txt"
exit "$rc"
