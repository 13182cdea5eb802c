#!/usr/bin/env bash
# Makes a Docker engine answer on this machine, from Debian's packages: installs docker.io
# (and docker-compose) when missing, starts dockerd in the background when no engine
# answers, and waits for it. Idempotent; needs root. Log: /var/log/tcplab-dockerd.log
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
  nohup dockerd >/var/log/tcplab-dockerd.log 2>&1 &
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
