#!/usr/bin/env bash
# The tests: set everything up (packages, MNIST, build), then run the whole suite with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/setup-data.sh
scripts/build.sh
scripts/check-deps.sh  # a fresh build, under strace, reads only what install-deps installs
build=${BUILD_DIR:-build}
ctest --test-dir "$build" --output-on-failure --timeout 900
scripts/hardening.sh  # the suite again under ASan + UBSan, then a bounded fuzz run (docs/reliability.md)
