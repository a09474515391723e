#!/usr/bin/env bash
# Build and cache the base images the test ground stands on (no registry here, so debootstrap
# and import them):
#   local/debian-systemd:bookworm, local/debian-systemd:trixie  test hosts (systemd inside)
#   local/debian-slim:trixie                                    base for the sample app images
# The test hosts also carry images/testhost/pidock_zipimport_cache.py (Python keeps the code it
# compiles for Ansible's zipped modules; see that file): not part of the collection, test hosts only.
# A tag that already exists with this script's HOST_VERSION is reused; FORCE=1 rebuilds.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

MIRROR="${PIDOCK_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
HOST_PKGS="systemd,systemd-sysv,python3,ca-certificates,iproute2,procps,python3-apt,sudo,curl,gnupg"
SLIM_PKGS="ca-certificates"
# Bumped when what a test host image holds changes (the hook's content counts): a cached image with
# another version is rebuilt.
HOOK="${PIDOCK_ROOT}/images/testhost/pidock_zipimport_cache.py"
HOST_VERSION="2-$(sha256sum "$HOOK" | cut -c1-12)"

have_image() {
  # have_image TAG VERSION: the tag exists and carries VERSION (empty: any)
  [ "${FORCE:-0}" != 1 ] || return 1
  local have
  have="$(docker image inspect -f '{{index .Config.Labels "io.pidock.image-version"}}' "$1" 2>/dev/null)" || return 1
  [ -z "$2" ] || [ "$have" = "$2" ]
}

install_hook() {
  # install_hook ROOT: the zipimport cache in the root's Python, imported by a .pth at start
  local root="$1" py site
  py="$(cd "$root/usr/lib" && ls -d python3.[0-9]* | sort -V | tail -n 1)"
  [ -n "$py" ] || die "no python3 in $root"
  site="$root/usr/local/lib/$py/dist-packages"
  mkdir -p "$site"
  install -m 0644 "$HOOK" "$site/pidock_zipimport_cache.py"
  echo "import pidock_zipimport_cache; pidock_zipimport_cache.install()" >"$site/pidock-zipimport-cache.pth"
}

build_one() {
  # build_one TAG SUITE INCLUDE VERSION: VERSION empty for a non-host image (no hook, no label check)
  local tag="$1" suite="$2" include="$3" version="$4"
  if have_image "$tag" "$version"; then
    log "$tag: cached"
    return 0
  fi
  local work
  work="$(mktemp -d "${PIDOCK_CACHE}/bootstrap.XXXXXX")"
  log "$tag: debootstrap $suite"
  if ! debootstrap --variant=minbase --include="$include" "$suite" "$work/root" "$MIRROR" \
      >"$work/debootstrap.log" 2>&1; then
    tail -n 20 "$work/debootstrap.log" >&2
    rm -rf "$work"
    die "$tag: debootstrap failed"
  fi
  # Keep images small and reproducible: no apt lists or caches in the layer.
  # Empty lists must also look stale, or apt's cache_valid_time would trust them and skip update.
  rm -rf "$work/root/var/lib/apt/lists/"* "$work/root/var/cache/apt/"*.bin
  touch -d '2000-01-01' "$work/root/var/lib/apt/lists"
  [ -z "$version" ] || install_hook "$work/root"
  tar -C "$work/root" --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' -cf "$work/root.tar" .
  docker import --change "LABEL io.pidock.image-version=${version:-1}" "$work/root.tar" "$tag" >/dev/null
  rm -rf "$work"
  log "$tag: imported"
}

need_root "build-base-images.sh"
mkdir -p "$PIDOCK_CACHE"
apt_install debootstrap

pids=()
build_one local/debian-systemd:bookworm bookworm "$HOST_PKGS" "$HOST_VERSION" & pids+=($!)
build_one local/debian-systemd:trixie trixie "$HOST_PKGS" "$HOST_VERSION" & pids+=($!)
build_one local/debian-slim:trixie trixie "$SLIM_PKGS" "" & pids+=($!)
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
[ "$rc" = 0 ] || die "one or more base images failed to build"
