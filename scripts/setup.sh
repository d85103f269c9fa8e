#!/usr/bin/env bash
# Installs what is missing on a Debian 12 machine (run as root): the build
# toolchain and libraries from Debian packages, and the test tooling from npm
# into tools/node_modules. Safe to run again; does nothing when all is present.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config git
  libpoco-dev libsqlitecpp-dev libsqlite3-dev libtoml11-dev libcli11-dev catch2
  libsystemd-dev libssl-dev openssl sqlite3 curl ca-certificates systemd
  python3 python3-prometheus-client clang-format
  prometheus  # promtool: checks the /metrics scrape and tests the alert rules
  chromium    # headless: loads the status page in its test
  libpq-dev postgresql  # the PostgreSQL state backend; its tests run a real server
  libjemalloc-dev  # the executable's allocator
  clang libclang-rt-14-dev  # libFuzzer with ASan+UBSan (scripts/fuzz.sh)
)
missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
# Node.js and npm (for the test tooling) may come from another source than
# Debian (e.g. a nodejs package that bundles npm); only install them if absent.
if ! command -v node >/dev/null 2>&1; then missing+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # apt-get and dpkg are verbose: their output goes to a log that is shown
  # only when they fail.
  log=$(mktemp /tmp/astro-tokend-setup.XXXXXX.log)
  if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup: apt-get failed (log above, also in $log)" >&2
    exit 1
  fi
  rm -f "$log"
fi

# The test tools of tools/package.json: the OpenAPI validator (Stoplight
# Prism) and a third-party Terraform plan reader (terraform-unidiff).
for tool in prism terraform-unidiff; do
  if [[ ! -x tools/node_modules/.bin/$tool ]]; then
    echo "setup: installing the test tools of tools/package.json into tools/"
    (cd tools && npm ci --no-audit --no-fund --loglevel=error)
    break
  fi
done
