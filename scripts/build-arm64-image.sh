#!/usr/bin/env bash
# Build and cache an emulated arm64 test host: local/debian-systemd:trixie-arm64, the same
# system as the amd64 host local/debian-systemd:trixie (systemd, python3, python3-apt ...) with
# every architecture-dependent package replaced by its arm64 build.
#
# Bootstrapping arm64 under qemu-user runs each maintainer script emulated (debootstrap took
# 7 minutes on a quiet machine, 15 on a busy one). Instead, the configured amd64 root is
# crossgraded natively (scripts/crossgrade_rootfs.py): arm64 .debs of the same packages are
# downloaded, their files written in place of the amd64 ones, the dpkg database rewritten.
# Only the final checks run under emulation, one process each. The container is later run
# WITHOUT --platform (Docker 20.10 would try to pull); binfmt_misc runs its arm64 binaries.
# A tag that already exists is reused; FORCE=1 rebuilds.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

TAG="local/debian-systemd:trixie-arm64"
BASE="local/debian-systemd:trixie"
SUITE="trixie"
ARCH="arm64"
MIRROR="${PIDOCK_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
# Bumped when what the image holds changes: a cached image with another version is rebuilt. The
# amd64 host image's own version is part of it (its files, e.g. the zipimport cache, come along).
IMAGE_RECIPE=6
VENV_PY="${PIDOCK_ROOT}/.venv/bin/python"
PREWARM="${PIDOCK_ROOT}/images/testhost/prewarm_zipimport_cache.py"

# role_packages VAR...: the docker role's package lists VAR... for Debian 13, one name per line.
role_packages() {
  "$VENV_PY" - "${PIDOCK_ROOT}/roles/docker/vars" "$@" <<'PY'
import sys, yaml
merged = {}
for name in ("Debian.yml", "Debian-13.yml", "main.yml"):
    merged.update(yaml.safe_load(open(f"{sys.argv[1]}/{name}")) or {})
for var in sys.argv[2:]:
    print("\n".join(merged[var]))
PY
}

need_root "build-arm64-image.sh"
[ -x "$VENV_PY" ] || die "no venv at ${PIDOCK_ROOT}/.venv (scripts/setup-venv.sh first)"

apt_install qemu-user-static binfmt-support debian-archive-keyring dpkg-dev

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
IMAGE_VERSION="${IMAGE_RECIPE}-$(sha256sum "$PREWARM" | cut -c1-8)-$(docker image inspect -f '{{index .Config.Labels "io.pidock.image-version"}}' "$BASE" 2>/dev/null || true)"
if [ "${FORCE:-0}" != 1 ] && [ "$(docker image inspect -f '{{index .Config.Labels "io.pidock.image-version"}}' "$TAG" 2>/dev/null)" = "$IMAGE_VERSION" ]; then
  log "$TAG: cached"
  exit 0
fi
docker image inspect "$BASE" >/dev/null 2>&1 || die "$BASE is missing: run scripts/build-base-images.sh first"

