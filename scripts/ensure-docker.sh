#!/usr/bin/env bash
# Make sure a Docker engine answers on this controller: install Debian's docker.io when no
# engine is present and start dockerd in the background when none is running.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

if docker info >/dev/null 2>&1; then
  log "docker engine already answering ($(docker info --format '{{.ServerVersion}}'))"
  exit 0
fi
need_root "ensure-docker.sh"
command -v dockerd >/dev/null 2>&1 || apt_install docker.io
# The client shipped on some images is newer than Debian's; keep whichever 'docker' is first on
# PATH: both talk to the 20.10+ API.
command -v docker >/dev/null 2>&1 || apt_install docker.io

if ! pgrep -x dockerd >/dev/null 2>&1; then
  log "starting dockerd"
  mkdir -p /var/log
  nohup dockerd >>/var/log/pidock-dockerd.log 2>&1 &
fi
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    log "docker engine up ($(docker info --format '{{.ServerVersion}}'))"
    exit 0
  fi
  sleep 1
done
tail -n 30 /var/log/pidock-dockerd.log >&2 || true
die "dockerd did not answer within 60 s"
