#!/usr/bin/env bash
# Run every Molecule scenario (or those named as arguments) with `molecule test`, which destroys
# its hosts at the end, pass or fail; print a timing table and the closing line
# `scenarios: N passed, M failed`. All scenarios run regardless; exits non-zero when any failed.
#
# PIDOCK_MOLECULE_JOBS (default 2) scenarios run at once. Scenarios are independent: every host
# container, network and volume name is the scenario's own, and nothing is published on the
# controller. Each scenario's output goes to .cache/molecule/<scenario>.log; with one job it is
# also streamed to the terminal. The log tail of each failed scenario is printed at the end.
set -uo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$PIDOCK_ROOT"
export PATH="${PIDOCK_ROOT}/.venv/bin:${PATH}"
# Plain output in logs (CI reads them as text).
if [ ! -t 1 ]; then export NO_COLOR=1 ANSIBLE_NOCOLOR=1 PY_COLORS=0; fi

jobs_max="${PIDOCK_MOLECULE_JOBS:-2}"
[[ "$jobs_max" =~ ^[1-9][0-9]*$ ]] || die "PIDOCK_MOLECULE_JOBS must be a positive integer, got '${jobs_max}'"
tail_lines="${PIDOCK_MOLECULE_TAIL:-120}"
# A scenario still running after this many seconds is killed (with everything it started), its
# hosts destroyed, and it counts as failed: one hung scenario must not eat the whole CI budget.
# 4200 s: migrate, the longest, took 1,273 s in CI on 2026-11-29; in trials on a machine about 2x
# slower (swarm 1,249 and 1,281 s against 655 s, two scenarios at a time) it passed 1,800 s, then
# 2,700 s, each time with every test that ran passing. Started about 430 s into the suite, it still
# ends inside the suite's own limit (.ci/run, 5,100 s), which stops a run that hangs within CI's 90 min.
scenario_timeout="${PIDOCK_MOLECULE_TIMEOUT:-4200}"
[[ "$scenario_timeout" =~ ^[1-9][0-9]*$ ]] || die "PIDOCK_MOLECULE_TIMEOUT must be a positive number of seconds, got '${scenario_timeout}'"
# .ci/run points this outside the clone, so the logs survive a run that CI cuts short.
logdir="${PIDOCK_MOLECULE_LOG_DIR:-${PIDOCK_ROOT}/.cache/molecule}"
mkdir -p "$logdir"
# A controller the tests SIGKILL leaves its ansible-local-* directory (kill_controller removes it
# now); older ones, from runs cut short, go here. None of a live run is a day old.
find "${ANSIBLE_LOCAL_TEMP:-${HOME}/.ansible/tmp}" -maxdepth 1 -name 'ansible-local-*' -mmin +1440 \
  -exec rm -rf {} + 2>/dev/null || true

# Expected seconds per scenario: the CI run of 2026-11-30 05:28 (b999eaa, two lanes, 2 cores;
# docker_distro with the test ground's checks added). Only the order matters: longest first, so the
# lanes end close together. A scenario missing here is assumed long and starts early.
# The stamped logs of each CI run (/var/log/pidock-ci) give the real figures to put here.
declare -A expected=(
  [migrate]=2450 [swarm]=1119 [fleet]=627 [compose_faults]=607 [tls_modes]=588 [compose_deploy]=568
  [examples]=359 [docker_arm64]=322 [docker_distro]=230 [tls_acme]=202 [docker_pi]=195 [docker_upstream]=183
)

# Scenarios left out of the default run (still run when named): none today. Name them in
# PIDOCK_MOLECULE_SKIP (space-separated) to leave them out, e.g. PIDOCK_MOLECULE_SKIP="swarm".
skip=" ${PIDOCK_MOLECULE_SKIP-} "
if [ "$#" -gt 0 ]; then
  scenarios=("$@")
else
  mapfile -t scenarios < <(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' \
    | xargs -n1 basename | grep -v '^_' | sort | while read -r s; do
        [[ "$skip" == *" $s "* ]] && log "not in the default run: $s (PIDOCK_MOLECULE_SKIP)" || echo "$s"; done)
fi
[ "${#scenarios[@]}" -gt 0 ] || die "no molecule scenarios found"
for s in "${scenarios[@]}"; do
  [ -f "molecule/${s}/molecule.yml" ] || die "no such scenario: ${s}"
done
mapfile -t queue < <(for s in "${scenarios[@]}"; do printf '%s %s\n' "${expected[$s]:-9999}" "$s"; done \
  | sort -k1,1nr -k2 | cut -d' ' -f2)

stamp() {
  # Prefix each line with HH:MM:SS (bash's printf clock: no process per line).
  local line
  while IFS= read -r line || [ -n "$line" ]; do printf '%(%H:%M:%S)T %s\n' -1 "$line"; done
}

