#!/usr/bin/env bash
# Build the sample stack images from images/<name>/ on top of local/debian-slim:trixie and export
# each as a tarball that scenarios load into their test hosts:
#   ${PIDOCK_CACHE}/images/<name>.tar   (docker save; uncompressed: loading is I/O-, not CPU-bound)
# It also builds local/debian-docker:trixie, a test host with Docker packages preinstalled (not
# exported: it is a host image, used by Molecule directly).
# An image is rebuilt only when its build context changed (a label carries the context hash).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

declare -A TAGS=(
  [postgres]=local/postgres:17-pgvector
  [nginx]=local/nginx:latest
  [inventory-app]=local/inventory-app:latest
)
out="${PIDOCK_CACHE}/images"
mkdir -p "$out"

build_cached() {
  # build_cached TAG CONTEXT: docker build unless the image carries the hash of its context and
  # of its FROM image already (a rebuilt base image rebuilds what stands on it).
  local tag="$1" ctx="$2" sum have base
  base="$(awk 'toupper($1) == "FROM" { print $2; exit }' "$ctx/Dockerfile")"
  sum="$( (cd "$ctx" && find . -type f -print0 | sort -z | xargs -0 sha256sum
           docker image inspect -f '{{.Id}}' "$base") | sha256sum | cut -c1-16)"
  have="$(docker image inspect -f '{{ index .Config.Labels "pidock.context" }}' "$tag" 2>/dev/null || true)"
  if [ "$have" = "$sum" ] && [ "${FORCE:-0}" != 1 ]; then
    log "$tag: cached"
    return 0
  fi
  log "$tag: docker build"
  if ! docker build -q --label "pidock.context=${sum}" -t "$tag" "$ctx" >"${out}/$(basename "$ctx").build.log" 2>&1; then
    cat "${out}/$(basename "$ctx").build.log" >&2
    die "$tag: build failed"
  fi
}

build_cached local/debian-docker:trixie "${PIDOCK_ROOT}/images/debian-docker-host"

for name in postgres nginx inventory-app; do
  tag="${TAGS[$name]}"
  build_cached "$tag" "${PIDOCK_ROOT}/images/${name}"
  id="$(docker image inspect -f '{{.Id}}' "$tag")"
  if [ ! -s "${out}/${name}.tar" ] || [ "$(cat "${out}/${name}.id" 2>/dev/null)" != "$id" ]; then
    log "$tag: docker save -> ${out}/${name}.tar"
    docker save -o "${out}/${name}.tar.tmp" "$tag"
    mv "${out}/${name}.tar.tmp" "${out}/${name}.tar"
    echo "$id" >"${out}/${name}.id"
  fi
done
ls -la "$out"
