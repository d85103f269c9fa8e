#!/usr/bin/env bash
# Configures and builds into build/ (or the directory given as $1 with extra
# CMake arguments after it). Warnings are errors.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
cmake -S . -B "$dir" -G Ninja -DTOKEND_WERROR=ON "$@" >/dev/null
cmake --build "$dir"
