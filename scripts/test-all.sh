#!/usr/bin/env bash
# The whole test suite on this machine, fresh or not (`sudo npm run test:all`; .ci/run calls
# it too). Needs root. In order:
#   1. scripts/test-setup.sh packages user engine: Debian's packages, the rootless suite's
#      user, a Docker engine (idempotent: what is there is left as it is);
#   2. the build (the addon and the TypeScript), as `npm install` would;
#   3. the suites that run servers on loopback and measure no CPU or rate; beside them a lane
#      of those that mostly wait or build (the kernel's timers, 10,000 held connections, a
#      build without liburing), then the request-framing fuzzer (FUZZ_SECONDS, default 30);
#      beside both, scripts/test-setup.sh servers (the conformance suite's servers, promtool),
#      and scripts/test-setup.sh images swarm (the base and lab images, the two-node test
#      swarm), then the runtimes' suites (dock);
#   4. once the host lanes and the servers are done, the lab's netns suites judged on the
#      kernel's timers (lab1), beside whatever of the images and dock is left; then every
#      other suite, one file at a time with nothing else running: they measure rates, CPU
#      seconds and exact kernel counts on this 2-core machine (lab). Lines are prefixed with
#      the lane's name (host, waits, fuzz, dock, lab1, lab);
#   5. the closing line: N passed, N failed, N skipped.
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
# The lab's suites, one file at a time in each lane, in three lanes:
#   dock: the netns and Docker runtimes' wiring, the user's own image, docker compose, the
#     report's suite (Chromium on the records), and the sweep's suite, which stops the
#     machine's engine (no rate is measured, nothing checks what
#     the whole machine holds): from when the images and the swarm are ready, beside the host
#     lanes and lab1 (the swarm, rootless and seccomp suites measure rates or check the
#     machine's namespaces: tried there, a fixed 8,000 req/s went INCONCLUSIVE for want of CPU
#     and rootless saw lab1's namespaces);
#   lab1: netns suites judged on the kernel's timers and counts (no rate, no CPU seconds, no
#     check of everything the machine holds): lab tune, the kernel model's tunables, Debian's
#     servers, the property suite …, beside dock (property and predict were tried in dock,
#     to balance the two lanes: CI62 then saw a kernel-model point with a connect off the
#     SYN comb, a FAIL, with property beside it; moved back, not explained yet);
#   lab: the rest, once both are done, with nothing else running: they measure rates, CPU
#     seconds and exact kernel counts on a 2-core machine, use the engine, or check that a
#     command left nothing anywhere on the machine.
DOCK_LANE=(test/runtime/docker.test.ts test/runtime/netns.test.ts test/runtime/own-image.test.ts test/compose.test.ts test/lab/sweep.test.ts test/lab/report.test.ts)
LAB1_LANE=(test/lab/tune.test.ts test/lab/kernel-model.test.ts test/lab/conformance.test.ts test/lab/property.test.ts test/lab/predict.test.ts test/lab/settle.test.ts test/lab/port-procs.test.ts test/lab/labfile.test.ts test/lab/cli.test.ts test/lab/schema.test.ts test/lab/summary.test.ts test/lab/k8s.test.ts test/observe/sampler.test.ts)
LAB_LANE=(test/lab test/runtime test/observe/trace.test.ts test/campaign "${HOST_LATER[@]}")
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
hosts=$!
# Beside the host lanes: the servers (Debian packages lab1's suites use), and the images and
# the swarm, then the dock lane. lab1 starts once the host lanes and the servers are done,
# whatever the images are doing (on a fresh machine the base image takes minutes).
step "set-up: servers; images and swarm, then the dock lane"
(
  bash scripts/test-setup.sh servers
  echo "$?" >"$reports/servers.rc"
) &
servers=$!
(
  bash scripts/test-setup.sh images swarm
  rc=$?
  echo "$rc" >"$reports/setup.rc"
  if [ "$rc" -eq 0 ]; then lane dock "${DOCK_LANE[@]}"; else echo "$rc" >"$reports/dock.rc"; fi
) &
dockjob=$!
wait "$hosts"
wait "$servers"
if [ "$(cat "$reports/servers.rc")" = 0 ]; then lane lab1 "${LAB1_LANE[@]}"; else cp "$reports/servers.rc" "$reports/lab1.rc"; fi
wait "$dockjob"
setup=$(cat "$reports/setup.rc" 2>/dev/null || echo 1)
later=()
for f in "${LAB1_LANE[@]}" "${DOCK_LANE[@]}"; do later+=(--exclude "**/${f#test/}"); done
if [ "$setup" -eq 0 ]; then lane lab "${later[@]}" "${LAB_LANE[@]}"; else echo "$setup" >"$reports/lab.rc"; fi

status=0
for l in host waits lab1 dock lab fuzz; do
  rc=$(cat "$reports/$l.rc" 2>/dev/null || echo missing)
  [ "$rc" = 0 ] || {
    echo "test-all: $l ended with $rc" >&2
    status=1
  }
done
node -e '
  const fs = require("fs");
  let passed = 0, failed = 0, skipped = 0;
  const fails = [];
  for (const f of process.argv.slice(1)) {
    if (!fs.existsSync(f)) { failed++; fails.push(`${f}: no report (the lane did not run)`); continue; }
    const r = JSON.parse(fs.readFileSync(f, "utf8"));
    passed += r.numPassedTests;
    failed += r.numFailedTests + r.testResults.filter((t) => t.status === "failed" && !t.assertionResults.length).length;
    skipped += r.numPendingTests + r.numTodoTests;
    // Each failure again here, at the end, where a log cut to its tail still shows it.
    for (const t of r.testResults) {
      const file = t.name.replace(process.cwd() + "/", "");
      if (t.status === "failed" && !t.assertionResults.length) fails.push(`${file}: ${(t.message || "failed to load").split("\n")[0]}`);
      for (const a of t.assertionResults.filter((a) => a.status === "failed"))
        fails.push(`${file} > ${a.fullName}\n    ${a.failureMessages.join("\n").split("\n").slice(0, 6).join("\n    ")}`);
    }
  }
  for (const f of fails) console.log(`FAILED ${f}`);
  console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
' "$reports/host.json" "$reports/waits.json" "$reports/lab1.json" "$reports/dock.json" "$reports/lab.json" || status=1
step "done"
exit "$status"
