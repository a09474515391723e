#!/usr/bin/env bash
# Build the collection tarball and run Galaxy's importer on it, offline
# (.config/galaxy-importer.cfg). Fails when the import fails or reports any ERROR or WARNING.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

dist="${PIDOCK_ROOT}/.cache/dist"
work="${PIDOCK_ROOT}/.cache/galaxy-importer"
rm -rf "$work"
mkdir -p "$dist" "$work/tmp"
ansible-galaxy collection build --force --output-path "$dist" "$PIDOCK_ROOT" >/dev/null
version="$(python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["version"])' "${PIDOCK_ROOT}/galaxy.yml")"
tarball="${dist}/pidock-stack-${version}.tar.gz"
[ -f "$tarball" ] || die "ansible-galaxy did not build ${tarball}"

log "galaxy-importer ${tarball##*/}"
rc=0
(
  cd "$work"
  GALAXY_IMPORTER_CONFIG="${PIDOCK_ROOT}/.config/galaxy-importer.cfg" \
    GALAXY_IMPORTER_TMP_ROOT_DIR="$work/tmp" GALAXY_IMPORTER_ANSIBLE_LOCAL_TMP="$work/tmp/ansible" \
    python -m galaxy_importer.main "$tarball"
) >"$work/output.txt" 2>&1 || rc=$?
cat "$work/output.txt"
if [ "$rc" != 0 ]; then
  die "galaxy-importer failed (exit ${rc})"
fi
if grep -E '^(ERROR|WARNING):' "$work/output.txt" >/dev/null; then
  die "galaxy-importer reported the ERROR/WARNING lines above"
fi
log "galaxy-importer: import OK, no errors or warnings"
