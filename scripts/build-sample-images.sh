#!/usr/bin/env bash
# Build the sample stack images from images/<name>/ on top of local/debian-slim:trixie and export
# each as a tarball that scenarios load into their test hosts:
#   ${PIDOCK_CACHE}/images/<name>.tar   (docker save; uncompressed: loading is I/O-, not CPU-bound)
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

for name in postgres nginx inventory-app; do
  ctx="${PIDOCK_ROOT}/images/${name}"
  tag="${TAGS[$name]}"
  sum="$(cd "$ctx" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
  have="$(docker image inspect -f '{{ index .Config.Labels "pidock.context" }}' "$tag" 2>/dev/null || true)"
  if [ "$have" != "$sum" ] || [ "${FORCE:-0}" = 1 ]; then
    log "$tag: docker build"
    if ! docker build -q --label "pidock.context=${sum}" -t "$tag" "$ctx" >"${out}/${name}.build.log" 2>&1; then
      cat "${out}/${name}.build.log" >&2
      die "$tag: build failed"
    fi
  else
    log "$tag: cached"
  fi
  id="$(docker image inspect -f '{{.Id}}' "$tag")"
  if [ ! -s "${out}/${name}.tar" ] || [ "$(cat "${out}/${name}.id" 2>/dev/null)" != "$id" ]; then
    log "$tag: docker save -> ${out}/${name}.tar"
    docker save -o "${out}/${name}.tar.tmp" "$tag"
    mv "${out}/${name}.tar.tmp" "${out}/${name}.tar"
    echo "$id" >"${out}/${name}.id"
  fi
done
ls -la "$out"
