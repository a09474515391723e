#!/usr/bin/env bash
# Create (or reuse) the project venv .venv with the pinned controller toolchain.
# Reinstalls only when requirements-dev.txt, constraints.txt or the Python changed.
#
# The venv itself is kept in the machine's test-ground cache, ${PIDOCK_CACHE}/venvs/<hash>, keyed by
# those files and the Python version, and .venv is a symlink to it: a fresh clone of an unchanged
# toolchain (every CI run) links it in a second instead of installing for more than a minute. Where
# the cache is not writable (or PIDOCK_VENV_SHARED=0), .venv is a plain venv in the clone as before.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

VENV="${PIDOCK_ROOT}/.venv"
PY="${PYTHON:-python3}"
want="$( (cat "${PIDOCK_ROOT}/requirements-dev.txt" "${PIDOCK_ROOT}/constraints.txt"; "$PY" -VV) | sha256sum | cut -d' ' -f1)"

# valid DIR: a finished venv of this toolchain (the stamp is written last).
valid() { [ -x "$1/bin/python" ] && [ "$(cat "$1/.pidock-requirements.sha256" 2>/dev/null)" = "$want" ]; }

# install DIR: a new venv at DIR (its final path: a venv's scripts name it), stamped when complete.
install() {
  local dir="$1"
  log "creating venv in ${dir}"
  rm -rf "$dir"
  "$PY" -m venv "$dir"
  "${dir}/bin/pip" install --quiet --disable-pip-version-check --upgrade pip 2>/dev/null || true
  "${dir}/bin/pip" install --quiet --disable-pip-version-check \
    -r "${PIDOCK_ROOT}/requirements-dev.txt" -c "${PIDOCK_ROOT}/constraints.txt" 2>&1 \
    | grep -v "^WARNING: Location 'file://" || true
  # pip's output is filtered above; check the result explicitly (molecule runs ansible-config).
  PATH="${dir}/bin:${PATH}" "${dir}/bin/ansible-playbook" --version >/dev/null \
    || die "ansible did not install into ${dir}"
  PATH="${dir}/bin:${PATH}" "${dir}/bin/molecule" --version >/dev/null \
    || die "molecule did not install into ${dir}"
  echo "$want" >"${dir}/.pidock-requirements.sha256"
}

if valid "$VENV"; then
  log "venv up to date ($("${VENV}/bin/ansible" --version 2>/dev/null | sed -n 1p))"
  exit 0
fi

shared="${PIDOCK_CACHE}/venvs/${want:0:16}"
if [ "${PIDOCK_VENV_SHARED:-1}" = 1 ] && mkdir -p "${PIDOCK_CACHE}/venvs" 2>/dev/null \
    && [ -w "${PIDOCK_CACHE}/venvs" ]; then
  # One builder at a time; a venv left half-built by a killed run has no stamp and is rebuilt.
  exec 9>"${PIDOCK_CACHE}/venvs/.lock"
  flock 9
  valid "$shared" || install "$shared"
  flock -u 9
  rm -rf "$VENV"
  ln -s "$shared" "$VENV"
  # Toolchains no clone has used for 30 days go.
  find "${PIDOCK_CACHE}/venvs" -mindepth 1 -maxdepth 1 -type d -mtime +30 ! -path "$shared" \
    -exec rm -rf {} + 2>/dev/null || true
  touch "$shared"
else
  install "$VENV"
fi
log "venv ready ($("${VENV}/bin/ansible" --version 2>/dev/null | sed -n 1p))"
