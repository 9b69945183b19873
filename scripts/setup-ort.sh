#!/usr/bin/env bash
# ONNX Runtime for the tests (tests/test_onnx.cpp checks every exported preset in it): the npm
# package onnxruntime-node, whose Linux x64 CPU library ships inside the package, into
# ${BUILD_DIR:-build}/ort. --ignore-scripts: the package's install script only fetches CUDA
# libraries, and fails without them. Does nothing when that version is there already; without
# npm, or when the install fails, it says so and the tests that need it skip, saying why.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BUILD_DIR:-build}/ort
version=1.30.0
if [[ -f "$dir/node_modules/onnxruntime-node/package.json" ]] &&
   grep -q "\"version\": \"$version\"" "$dir/node_modules/onnxruntime-node/package.json"; then
  exit 0
fi
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  echo "setup-ort: npm or node missing: the ONNX Runtime tests will skip" >&2
  exit 0
fi
mkdir -p "$dir"
[[ -f "$dir/package.json" ]] ||
  echo '{"name": "cae-tests-ort", "private": true, "description": "ONNX Runtime for tests/test_onnx.cpp"}' >"$dir/package.json"
echo "setup-ort: installing onnxruntime-node@$version into $dir"
if ! (cd "$dir" && npm install --ignore-scripts --save-exact --no-audit --no-fund \
      "onnxruntime-node@$version" >/dev/null); then
  # No registry here: the suite still runs, and the ONNX Runtime test skips, saying so.
  echo "setup-ort: npm install failed: the ONNX Runtime tests will skip" >&2
fi
