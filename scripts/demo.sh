#!/usr/bin/env bash
# demo.sh [clean]: the one-command demo. On a fresh Debian machine, as root: the toolchain venv,
# a Docker engine, the base and sample images (cached), a Pi-like host container named `pi`, then
#   ansible-playbook playbooks/deploy.yml -i inventories/demo -l pi
# and the stack's HTTPS URL and health answer. Run it again: the deploy reports changed=0.
# `demo.sh clean` removes the host, its Docker data volume and the demo's generated secret.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

HOST=pi
HTTPS_PORT="${PIDOCK_DEMO_HTTPS_PORT:-8443}"
HTTP_PORT="${PIDOCK_DEMO_HTTP_PORT:-8080}"
URL="https://127.0.0.1:${HTTPS_PORT}"
VENV="${PIDOCK_ROOT}/.venv"
SECRETS="${HOME}/.pidock/demo"

if [ "${1:-}" = clean ]; then
  "${VENV}/bin/python" "${PIDOCK_ROOT}/scripts/testhost.py" remove "$HOST"
  rm -rf "$SECRETS"
  log "demo removed (host $HOST, its /var/lib/docker volume, $SECRETS)"
  exit 0
fi

need_root "make demo"
apt_install curl openssl
start=$(date +%s)
"${PIDOCK_ROOT}/scripts/setup-venv.sh"
"${PIDOCK_ROOT}/scripts/ensure-docker.sh"
"${PIDOCK_ROOT}/scripts/build-base-images.sh"
"${PIDOCK_ROOT}/scripts/build-sample-images.sh"
setup_s=$(( $(date +%s) - start ))

"${VENV}/bin/python" "${PIDOCK_ROOT}/scripts/testhost.py" create "$HOST" local/debian-docker:trixie \
  --publish "127.0.0.1:${HTTPS_PORT}:443" --publish "127.0.0.1:${HTTP_PORT}:80"

log "ansible-playbook playbooks/deploy.yml -i inventories/demo -l pi"
deploy_start=$(date +%s)
log_file="${PIDOCK_CACHE}/demo-deploy.log"
cd "$PIDOCK_ROOT"
export PATH="${VENV}/bin:${PATH}" ANSIBLE_CONFIG="${PIDOCK_ROOT}/ansible.cfg"
if ! ansible-playbook playbooks/deploy.yml -i inventories/demo -l pi 2>&1 | tee "$log_file"; then
  die "the deploy failed (log: $log_file)"
fi
deploy_s=$(( $(date +%s) - deploy_start ))
recap="$(grep -E '^demo-pi +:' "$log_file" | tail -n 1 | sed -E 's/^demo-pi +: +//; s/ +$//')"

# The stack as a visitor sees it: through nginx on the published HTTPS port.
health=""
for _ in $(seq 1 30); do
  health="$(curl -fsSk --max-time 5 "${URL}/health" 2>/dev/null)" && break
  sleep 1
done
[ -n "$health" ] || die "${URL}/health did not answer"
fingerprint="$(openssl s_client -connect "127.0.0.1:${HTTPS_PORT}" -servername localhost </dev/null 2>/dev/null \
  | openssl x509 -noout -fingerprint -sha256 2>/dev/null | cut -d= -f2 || true)"

cat <<REPORT

================ pidock.stack demo ================
 stack:        ${URL}/   (self-signed certificate)
 health:       ${URL}/health -> ${health}
 certificate:  SHA256 ${fingerprint:-?}
 deploy recap: ${recap}
 wall time:    set-up ${setup_s}s, deploy ${deploy_s}s, total $(( $(date +%s) - start ))s
 again:        make demo   (the deploy then reports changed=0)
 remove:       make demo-clean
===================================================
REPORT
