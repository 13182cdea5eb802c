#!/usr/bin/env bash
# Makes a Docker engine answer on this machine, from Debian's packages: installs docker.io
# (and docker-compose) when missing, starts dockerd in the background when no engine
# answers, and waits for it. Idempotent; needs root. Log: /var/log/tcplab-dockerd.log
# Also puts the engine's default seccomp profile where the lab reads it (the io_uring backend
# runs under it plus the io_uring syscalls): Docker has no API that returns it, so it comes
# from Debian's golang-github-docker-docker-dev of docker.io's version, downloaded and
# unpacked (not installed: it would pull in Go and 200 packages).
set -euo pipefail
if [ "$(id -u)" -eq 0 ]; then
  missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "docker: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  profile=/usr/local/share/tcplab/docker-default-seccomp.json
  # docker.io's version without a binary rebuild's +bN: the source version both come from.
  version=$(dpkg-query -W -f='${Version}' docker.io 2>/dev/null || true)
  version=${version%+b[0-9]*}
  if [ ! -s "$profile" ] && [ -z "$version" ]; then
    echo "docker: the engine is not Debian's docker.io: put its default seccomp profile at $profile for the io_uring backend" >&2
  elif [ ! -s "$profile" ]; then
    tmp=$(mktemp -d)
    member=./usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json
    if (cd "$tmp" && apt-get download -qq "golang-github-docker-docker-dev=$version" >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get download -qq "golang-github-docker-docker-dev=$version" >/dev/null; }) &&
      dpkg-deb --fsys-tarfile "$tmp"/golang-github-docker-docker-dev_*.deb | tar -xO "$member" >"$tmp/default.json" &&
      [ -s "$tmp/default.json" ]; then
      install -D -m 0644 "$tmp/default.json" "$profile"
      echo "docker: the engine's default seccomp profile (docker.io $version) at $profile" >&2
    else
      echo "docker: could not get golang-github-docker-docker-dev=$version for the default seccomp profile; the io_uring backend on Docker needs it" >&2
    fi
    rm -rf "$tmp"
  fi
fi
if docker info >/dev/null 2>&1; then
  echo "docker: an engine answers ($(docker version --format '{{.Server.Version}}'))" >&2
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "docker: no engine answers and starting one needs root" >&2
  exit 1
fi
# The machine's engine by its pidfile (other engines, e.g. the test swarm's, have their own).
pid=$(cat /var/run/docker.pid 2>/dev/null || true)
if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
  echo "docker: starting dockerd" >&2
  # The engine outlives its caller: it takes none of the caller's TMPDIR (runc writes there
  # for every exec; a test run's own temporary folder is removed when the run ends) and runs
  # from /, not from the caller's folder.
  (cd / && nohup env -u TMPDIR dockerd >/var/log/tcplab-dockerd.log 2>&1 &)
fi
for _ in $(seq 60); do
  if docker info >/dev/null 2>&1; then
    echo "docker: engine up ($(docker version --format '{{.Server.Version}}'))" >&2
    exit 0
  fi
  sleep 0.5
done
echo "docker: dockerd did not answer within 30 s; see /var/log/tcplab-dockerd.log" >&2
exit 1
