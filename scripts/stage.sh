#!/usr/bin/env bash
# stage.sh NAME COMMAND...: run one stage of the suite, print its wall time, and append it to
# .cache/timings.txt so `make test` can print a summary at the end.
set -uo pipefail
name="$1"; shift
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$root/.cache"
cpu_ticks() {
  # busy and total jiffies of the whole machine (first line of /proc/stat)
  local _cpu user nice system idle iowait irq softirq steal rest
  read -r _cpu user nice system idle iowait irq softirq steal rest </proc/stat
  echo "$((user + nice + system + irq + softirq + steal)) $((user + nice + system + idle + iowait + irq + softirq + steal))"
}
start=$(date +%s)
read -r busy0 total0 <<<"$(cpu_ticks)"
printf '\n===== stage %s: start %s =====\n' "$name" "$(date +%H:%M:%S)"
"$@"
rc=$?
secs=$(( $(date +%s) - start ))
read -r busy1 total1 <<<"$(cpu_ticks)"
cpu=$(( total1 > total0 ? 100 * (busy1 - busy0) / (total1 - total0) : 0 ))
status=$([ "$rc" = 0 ] && echo ok || echo "FAILED rc=$rc")
printf '===== stage %s: %s in %dm%02ds (CPU busy %s%%) =====\n' "$name" "$status" $((secs / 60)) $((secs % 60)) "$cpu"
printf '%-28s %6ss  cpu %3s%%  %s\n' "$name" "$secs" "$cpu" "$status" >>"$root/.cache/timings.txt"
exit "$rc"
