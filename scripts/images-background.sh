#!/usr/bin/env bash
# images-background.sh start|wait — `make test` builds the test images (`make images`: base images,
# sample images, the arm64 host) while the lint, unit and build stages run, since on a fresh machine
# both take minutes and the image build waits on the network and the disk as much as on the CPU.
#   start  launch `make images` in the background (log .cache/images.log, exit code .cache/images.rc)
#   wait   wait for it, print its log, exit with its exit code (1 when it never wrote one)
# The background job belongs to `make test`'s process group: a CI timeout stops it with the rest.
set -uo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

dir="${PIDOCK_ROOT}/.cache"
log="${dir}/images.log" rc_file="${dir}/images.rc" pid_file="${dir}/images.pid"
mkdir -p "$dir"

case "${1:-}" in
  start)
    rm -f "$rc_file" "$log"
    (
      cd "$PIDOCK_ROOT" && make --no-print-directory images >"$log" 2>&1
      echo "$?" >"$rc_file"
    ) &
    echo "$!" >"$pid_file"
    log "building the test images in the background (log: ${log})"
    ;;
  wait)
    [ -f "$pid_file" ] || die "no background image build was started (images-background.sh start)"
    pid="$(cat "$pid_file")"
    waited=0
    while kill -0 "$pid" 2>/dev/null; do
      sleep 1
      waited=$((waited + 1))
    done
    cat "$log" 2>/dev/null || true
    rm -f "$pid_file"
    rc="$(cat "$rc_file" 2>/dev/null || echo 1)"
    log "background image build: exit ${rc}, waited ${waited} s for it after the stages before"
    exit "$rc"
    ;;
  *)
    die "usage: images-background.sh start|wait"
    ;;
esac
