#!/usr/bin/env bash
# Build and cache the base images the test ground stands on (no registry here, so debootstrap
# and import them):
#   local/debian-systemd:bookworm, local/debian-systemd:trixie  test hosts (systemd inside)
#   local/debian-slim:trixie                                    base for the sample app images
# A tag that already exists is reused; FORCE=1 rebuilds.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

MIRROR="${PIDOCK_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
HOST_PKGS="systemd,systemd-sysv,python3,ca-certificates,iproute2,procps,python3-apt,sudo,curl,gnupg"
SLIM_PKGS="ca-certificates"

have_image() { [ "${FORCE:-0}" != 1 ] && docker image inspect "$1" >/dev/null 2>&1; }

build_one() {
  # build_one TAG SUITE INCLUDE [ARCH]
  local tag="$1" suite="$2" include="$3" arch="${4:-}"
  if have_image "$tag"; then
    log "$tag: cached"
    return 0
  fi
  local work
  work="$(mktemp -d "${PIDOCK_CACHE}/bootstrap.XXXXXX")"
  local archopt=()
  [ -n "$arch" ] && archopt=(--arch="$arch")
  log "$tag: debootstrap $suite ${arch:-native}"
  if ! debootstrap --variant=minbase "${archopt[@]}" --include="$include" "$suite" "$work/root" "$MIRROR" \
      >"$work/debootstrap.log" 2>&1; then
    tail -n 20 "$work/debootstrap.log" >&2
    rm -rf "$work"
    die "$tag: debootstrap failed"
  fi
  # Keep images small and reproducible: no apt lists or caches in the layer.
  # Empty lists must also look stale, or apt's cache_valid_time would trust them and skip update.
  rm -rf "$work/root/var/lib/apt/lists/"* "$work/root/var/cache/apt/"*.bin
  touch -d '2000-01-01' "$work/root/var/lib/apt/lists"
  tar -C "$work/root" --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' -cf "$work/root.tar" .
  docker import "$work/root.tar" "$tag" >/dev/null
  rm -rf "$work"
  log "$tag: imported"
}

need_root "build-base-images.sh"
mkdir -p "$PIDOCK_CACHE"
apt_install debootstrap

pids=()
build_one local/debian-systemd:bookworm bookworm "$HOST_PKGS" & pids+=($!)
build_one local/debian-systemd:trixie trixie "$HOST_PKGS" & pids+=($!)
build_one local/debian-slim:trixie trixie "$SLIM_PKGS" & pids+=($!)
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
[ "$rc" = 0 ] || die "one or more base images failed to build"
