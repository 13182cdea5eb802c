#!/usr/bin/env bash
# A two-node Docker Swarm on this one machine, for the swarm tests: the machine's engine is the
# manager; a second engine runs in a network namespace of its own (tcplab-swarm2), joined to
# the manager over a veth pair in 198.18.250.0/24, and joins as a worker. Idempotent.
#   bash scripts/test-swarm.sh up      make it (or find it made) and wait until both nodes are ready
#   bash scripts/test-swarm.sh down    the worker leaves, its engine stops, the namespace and the
#                                      veth go, the manager leaves the swarm it made
#   bash scripts/test-swarm.sh status  one line: up or down
# The second engine: its own data-root, exec-root, pidfile and socket (/run/tcplab-swarm2.sock),
# no bridge and no iptables (--bridge none --iptables=false --ip6tables=false: it shares the
# machine's netfilter), and a cgroup2 mount of its own (`ip netns exec` remounts /sys, so the
# engine runs in a mount namespace of its own with cgroup2 mounted again), and a UTS namespace:
# its node's hostname is tcplab-swarm2. This kernel has no
# IPVS: services use DNS round-robin endpoints (EndpointSpec.Mode dnsrr). Needs root and a
# running engine (scripts/install-docker.sh). Log: /var/log/tcplab-swarm2.log
set -euo pipefail
NS=tcplab-swarm2
SOCK=/run/tcplab-swarm2.sock
DATA=/var/lib/tcplab-swarm2
EXEC=/run/tcplab-swarm2
PIDFILE=/run/tcplab-swarm2.pid
MANAGER_IP=198.18.250.1
WORKER_IP=198.18.250.2
LABEL=tcplab.testswarm=1
w() { docker -H "unix://$SOCK" "$@"; }
say() { echo "test-swarm: $*" >&2; }

[ "$(id -u)" -eq 0 ] || { say "needs root (it makes a network namespace and an engine)"; exit 1; }
docker info >/dev/null 2>&1 || { say "no Docker engine answers: bash scripts/install-docker.sh"; exit 1; }

state() { docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null; }
worker_state() { w info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo down; }

up() {
  if ! ip netns list | grep -qx "$NS\( (id: [0-9]*)\)\?"; then
    ip netns add "$NS"
    ip -n "$NS" link set lo up
  fi
  if ! ip link show tswarm0 >/dev/null 2>&1; then
    ip link add tswarm0 type veth peer name eth0 netns "$NS"
    ip addr add "$MANAGER_IP/24" dev tswarm0
    ip link set tswarm0 up
    ip -n "$NS" addr add "$WORKER_IP/24" dev eth0
    ip -n "$NS" link set eth0 up
    ip -n "$NS" route add default via "$MANAGER_IP"
  fi
  if ! w info >/dev/null 2>&1; then
    # A pidfile whose engine is gone (killed with the machine's processes) would stop it starting.
    pid=$(cat "$PIDFILE" 2>/dev/null || true)
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then rm -f "$PIDFILE"; fi
    mkdir -p "$DATA" "$EXEC"
    say "starting the second engine in $NS"
    # A constant script: the paths are its arguments.
    nohup ip netns exec "$NS" unshare --mount --uts --propagation private sh -c \
      'hostname tcplab-swarm2 && mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec dockerd --data-root "$1" --exec-root "$2" --pidfile "$3" -H "unix://$4" --bridge none --iptables=false --ip6tables=false' \
      sh "$DATA" "$EXEC" "$PIDFILE" "$SOCK" >/var/log/tcplab-swarm2.log 2>&1 &
    for _ in $(seq 60); do w info >/dev/null 2>&1 && break; sleep 0.5; done
    w info >/dev/null 2>&1 || { say "the second engine did not answer within 30 s; see /var/log/tcplab-swarm2.log"; exit 1; }
  fi
  if [ "$(state)" != active ]; then
    say "the machine's engine makes a swarm (manager at $MANAGER_IP)"
    docker swarm init --advertise-addr "$MANAGER_IP" --listen-addr "$MANAGER_IP:2377" >/dev/null
    docker node update --label-add "$LABEL" "$(docker info --format '{{.Swarm.NodeID}}')" >/dev/null
  fi
  ws=$(worker_state)
  if [ "$ws" != active ]; then
    # Left from a swarm that is gone (its data-root outlives the engine): pending or error.
    if [ "$ws" != inactive ]; then
      say "the second engine leaves a swarm it cannot reach ($ws)"
      w swarm leave --force >/dev/null
    fi
    say "the second engine joins as a worker ($WORKER_IP)"
    w swarm join --token "$(docker swarm join-token -q worker)" --advertise-addr "$WORKER_IP" --listen-addr "$WORKER_IP:2377" "$MANAGER_IP:2377" >/dev/null
  fi
  # How the lab reaches the worker's engine (lab/runtime/swarm.ts): a node label.
  docker node update --label-add "tcplab.engine=unix://$SOCK" "$(w info --format '{{.Swarm.NodeID}}')" >/dev/null
  for _ in $(seq 60); do
    ready=$(docker node ls --format '{{.Status}}' | grep -c Ready || true)
    [ "$ready" -ge 2 ] && { say "up: 2 nodes ready (manager $MANAGER_IP, worker $WORKER_IP)"; return 0; }
    sleep 0.5
  done
  say "the worker did not become ready within 30 s"; exit 1
}

down() {
  w swarm leave --force >/dev/null 2>&1 || true
  pid=$(cat "$PIDFILE" 2>/dev/null || true)
  if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
  if [ "$(state)" = active ]; then
    # Only a swarm this script made (its manager carries the label) is left.
    if docker node inspect self --format '{{index .Spec.Labels "tcplab.testswarm"}}' 2>/dev/null | grep -qx 1; then
      docker swarm leave --force >/dev/null
    else
      say "the machine's engine is in a swarm this script did not make: left as it is"
    fi
  fi
  ip link del tswarm0 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  say "down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status)
    if [ "$(state)" = active ] && [ "$(worker_state)" = active ]; then echo up; else echo down; fi
    ;;
  *) say "usage: bash scripts/test-swarm.sh up|down|status"; exit 2 ;;
esac