mkdir -p "$PIDOCK_CACHE"
work="$(mktemp -d "${PIDOCK_CACHE}/crossgrade-arm64.XXXXXX")"
cid=""
cleanup() {
  [ -n "$cid" ] && docker rm -f "$cid" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

# Installed natively, before the crossgrade: the docker role's Python libraries (python3-requests and
# its dependencies; their maintainer scripts byte-compile every module, over a minute under
# emulation) and the dependencies of its Docker packages (containerd, runc, tini, iptables and their
# libraries: unpacking and configuring them under emulation took about as long as the packages
# themselves). The role finds them installed; installing them is tested on the amd64 hosts, and the
# arm64 host still resolves, unpacks and configures every package the role names (docker.io,
# docker-cli, docker-compose) under emulation.
mapfile -t py_pkgs < <(role_packages _docker_python_packages)
mapfile -t docker_pkgs < <(role_packages _docker_distro_packages _docker_distro_compose_packages)
[ "${#py_pkgs[@]}" -gt 0 ] && [ "${#docker_pkgs[@]}" -gt 0 ] || die "cannot read the docker role's package sets"
log "$TAG: exporting the configured $BASE root with ${py_pkgs[*]} and the dependencies of ${docker_pkgs[*]} installed natively"
mkdir -p "$work/root"
# shellcheck disable=SC2016  # expanded by the container's bash
native='set -euo pipefail
n=$1; shift; py=("${@:1:$n}"); shift "$n"; own=("$@")
apt-get -qq update
mapfile -t deps < <(apt-get -s install --no-install-recommends "${own[@]}" | awk "/^Inst /{ print \$2 }" \
  | grep -vxF -f <(printf "%s\n" "${own[@]}") || true)
DEBIAN_FRONTEND=noninteractive apt-get -qq install -y --no-install-recommends "${py[@]}" "${deps[@]}" >/dev/null
echo "natively installed: ${py[*]} ${deps[*]}"
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin'
cid="$(docker create "$BASE" bash -c "$native" - "${#py_pkgs[@]}" "${py_pkgs[@]}" "${docker_pkgs[@]}")"
docker start -a "$cid" >&2 || die "installing ${py_pkgs[*]} and the Docker packages' dependencies in $BASE failed"
docker export "$cid" | tar -C "$work/root" -xf -
docker rm -f "$cid" >/dev/null; cid=""

# The architecture-dependent packages the amd64 host has installed.
mapfile -t pkgs < <(dpkg-query --admindir="$work/root/var/lib/dpkg" -W \
  -f '${db:Status-Abbrev} ${Architecture} ${Package}\n' | awk '$1 == "ii" && $2 != "all" { print $3 }')
[ "${#pkgs[@]}" -gt 0 ] || die "$BASE has no architecture-dependent packages?"

# A private apt for the target architecture: it downloads, never installs.
apt_dir="$work/apt"
mkdir -p "$apt_dir"/{lists/partial,archives/partial,etc/preferences.d} "$work/debs"
echo "deb [arch=${ARCH} signed-by=${KEYRING}] ${MIRROR} ${SUITE} main" >"$apt_dir/etc/sources.list"
: >"$apt_dir/status"
apt_opts=(
  -o "APT::Architecture=${ARCH}" -o "APT::Architectures=${ARCH}"
  -o "Dir::Etc::SourceList=${apt_dir}/etc/sources.list" -o "Dir::Etc::SourceParts=-"
  -o "Dir::Etc::PreferencesParts=${apt_dir}/etc/preferences.d"
  -o "Dir::State::Lists=${apt_dir}/lists" -o "Dir::State::status=${apt_dir}/status"
  -o "Dir::Cache=${apt_dir}" -o "Dir::Cache::Archives=${apt_dir}/archives"
  -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root"
)
log "$TAG: downloading ${#pkgs[@]} ${ARCH} packages"
apt-get "${apt_opts[@]}" -qq update || die "apt-get update for ${ARCH} failed"
(cd "$work/debs" && apt-get "${apt_opts[@]}" -qq download "${pkgs[@]}") || die "download of ${ARCH} packages failed"

log "$TAG: crossgrading natively"
python3 "${PIDOCK_ROOT}/scripts/crossgrade_rootfs.py" "$work/root" "$work/debs" "$ARCH" >&2

# Checks under emulation, one process each: the userland is arm64 and dpkg is consistent.
chroot "$work/root" /sbin/ldconfig
[ "$(chroot "$work/root" dpkg --print-architecture)" = "$ARCH" ] || die "$TAG: userland is not ${ARCH}"
audit="$(chroot "$work/root" dpkg --audit 2>&1)" || true
[ -z "$audit" ] || { echo "$audit" >&2; die "$TAG: dpkg --audit found problems"; }
chroot "$work/root" python3 -c 'import apt_pkg, json, platform; assert platform.machine() == "aarch64"' \
  || die "$TAG: python3 does not run as aarch64"

# The zipimport cache (images/testhost/pidock_zipimport_cache.py) filled natively: the bytecode of
# Ansible's module_utils and modules, community.docker's and this collection's, compiled by the
# amd64 host's Python (the same Debian python3 version) under the emulated interpreter's cache keys.
# Under qemu the first module runs spent most of their time compiling these sources.
target_py="$(chroot "$work/root" python3 -c 'import sys; print(sys.version)')"
site="$(realpath "$("$VENV_PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')")"
mkdir -p "$work/pidock-tree/ansible_collections/pidock/stack/plugins" "$work/root/var/cache/pidock-zipimport"
cp -r "${PIDOCK_ROOT}/plugins/module_utils" "${PIDOCK_ROOT}/plugins/modules" \
  "$work/pidock-tree/ansible_collections/pidock/stack/plugins/"
prefixes=()
for prefix in ansible/module_utils ansible/modules ansible_collections/community/docker/plugins/module_utils \
  ansible_collections/community/docker/plugins/modules ansible_collections/pidock/stack/plugins/module_utils \
  ansible_collections/pidock/stack/plugins/modules; do
  prefixes+=(--prefix "$prefix")
done
log "$TAG: prewarming the zipimport cache natively"
docker run --rm --network none -v "$PREWARM:/prewarm.py:ro" -v "$site:/site:ro" -v "$work/pidock-tree:/pidock:ro" \
  -v "$work/root/var/cache/pidock-zipimport:/cache" "$BASE" \
  python3 /prewarm.py --python-version "$target_py" --cache /cache --tree /site --tree /pidock "${prefixes[@]}" >&2 \
  || die "$TAG: prewarming the zipimport cache failed"

# Same conventions as the amd64 hosts: empty apt lists that look stale, no caches.
# A local apt repository holding what the docker role installs from Debian on this host (its
# distro package set, with every dependency the arm64 userland lacks), resolved and downloaded
# natively; the host's apt reads only that repository. Under emulation apt spent minutes parsing
# the whole Debian index (~65,000 packages) on every `apt-get update` and cache open; what the role
# does (refresh the lists, resolve, unpack and configure the arm64 packages) is unchanged.
mapfile -t role_pkgs < <(role_packages _docker_distro_packages _docker_distro_compose_packages _docker_python_packages)
[ "${#role_pkgs[@]}" -gt 0 ] || die "cannot read the docker role's distro package set"
repo="$work/root/opt/pidock-apt"
mkdir -p "$repo" "$work/repo-debs/partial"
log "$TAG: local apt repository for ${role_pkgs[*]}"
apt-get "${apt_opts[@]}" -o "Dir::State::status=${work}/root/var/lib/dpkg/status" \
  -o "Dir::Cache::Archives=${work}/repo-debs" -qq install --download-only --no-install-recommends \
  "${role_pkgs[@]}" >/dev/null || die "resolving ${role_pkgs[*]} for ${ARCH} failed"
cp "$work"/repo-debs/*.deb "$repo/"
(
  cd "$repo"
  dpkg-scanpackages --multiversion . /dev/null >Packages 2>/dev/null
  {
    echo "Origin: pidock-testground"
    echo "Label: arm64 packages of the docker role"
    echo "Date: $(date -Ru)"
    echo "Architectures: ${ARCH} all"
    echo "SHA256:"
    printf ' %s %s Packages\n' "$(sha256sum Packages | cut -d' ' -f1)" "$(stat -c %s Packages)"
  } >Release
)
[ -s "$repo/Packages" ] || die "$TAG: empty local repository"
{
  echo "# pidock test ground: the arm64 test host reads only a local repository (see"
  echo "# scripts/build-arm64-image.sh); the Debian mirror line is kept for reference."
  echo "# deb ${MIRROR} ${SUITE} main"
  echo "deb [trusted=yes] file:/opt/pidock-apt ./"
} >"$work/root/etc/apt/sources.list"

rm -rf "$work/root/var/lib/apt/lists/"* "$work/root/var/cache/apt/"*.bin
touch -d '2000-01-01' "$work/root/var/lib/apt/lists"
tar -C "$work/root" --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' -cf "$work/root.tar" .
docker import --change 'CMD ["/lib/systemd/systemd"]' --change "LABEL io.pidock.image-version=${IMAGE_VERSION}" \
  "$work/root.tar" "$TAG" >/dev/null
log "$TAG: imported"
