#!/usr/bin/env bash
# The whole test suite on this machine, fresh or not (`sudo npm run test:all`; .ci/run calls
# it too). Needs root. In order:
#   1. scripts/test-setup.sh packages user engine: Debian's packages, the rootless suite's
#      user, a Docker engine (idempotent: what is there is left as it is);
#   2. the build (the addon and the TypeScript), as `npm install` would;
#   3. the suites that run servers on loopback and measure no CPU or rate; beside them a lane
#      of those that mostly wait or build (the kernel's timers, 10,000 held connections, a
#      build without liburing), then the request-framing fuzzer (FUZZ_SECONDS, default 30);
#      beside both, scripts/test-setup.sh images swarm servers (the base and lab images, the
#      two-node test swarm, the conformance suite's servers);
#   then every other suite, one file at a time with nothing else running: they measure rates,
#   CPU seconds, timers and exact kernel counts on this 2-core machine. Lines are prefixed with
#   the lane's name (host, waits, fuzz, lab).
#   4. the closing line: N passed, N failed, N skipped.
# Extra arguments go to every lane's vitest (e.g. -t 'overflow').
set -uo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || {
  echo "test-all: the suites create network namespaces and a Docker engine: run it as root (sudo npm run test:all)" >&2
  exit 1
}
t0=$(date +%s)
step() { echo "test-all: $* ($(($(date +%s) - t0)) s)" >&2; }

step "set-up: packages, user, engine"
bash scripts/test-setup.sh packages user engine || exit 1
# The test swarm (made below for the swarm suite) is taken down when this ends, however it
# ends, if this run made it: the machine is left as it was.
if [ "$(bash scripts/test-swarm.sh status 2>/dev/null)" != up ]; then
  trap 'rm -rf "${reports:-}"; step "taking the test swarm down"; bash scripts/test-swarm.sh down || true' EXIT
else
  trap 'rm -rf "${reports:-}"' EXIT
fi
step "build"
{ [ -d node_modules ] || npm install --no-audit --no-fund; } && npm run build --silent || exit 1

# The suites that run servers on this machine's loopback and measure no CPU or rate: beside
# the image builds and the swarm's set-up.
HOST_LANE=(test/native test/server test/model test/loadgen test/sysctl test/observe/parsers.test.ts test/observe/listen.test.ts test/observe/machine.test.ts test/docs test/lint)
HOST_LATER=(test/native/concurrency.test.ts test/loadgen/drivers.test.ts)
# Of those, the ones that mostly wait (10,000 connections held 20 s; the kernel's retransmission
# timers, up to 19 s) or build (the addon without liburing), and assert no CPU time or rate: a
# lane of their own beside the rest, the fuzzer after them.
HOST_WAITS=(test/native/soak.test.ts test/model/kernel.test.ts test/native/no-uring.test.ts test/loadgen/arrivals.test.ts)
# Then the rest, one file at a time and nothing else running: the lab's suites measure rates,
# CPU seconds, timers and exact kernel counts on a 2-core machine, and some stop the engine.
LAB_LANE=(test/lab test/runtime test/observe/trace.test.ts test/observe/sampler.test.ts test/campaign test/compose.test.ts "${HOST_LATER[@]}")
reports="$(mktemp -d)"
EXTRA=("$@")
lane() { # NAME PATHS...: one vitest run; its exit code in $reports/NAME.rc
  local name=$1
  shift
  step "lane $name: $*"
  npx vitest run --reporter=default --reporter=json --outputFile.json="$reports/$name.json" "$@" "${EXTRA[@]}" 2>&1 | sed -u "s/^/[$name] /"
  echo "${PIPESTATUS[0]}" >"$reports/$name.rc"
  step "lane $name done"
}

excludes=()
for f in "${HOST_LATER[@]}" "${HOST_WAITS[@]}"; do excludes+=(--exclude "**/${f#test/}"); done
(
  (
    lane waits "${HOST_WAITS[@]}"
    step "fuzzing the request framing for ${FUZZ_SECONDS:-30} s"
    bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}" 2>&1 | sed -u 's/^/[fuzz] /'
    echo "${PIPESTATUS[0]}" >"$reports/fuzz.rc"
  ) &
  lane host "${excludes[@]}" "${HOST_LANE[@]}"
  wait
) &
step "set-up: images, swarm, servers"
bash scripts/test-setup.sh images swarm servers
setup=$?
wait
if [ "$setup" -eq 0 ]; then lane lab "${LAB_LANE[@]}"; else echo "$setup" >"$reports/lab.rc"; fi

status=0
for l in host waits lab fuzz; do
  rc=$(cat "$reports/$l.rc" 2>/dev/null || echo missing)
  [ "$rc" = 0 ] || {
    echo "test-all: $l ended with $rc" >&2
    status=1
  }
done
node -e '
  const fs = require("fs");
  let passed = 0, failed = 0, skipped = 0;
  for (const f of process.argv.slice(1)) {
    if (!fs.existsSync(f)) { failed++; continue; }
    const r = JSON.parse(fs.readFileSync(f, "utf8"));
    passed += r.numPassedTests;
    failed += r.numFailedTests + r.testResults.filter((t) => t.status === "failed" && !t.assertionResults.length).length;
    skipped += r.numPendingTests + r.numTodoTests;
  }
  console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
' "$reports/host.json" "$reports/waits.json" "$reports/lab.json" || status=1
step "done"
exit "$status"
