#!/usr/bin/env bash
# The README's test command: installs what is missing, builds with warnings as
# errors, runs every test, runs the benchmarks (which print their figures),
# then builds and runs the whole test suite again under ASan+UBSan, and
# fuzzes the readers of outside input for a bounded time (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "== source checks"
scripts/check-format.sh
scripts/check-layering.sh

echo "== build (release, -Werror)"
scripts/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo
echo "== tests"
ctest --test-dir build --output-on-failure --timeout 300

echo "== benchmarks"
for bench in build/bench_*; do
  [[ -x "$bench" ]] || continue
  echo "-- $(basename "$bench")"
  args=()
  # The soak runs 10 minutes by hand; here one.
  [[ "$(basename "$bench")" == bench_soak ]] && args=(--duration 60)
  "$bench" "${args[@]}"
done

echo "== build (ASan+UBSan, -Werror)"
scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DTOKEND_SANITIZE=ON -DTOKEND_BUILD_BENCH=OFF
echo "== tests under ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure --timeout 600
echo "== fuzzing (libFuzzer, ASan+UBSan)"
scripts/fuzz.sh 35
echo "== all tests passed"