run_one() {
  # run_one SCENARIO: molecule test, then remove anything of the scenario that survived destroy.
  local s="$1" rc=0 ids
  # Every line is stamped with the wall clock, so the log shows where a scenario spends its time
  # (scripts/molecule_phases.py reads the stamps of Molecule's "Executing" lines).
  # timeout(1) runs molecule in a process group of its own and signals the whole group, so the
  # ansible-playbook processes under it stop too.
  # With one job the log is also streamed to the terminal.
  timeout --kill-after=30 "$scenario_timeout" molecule test -s "$s" 2>&1 | stamp \
    | if [ "$jobs_max" = 1 ]; then tee "${logdir}/${s}.log"; else cat >"${logdir}/${s}.log"; fi
  rc=${PIPESTATUS[0]}
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    log "TIMED OUT: $s after ${scenario_timeout} s (PIDOCK_MOLECULE_TIMEOUT); destroying its hosts"
    echo "pidock: scenario killed after ${scenario_timeout} s (PIDOCK_MOLECULE_TIMEOUT)" >>"${logdir}/${s}.log"
    timeout 300 molecule destroy -s "$s" >>"${logdir}/${s}.log" 2>&1 || true
  fi
  ids=$(docker ps -aq --filter "label=pidock.scenario=$s")
  if [ -n "$ids" ]; then
    log "removing leftover containers of $s"
    # shellcheck disable=SC2086
    docker rm -f -v $ids >/dev/null 2>&1 || true
  fi
  return "$rc"
}

cpu_ticks() {
  # busy and total jiffies of the whole machine (first line of /proc/stat)
  local _cpu user nice system idle iowait irq softirq steal rest
  read -r _cpu user nice system idle iowait irq softirq steal rest </proc/stat
  echo "$((user + nice + system + irq + softirq + steal)) $((user + nice + system + idle + iowait + irq + softirq + steal))"
}

declare -A took result started pid_of
running=()
suite_start=$(date +%s)
read -r busy0 total0 <<<"$(cpu_ticks)"
next=0
while [ "$next" -lt "${#queue[@]}" ] || [ "${#running[@]}" -gt 0 ]; do
  while [ "$next" -lt "${#queue[@]}" ] && [ "${#running[@]}" -lt "$jobs_max" ]; do
    s="${queue[$next]}"; next=$((next + 1))
    log "start molecule test -s $s (log: ${logdir}/${s}.log)"
    started[$s]=$(date +%s)
    run_one "$s" &
    pid_of[$s]=$!
    running+=("$s")
  done
  # Wait for any one lane to finish; -p names it, $? is its status.
  done_pid=""
  wait -n -p done_pid; rc=$?
  still=()
  for s in "${running[@]}"; do
    if [ "${pid_of[$s]}" != "$done_pid" ]; then still+=("$s"); continue; fi
    if [ "$rc" = 0 ]; then result[$s]=passed; else result[$s]=FAILED; fi
    took[$s]=$(( $(date +%s) - started[$s] ))
    log "${result[$s]}: $s in ${took[$s]} s"
  done
  running=("${still[@]+"${still[@]}"}")
done
wall=$(( $(date +%s) - suite_start ))
read -r busy1 total1 <<<"$(cpu_ticks)"
cpu_busy=$(( total1 > total0 ? 100 * (busy1 - busy0) / (total1 - total0) : 0 ))

npass=0; nfail=0; sum=0
for s in "${queue[@]}"; do
  sum=$((sum + took[$s]))
  if [ "${result[$s]}" = passed ]; then npass=$((npass + 1)); else nfail=$((nfail + 1)); fi
done
# A digest of each failure for the very end of `make test` (CI shows only an output's last lines):
# pytest's short summary when the verifier failed, else the last task errors.
digest="${PIDOCK_ROOT}/.cache/failures.txt"
mkdir -p "$(dirname "$digest")"; : >"$digest"
for s in "${queue[@]}"; do
  [ "${result[$s]}" = passed ] && continue
  printf '\n----- %s FAILED: last %s lines of %s/%s.log -----\n' "$s" "$tail_lines" "$logdir" "$s"
  tail -n "$tail_lines" "${logdir}/${s}.log"
  {
    echo "${s} FAILED (log: ${logdir}/${s}.log):"
    summary=$(sed -n '/short test summary info/,/ in [0-9.]*s /p' "${logdir}/${s}.log" | grep -E ' (FAILED|ERROR) ' || true)
    if [ -z "$summary" ]; then
      summary=$(grep -E 'fatal: |\[ERROR\]|scenario killed after' "${logdir}/${s}.log" | tail -n 4 || true)
    fi
    printf '%s\n' "${summary:-  (no error line found; see the log)}" | cut -c1-400 | sed 's/^/  /'
  } >>"$digest"
done
printf '\n%-24s %8s  %s\n' scenario seconds result
for s in "${scenarios[@]}"; do
  printf '%-24s %8s  %s\n' "$s" "${took[$s]}" "${result[$s]}"
done
printf '%-24s %8s  (%s at a time; the scenarios alone add up to %s s)\n' "wall" "$wall" "$jobs_max" "$sum"
# Near 100 %, the lanes share saturated cores (another lane would not help); far below, they wait.
printf 'CPU busy over the stage: %s%% of %s cores\n' "$cpu_busy" "$(nproc)"
# Where each scenario spent its time, per Molecule action (seconds).
python3 "${PIDOCK_ROOT}/scripts/molecule_phases.py" --dir "$logdir" "${scenarios[@]}" || true
echo "scenarios: ${npass} passed, ${nfail} failed"
[ "$nfail" = 0 ]
