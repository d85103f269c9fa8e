#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan+fuzzer) and runs each for
# SECONDS (default 30) on a corpus seeded from fuzz/seeds/, fuzz/regressions/
# and the fixtures under tests/data/. Fails on any crash, sanitizer report,
# leak, timeout (10 s per input) or out-of-memory (2 GiB); the input that
# caused it is kept in BUILD/findings/TARGET/ — copy it to
# fuzz/regressions/TARGET/ so that the test suite replays it.
#
#   scripts/fuzz.sh [SECONDS [BUILD]]
#
# BUILD defaults to build-fuzz/, configured here without tests. A BUILD
# already configured with TOKEND_BUILD_FUZZERS=ON (scripts/test.sh's
# sanitizer tree) is reused as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
build=${2:-build-fuzz}
targets=(toml_loaders api_json plan_file sim_bodies)

if ! grep -qs '^TOKEND_BUILD_FUZZERS:BOOL=ON$' "$build/CMakeCache.txt"; then
  launcher=()
  if command -v ccache >/dev/null 2>&1; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" \
    -DTOKEND_BUILD_FUZZERS=ON -DTOKEND_BUILD_TESTS=OFF -DTOKEND_BUILD_BENCH=OFF \
    -DTOKEND_WERROR=ON >/dev/null
fi
cmake --build "$build" --target "${targets[@]/#/fuzz_}"

# Fixtures that seed each target (read-only corpus directories).
seed_dirs() {
  case "$1" in
    toml_loaders) echo tests/data/specs config systemd ;;
    api_json) echo tests/data/sim ;;
    plan_file) echo tests/data/plan ;;
    sim_bodies) echo tests/data/sim ;;
  esac
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=()
for target in "${targets[@]}"; do
  corpus="$build/corpus/$target"
  findings="$build/findings/$target"
  mkdir -p "$corpus" "$findings"
  log="$build/fuzz-$target.log"
  dirs=()
  for dir in "fuzz/seeds/$target" "fuzz/regressions/$target" $(seed_dirs "$target"); do
    [[ -d "$dir" ]] && dirs+=("$dir")
  done
  echo "-- fuzz_$target for ${seconds}s"
  if "$build/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$findings/" \
    "$corpus" "${dirs[@]}" >"$log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$log" | tr '\n' ' '
    echo
  else
    tail -n 60 "$log" >&2
    echo "fuzz_$target failed; the input is in $findings/ (log: $log)" >&2
    failed+=("$target")
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${seconds}s each without a finding"
