#!/usr/bin/env bash
# The README's test command: installs what is missing, builds with warnings as
# errors, runs every test, runs the benchmarks (which print their figures),
# then builds and runs the whole test suite again under ASan+UBSan, and
# fuzzes the readers of outside input for a bounded time (scripts/fuzz.sh).
# Tests run two at a time (servers on port 0, private temporary directories).
set -euo pipefail
cd "$(dirname "$0")/.."
# Each stage's heading says how long the run has taken so far.
stage() { echo "== $* (at ${SECONDS}s)"; }

scripts/setup.sh

stage "source checks"
scripts/check-format.sh
scripts/check-layering.sh

# Line tables are enough for the stack traces a failing test prints; full
# debug information would make the builds a third slower. The release tree
# keeps -O2: the benchmarks measure it.
stage "build (release, -Werror)"
scripts/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
stage "tests"
ctest --test-dir build -j2 --output-on-failure --timeout 300

stage "benchmarks"
for bench in build/bench_*; do
  [[ -x "$bench" ]] || continue
  echo "-- $(basename "$bench")"
  args=()
  # The soak runs 10 minutes by hand; here one.
  [[ "$(basename "$bench")" == bench_soak ]] && args=(--duration 60)
  "$bench" "${args[@]}"
done

# One clang tree serves the sanitizer run of the tests and the fuzzers:
# TOKEND_BUILD_FUZZERS instruments everything with ASan+UBSan (and coverage
# for libFuzzer), the tests included.
stage "build (clang, ASan+UBSan, fuzz targets, -Werror)"
scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG" \
  -DTOKEND_BUILD_FUZZERS=ON -DTOKEND_BUILD_BENCH=OFF
stage "tests under ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan -j2 --output-on-failure --timeout 600
stage "fuzzing (libFuzzer, ASan+UBSan)"
scripts/fuzz.sh 35 build-asan
stage "all tests passed"
