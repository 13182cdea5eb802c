#!/usr/bin/env bash
# The whole test suite on this machine, fresh or not (`sudo npm run test:all`; .ci/run calls
# it too). Needs root. In order:
#   1. scripts/test-setup.sh: Debian's packages the suites run, a Docker engine with the base
#      and lab images, the two-node test swarm, the rootless suite's user (idempotent);
#   2. the build (the addon and the TypeScript), as `npm install` would;
#   3. the request-framing fuzzer for FUZZ_SECONDS (default 30);
#   4. every vitest suite, in two lanes at once (below).
# Prints the closing count (passed, failed, skipped) last. Extra arguments go to vitest.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "test-all: the suites create network namespaces and a Docker engine: run it as root (sudo npm run test:all)" >&2; exit 1; }
t0=$(date +%s)
step() { echo "test-all: $* ($(( $(date +%s) - t0 )) s)" >&2; }

step "machine set-up"
bash scripts/test-setup.sh
step "build"
[ -d node_modules ] || npm install --no-audit --no-fund
npm run build --silent
step "fuzzing the request framing for ${FUZZ_SECONDS:-30} s"
bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}"

# Two lanes at once: the suites that run servers on this machine's loopback (and a few
# throw-away namespaces) beside the lab's end-to-end suites (namespaces, containers, the
# swarm). Within a lane, one file at a time (vitest.config.ts). Each lane's lines are prefixed.
HOST_LANE=(test/native test/server test/model test/loadgen test/sysctl test/observe/parsers.test.ts)
LAB_LANE=(test/lab test/runtime test/observe/trace.test.ts test/observe/sampler.test.ts test/campaign test/compose.test.ts)
step "vitest, two lanes: ${HOST_LANE[*]} | ${LAB_LANE[*]}"
reports="$(mktemp -d)"
lane() { # NAME PATHS...
  local name=$1
  shift
  set +e
  npx vitest run --reporter=default --reporter=json --outputFile.json="$reports/$name.json" "$@" "${EXTRA[@]}" 2>&1 | sed -u "s/^/[$name] /"
  echo "${PIPESTATUS[0]}" >"$reports/$name.rc"
}
EXTRA=("$@")
lane host "${HOST_LANE[@]}" &
lane lab "${LAB_LANE[@]}" &
wait
status=0
for l in host lab; do [ "$(cat "$reports/$l.rc" 2>/dev/null || echo 1)" = 0 ] || status=1; done
node -e '
  const fs = require("fs");
  let passed = 0, failed = 0, skipped = 0, files = 0;
  for (const f of process.argv.slice(1)) {
    if (!fs.existsSync(f)) { failed++; console.error(`test-all: ${f} missing: a lane did not finish`); continue; }
    const r = JSON.parse(fs.readFileSync(f, "utf8"));
    passed += r.numPassedTests; failed += r.numFailedTests + (r.numFailedTestSuites || 0); skipped += r.numPendingTests + r.numTodoTests; files += r.numTotalTestSuites;
  }
  console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
' "$reports/host.json" "$reports/lab.json" || status=1
rm -rf "$reports"
step "done"
exit "$status"
