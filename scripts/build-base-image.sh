#!/usr/bin/env bash
# Makes the base image the Dockerfile starts FROM (default debian:bookworm-slim) available
# without a registry: present → nothing to do; pullable → pulled; else built here with
# debootstrap (minbase) from Debian's mirror and `docker import`ed (about 40 s). Idempotent.
# Usage: scripts/build-base-image.sh [TAG]   env: SUITE (bookworm), MIRROR (http://deb.debian.org/debian)
set -euo pipefail
tag="${1:-debian:bookworm-slim}"
suite="${SUITE:-bookworm}"
mirror="${MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base image: $tag is present" >&2
  exit 0
fi
if timeout 30 docker pull "$tag" >/dev/null 2>&1; then
  echo "base image: pulled $tag" >&2
  exit 0
fi
if ! command -v debootstrap >/dev/null; then
  echo "base image: installing debootstrap" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
echo "base image: $tag cannot be pulled; debootstrap --variant=minbase $suite from $mirror" >&2
start=$(date +%s)
debootstrap --variant=minbase "$suite" "$root" "$mirror" >/dev/null
# Slim it the way the official -slim images are: no package lists, docs or man pages.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
tar -C "$root" -c . | docker import --change 'CMD ["bash"]' - "$tag" >/dev/null
echo "base image: built $tag in $(( $(date +%s) - start )) s" >&2
