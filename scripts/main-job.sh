#!/usr/bin/env bash
# The main job: set everything up, train the seed model on real MNIST (5 epochs by default:
# EPOCHS=100 gives the tutorial's full recipe), then write the figure, the loss CSV and the
# metrics into ${OUT:-out/seed}.
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${EPOCHS:-5}
out=${OUT:-out/seed}

scripts/install-deps.sh
scripts/setup-data.sh
scripts/build.sh
build=${BUILD_DIR:-build}

"$build/cae" train --preset seed --epochs "$epochs" --out "$out"
"$build/cae" show -m "$out/model.cae" --count 10 -o "$out/figure.png"
echo "main-job: wrote $out/model.cae, $out/losses.csv, $out/metrics.json, $out/figure.png"
