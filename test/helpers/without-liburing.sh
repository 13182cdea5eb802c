#!/usr/bin/env bash
# Runs a command as on a machine without Debian's liburing-dev: in a mount namespace of its own
# (run it under `unshare -m --propagation private`), overlays on /usr/include and the library
# folder whose upper layers hold whiteouts for liburing's files, so they are not there at all.
# Nothing outside that namespace changes. Usage: unshare -m --propagation private bash without-liburing.sh CMD [ARG...]
set -euo pipefail
libdir=/usr/lib/$(gcc -print-multiarch)
t=$(mktemp -d)
mount -t tmpfs tcplab-no-uring "$t"
hide() { # DIR NAME...
  local d=$1 k
  shift
  k=$(echo "$d" | tr / _)
  mkdir -p "$t/$k/upper" "$t/$k/work"
  for n in "$@"; do mknod "$t/$k/upper/$n" c 0 0; done
  mount -t overlay overlay -o "lowerdir=$d,upperdir=$t/$k/upper,workdir=$t/$k/work" "$d"
}
hide /usr/include liburing.h liburing
hide "$libdir" liburing.a liburing.so
exec "$@"
