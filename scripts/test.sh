#!/usr/bin/env bash
# The tests: set everything up (packages, MNIST, build), then run the whole suite with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/setup-data.sh
build=${BUILD_DIR:-build}
# A fresh build, traced with strace, must read only what install-deps installs. On a fresh clone
# (CI) that is the main build itself, built once; where the main build exists already, a build of
# its own in build-depcheck.
status=0
scripts/check-deps.sh --main "$build" || status=$?
if ((status == 3)); then
  scripts/build.sh
  scripts/check-deps.sh
elif ((status != 0)); then
  exit "$status"
fi
scripts/setup-ort.sh  # ONNX Runtime for the export tests (npm, into build/ort)
scripts/setup-playwright.sh  # playwright-core for the page's browser test (npm, into build/playwright)
# Once per instruction-set tier the machine has (src/core/isa.h): natively, and, where the CPU
# has AVX-512, again with our kernels and oneDNN capped to AVX2, so that neither tier's code
# can rot on machines of the other kind.
tiers=(native)
grep -qw avx512f /proc/cpuinfo && grep -qw avx2 /proc/cpuinfo && tiers+=(avx2)
for tier in "${tiers[@]}"; do
  if [[ "$tier" == native ]]; then
    echo "test: the suite on this CPU's own tier"
    ctest --test-dir "$build" --output-on-failure --timeout 900
  else
    echo "test: the suite again with CAE_MAX_ISA=$tier"
    CAE_MAX_ISA=$tier ctest --test-dir "$build" --output-on-failure --timeout 900
  fi
done
echo "test: the Python module (tests/python)"
PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$build/python" /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/python
scripts/hardening.sh  # the suite again under ASan + UBSan, then a bounded fuzz run (docs/reliability.md)
