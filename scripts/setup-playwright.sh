#!/usr/bin/env bash
# playwright-core for the page's browser test (tests/serve_browser.js drives Debian's chromium,
# scripts/install-deps.sh, through it) into ${BUILD_DIR:-build}/playwright. playwright-core is the
# library without browsers: installing it downloads none (it has no install script), and the test
# names /usr/bin/chromium itself. Does nothing when that version is there already; without npm,
# or when the install fails, it says so and the browser test skips, saying why.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BUILD_DIR:-build}/playwright
version=1.65.1
if [[ -f "$dir/node_modules/playwright-core/package.json" ]] &&
   grep -q "\"version\": \"$version\"" "$dir/node_modules/playwright-core/package.json"; then
  exit 0
fi
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  echo "setup-playwright: npm or node missing: the browser test will skip" >&2
  exit 0
fi
mkdir -p "$dir"
[[ -f "$dir/package.json" ]] ||
  echo '{"name": "cae-tests-playwright", "private": true, "description": "playwright-core for tests/serve_browser.js"}' >"$dir/package.json"
echo "setup-playwright: installing playwright-core@$version into $dir"
# PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: belt and braces, should a later version grow an install step.
if ! (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --ignore-scripts --save-exact \
      --no-audit --no-fund "playwright-core@$version" >/dev/null); then
  echo "setup-playwright: npm install failed: the browser test will skip" >&2
fi
