#!/usr/bin/env bash
# Build and cache an emulated arm64 test host: local/debian-systemd:trixie-arm64 (systemd inside,
# like the amd64 hosts). Runs under qemu-user-static through binfmt_misc: debootstrap takes about
# 7 minutes. The container is later run WITHOUT --platform (Docker 20.10 would try to pull);
# binfmt does the rest. A tag that already exists is reused; FORCE=1 rebuilds.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

TAG="local/debian-systemd:trixie-arm64"
SUITE="trixie"
MIRROR="${PIDOCK_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
HOST_PKGS="systemd,systemd-sysv,python3,ca-certificates,iproute2,procps,python3-apt,sudo,curl,gnupg"

need_root "build-arm64-image.sh"

apt_install debootstrap qemu-user-static binfmt-support

# binfmt_misc: mounted, and qemu-aarch64 registered and enabled (the F flag of the Debian
# qemu-user-static registration makes the interpreter work inside containers).
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
  log "mounting binfmt_misc"
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || die "cannot mount binfmt_misc"
fi
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null \
  || die "qemu-aarch64 is not registered with binfmt_misc (update-binfmts --enable qemu-aarch64)"

# binfmt registration does not survive a reboot: it is checked above even for a cached image.
if [ "${FORCE:-0}" != 1 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  log "$TAG: cached"
  exit 0
fi

mkdir -p "$PIDOCK_CACHE"
work="$(mktemp -d "${PIDOCK_CACHE}/bootstrap-arm64.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log "$TAG: debootstrap --arch=arm64 $SUITE (about 7 minutes under emulation)"
if ! debootstrap --variant=minbase --arch=arm64 --include="$HOST_PKGS" "$SUITE" "$work/root" "$MIRROR" \
    >"$work/debootstrap.log" 2>&1; then
  tail -n 20 "$work/debootstrap.log" >&2
  die "$TAG: debootstrap failed"
fi
[ "$(chroot "$work/root" dpkg --print-architecture)" = arm64 ] || die "$TAG: userland is not arm64"
# Same conventions as the amd64 hosts: empty apt lists that look stale, no caches.
rm -rf "$work/root/var/lib/apt/lists/"* "$work/root/var/cache/apt/"*.bin
touch -d '2000-01-01' "$work/root/var/lib/apt/lists"
tar -C "$work/root" --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' -cf "$work/root.tar" .
docker import "$work/root.tar" "$TAG" >/dev/null
log "$TAG: imported"
