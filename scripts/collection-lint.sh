#!/usr/bin/env bash
# The ecosystem's own checks, as a collection reviewer runs them (part of `make lint`):
#   ansible-test sanity        on a copy at .cache/sanity/ansible_collections/pidock/stack
#   antsibull-docs lint-collection-docs --plugin-docs   on the same copy
#   galaxy-importer            on the tarball `ansible-galaxy collection build` makes
# Every check runs even when an earlier one failed; the script fails if any failed.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

copy="${PIDOCK_ROOT}/.cache/sanity/ansible_collections/pidock/stack"
failed=()
stage() {
  local name="$1" start=$SECONDS
  shift
  log "== ${name}"
  if "$@"; then
    log "== ${name}: ok ($((SECONDS - start)) s)"
  else
    log "== ${name}: FAILED ($((SECONDS - start)) s)"
    failed+=("$name")
  fi
}
antsibull_lint() {
  [ -f "${copy}/galaxy.yml" ] || { log "no collection copy at ${copy}"; return 1; }
  (cd "$copy" && env -u ANSIBLE_CONFIG antsibull-docs lint-collection-docs --plugin-docs .)
}

stage "ansible-test sanity" "${PIDOCK_ROOT}/scripts/sanity.sh"
stage "antsibull-docs lint-collection-docs" antsibull_lint
stage "galaxy-importer" "${PIDOCK_ROOT}/scripts/galaxy-import.sh"

[ "${#failed[@]}" = 0 ] || die "failed: ${failed[*]}"
