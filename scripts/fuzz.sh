#!/usr/bin/env bash
# Builds the request-framing fuzz target with clang (libFuzzer + ASan + UBSan) and
# runs it for SECONDS (default 60). Exits non-zero when it finds a crash; the
# crashing input is left in build-fuzz/ (crash-*), the grown corpus in build-fuzz/corpus.
# Needs: clang and libclang-rt-14-dev (Debian), cmake, ninja or make.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN="${1:-60}"
if ! [[ "$SECONDS_TO_RUN" =~ ^[0-9]+$ ]] || [ "$SECONDS_TO_RUN" -lt 1 ]; then
  echo "fuzz.sh: SECONDS must be a positive integer, got '$SECONDS_TO_RUN'" >&2
  exit 2
fi
if ! command -v clang++ >/dev/null; then
  echo "fuzz.sh: clang++ is missing: apt-get install -y clang libclang-rt-14-dev" >&2
  exit 1
fi
gen=(-G "Unix Makefiles"); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B build-fuzz "${gen[@]}" -DTCPLAB_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-fuzz >/dev/null
mkdir -p build-fuzz/corpus
echo "fuzz: running framing_fuzz for ${SECONDS_TO_RUN}s" >&2
cd build-fuzz
set +e
./framing_fuzz -max_total_time="$SECONDS_TO_RUN" -max_len=16384 -print_final_stats=1 corpus ../native/fuzz/seeds >fuzz.log 2>&1
rc=$?
set -e
grep -E '^(#[0-9]+ *DONE|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY|.*Test unit written)' fuzz.log >&2 || true
if [ "$rc" -ne 0 ]; then
  echo "fuzz: FAILED (exit $rc); full log: build-fuzz/fuzz.log" >&2
else
  echo "fuzz: ok, no crash in ${SECONDS_TO_RUN}s" >&2
fi
exit "$rc"
