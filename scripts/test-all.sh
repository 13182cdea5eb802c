#!/usr/bin/env bash
# The whole test suite on this machine, fresh or not (`sudo npm run test:all`; .ci/run calls
# it too). Needs root. In order:
#   1. scripts/test-setup.sh packages user engine: Debian's packages, the rootless suite's
#      user, a Docker engine (idempotent: what is there is left as it is);
#   2. the build (the addon and the TypeScript), as `npm install` would;
#   3. three lanes at once, each one file at a time, lines prefixed with the lane's name:
#        host   servers on this machine's loopback (and throw-away namespaces), then the
#               request-framing fuzzer for FUZZ_SECONDS (default 30);
#        netns  the lab on the netns and rootless runtimes;
#        docker the lab on Docker, once the images and the test swarm are made
#               (scripts/test-setup.sh images swarm, meanwhile);
#      then, alone, the suites that measure CPU-bound work against exact counts (QUIET);
#      a file that covers several runtimes runs in both lab lanes, each defining only its own
#      runtimes' cases (test/helpers/lanes.ts);
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
step "build"
{ [ -d node_modules ] || npm install --no-audit --no-fund; } && npm run build --silent || exit 1

HOST_LANE=(test/native test/server test/model test/loadgen test/sysctl test/observe/parsers.test.ts test/campaign)
NETNS_LANE=(test/lab test/runtime/netns.test.ts test/runtime/rootless.test.ts test/observe/sampler.test.ts)
DOCKER_LANE=(test/lab/scenarios.test.ts test/lab/up.test.ts test/lab/sweep.test.ts test/lab/loadgens.test.ts
  test/runtime/docker.test.ts test/runtime/seccomp.test.ts test/runtime/own-image.test.ts test/compose.test.ts)
# After the lanes, alone on the machine: what measures CPU-bound work against exact counts (the
# tracer's events against the kernel's counters, the swarm example's 8,000 req/s, the fork
# design's 20 processes of a ~100 MB Node server).
QUIET=(test/observe/trace.test.ts test/runtime/swarm.test.ts test/lab/models.test.ts)
reports="$(mktemp -d)"
trap 'rm -rf "$reports"' EXIT
EXTRA=("$@")
lane() { # NAME RUNTIMES PATHS...: one vitest run; its exit code in $reports/NAME.rc
  local name=$1 runtimes=$2
  shift 2
  step "lane $name: $*"
  TCPLAB_TEST_RUNTIMES=$runtimes npx vitest run --reporter=default --reporter=json --outputFile.json="$reports/$name.json" "$@" "${EXTRA[@]}" 2>&1 |
    sed -u "s/^/[$name] /"
  echo "${PIPESTATUS[0]}" >"$reports/$name.rc"
  step "lane $name done"
}

(
  lane host "" "${HOST_LANE[@]}"
  step "fuzzing the request framing for ${FUZZ_SECONDS:-30} s"
  bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}" 2>&1 | sed -u 's/^/[fuzz] /'
  echo "${PIPESTATUS[0]}" >"$reports/fuzz.rc"
) &
lane netns netns,rootless --exclude "**/lab/models.test.ts" "${NETNS_LANE[@]}" &
(
  step "set-up: images, swarm"
  if bash scripts/test-setup.sh images swarm; then
    lane docker docker,swarm "${DOCKER_LANE[@]}"
  else
    echo 1 >"$reports/docker.rc"
  fi
) &
wait
lane quiet netns,rootless,docker,swarm "${QUIET[@]}"

status=0
for l in host netns docker quiet fuzz; do
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
' "$reports/host.json" "$reports/netns.json" "$reports/docker.json" "$reports/quiet.json" || status=1
step "done"
exit "$status"
