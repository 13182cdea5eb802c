#!/usr/bin/env bash
# Makes this machine ready for the whole test suite (scripts/test-all.sh): Debian's packages
# the suites run, a Docker engine with the base and lab images, the two-node test swarm and an
# unprivileged user for the rootless suite. Idempotent: what is there already is left as it
# is. Needs root (apt-get, network namespaces, dockerd).
#   bash scripts/test-setup.sh [STEP...]   the steps in order; none: all of them
# Steps: packages (Debian's packages, also what the build and lint need), user (the rootless
# suite's user), engine (a Docker engine answers), images (the base image and the lab's
# images), swarm (the two-node test swarm), servers (Apache, lighttpd and gunicorn for
# the conformance suite; promtool for lab tune's rules).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
say() { echo "test-setup: $*" >&2; }
[ "$(id -u)" -eq 0 ] || { say "needs root (apt-get, network namespaces, a Docker engine): sudo bash $0"; exit 1; }

# Build: cmake, ninja, g++, liburing-dev (the io_uring backend); clang + libclang-rt (the fuzz
# target); clang-format (lint). Tests: iproute2 (ip netns, ss, nstat), procps (sysctl),
# net-tools (netstat), apache2-utils (ab), wrk, httperf, util-linux (setpriv, unshare), strace (faults
# at a chosen syscall), nginx-light (server.kind nginx), hping3 + nftables (synflood,
# overflow), chromium (the reports rendered), bpftrace (the kernel event tracer), tshark +
# tcpdump (captures); docker.io, docker-compose and debootstrap (the engine and the base image,
# in the same apt run: scripts/install-docker.sh and build-base-image.sh find them there).
packages=(cmake ninja-build g++ liburing-dev clang libclang-rt-14-dev clang-format iproute2 procps net-tools
  apache2-utils wrk httperf util-linux hping3 nftables chromium strace nginx-light bpftrace tshark tcpdump
  docker.io docker-compose debootstrap)
packages() {
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# The conformance suite's servers, Debian's own: Apache's binary (apache2-bin: no service),
# lighttpd and gunicorn; and Prometheus, for its promtool (lab tune checks its alerting rules
# with it). lighttpd's and prometheus' packages would start services of their own (ports 80,
# 9090): a policy-rc.d that says no (only for this apt run, and only when none is there) keeps
# them so.
servers() {
  missing=()
  for p in apache2-bin lighttpd gunicorn prometheus; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ "${#missing[@]}" -gt 0 ] || return 0
  say "installing ${missing[*]} (no service started)"
  local policy=/usr/sbin/policy-rc.d made=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made=1
  fi
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  local rc=$?
  [ "$made" -eq 1 ] && rm -f "$policy"
  return "$rc"
}

# The rootless suite runs the lab as an unprivileged user of its own.
user() { id -u tcplab-ci >/dev/null 2>&1 || useradd --create-home --shell /bin/bash tcplab-ci; }

# The docker runtime's suites: an engine (Debian's docker.io, started here).
engine() { bash scripts/install-docker.sh; }

# The base image (built offline with debootstrap: no registry is reachable) and the lab's images.
images() {
  bash scripts/build-base-image.sh debian:bookworm-slim
  node dist/lab/bin.js images
}

# The swarm suite: the engine as manager, a second engine in a network namespace of its own as
# the worker. Left up (scripts/test-swarm.sh down removes it).
swarm() { bash scripts/test-swarm.sh up; }

steps=("$@")
[ "${#steps[@]}" -gt 0 ] || steps=(packages user engine images swarm servers)
for s in "${steps[@]}"; do
  case "$s" in
    packages | user | engine | images | swarm | servers) "$s" ;;
    *)
      say "unknown step '$s': one of packages, user, engine, images, swarm, servers"
      exit 2
      ;;
  esac
done
say "ready: ${steps[*]}"
