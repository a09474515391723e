#!/usr/bin/env bash
# Create (or reuse) the project venv .venv with the pinned controller toolchain.
# Reinstalls only when requirements-dev.txt or constraints.txt changed.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

VENV="${PIDOCK_ROOT}/.venv"
PY="${PYTHON:-python3}"
stamp="${VENV}/.pidock-requirements.sha256"
want="$(cat "${PIDOCK_ROOT}/requirements-dev.txt" "${PIDOCK_ROOT}/constraints.txt" | sha256sum | cut -d' ' -f1)"

if [ -x "${VENV}/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  log "venv up to date ($(${VENV}/bin/ansible --version 2>/dev/null | sed -n 1p))"
  exit 0
fi
log "creating venv in ${VENV}"
"$PY" -m venv "$VENV"
"${VENV}/bin/pip" install --quiet --disable-pip-version-check --upgrade pip 2>/dev/null || true
"${VENV}/bin/pip" install --quiet --disable-pip-version-check \
  -r "${PIDOCK_ROOT}/requirements-dev.txt" -c "${PIDOCK_ROOT}/constraints.txt" 2>&1 \
  | grep -v "^WARNING: Location 'file://" || true
# pip's output is filtered above; check the result explicitly.
"${VENV}/bin/ansible-playbook" --version >/dev/null || die "ansible did not install into ${VENV}"
"${VENV}/bin/molecule" --version >/dev/null || die "molecule did not install into ${VENV}"
echo "$want" >"$stamp"
log "venv ready ($(${VENV}/bin/ansible --version 2>/dev/null | sed -n 1p))"
