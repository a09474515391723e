#!/usr/bin/env bash
# Run every Molecule scenario (or those named as arguments) one after another, each with
# `molecule test` (which destroys its hosts at the end, pass or fail), and print a timing table.
# Exits non-zero when any scenario failed; all scenarios run regardless.
set -uo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$PIDOCK_ROOT"
export PATH="${PIDOCK_ROOT}/.venv/bin:${PATH}"
# Plain output in logs (CI reads them as text).
if [ ! -t 1 ]; then export NO_COLOR=1 ANSIBLE_NOCOLOR=1 PY_COLORS=0; fi

if [ "$#" -gt 0 ]; then
  scenarios=("$@")
else
  mapfile -t scenarios < <(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' \
    | xargs -n1 basename | grep -v '^_' | sort)
fi
[ "${#scenarios[@]}" -gt 0 ] || die "no molecule scenarios found"

declare -A took result
failed=0
for s in "${scenarios[@]}"; do
  start=$(date +%s)
  log "molecule test -s $s"
  if molecule test -s "$s"; then result[$s]=passed; else result[$s]=FAILED; failed=1; fi
  # Belt and braces: nothing of a scenario survives it, even if destroy itself failed.
  ids=$(docker ps -aq --filter "label=pidock.scenario=$s")
  if [ -n "$ids" ]; then
    log "removing leftover containers of $s"
    # shellcheck disable=SC2086
    docker rm -f -v $ids >/dev/null 2>&1 || true
  fi
  took[$s]=$(( $(date +%s) - start ))
done

printf '\n%-24s %8s  %s\n' scenario seconds result
for s in "${scenarios[@]}"; do
  printf '%-24s %8s  %s\n' "$s" "${took[$s]}" "${result[$s]}"
done
npass=0; nfail=0
for s in "${scenarios[@]}"; do
  if [ "${result[$s]}" = passed ]; then npass=$((npass + 1)); else nfail=$((nfail + 1)); fi
done
echo "scenarios: ${npass} passed, ${nfail} failed"
exit "$failed"
