#!/usr/bin/env bash
# `make lint`: the project's linters one after another, and beside them (on the other core) the
# ecosystem's checks of scripts/collection-lint.sh, whose output is printed when they end.
# Every check runs even when an earlier one failed; the script fails if any failed.
set -uo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$PIDOCK_ROOT"
mkdir -p .cache
eco_log=".cache/collection-lint.log"
scripts/collection-lint.sh >"$eco_log" 2>&1 &
eco_pid=$!

failed=()
check() {
  # check COMMAND...: named after the command, or after the script for `python scripts/x.py`
  local start=$SECONDS name="$1"
  [ "$1" = python ] && name="$(basename "$2")"
  echo "$*"
  if "$@"; then
    log "${name}: ok ($((SECONDS - start)) s)"
  else
    log "${name}: FAILED ($((SECONDS - start)) s)"
    failed+=("$name")
  fi
}
check yamllint --strict .
check ansible-lint --profile production
check ruff check .
check python scripts/secret_leaks.py lint
check python scripts/role_docs.py --check
check python scripts/doc_check.py
check antsibull-changelog lint

wait "$eco_pid" || failed+=("collection-lint (ansible-test sanity, antsibull-docs, galaxy-importer)")
echo "scripts/collection-lint.sh"
cat "$eco_log"
[ "${#failed[@]}" = 0 ] || die "lint failed: ${failed[*]}"
