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
"$build/cae" show -m "$out/model.cae" --count 10 -o "$out/figure.png" --latent "$out/latent.png"
# Against the classical baselines on the same damaged test images (docs/evaluation.md).
"$build/cae" eval -m "$out/model.cae" --json "$out/eval.json" --csv "$out/eval.csv" | tee "$out/eval.txt"
"$build/cae" plot "$out" -o "$out/losses.png" --title "seed, $epochs epochs"
echo "main-job: wrote $out/model.cae, $out/losses.csv, $out/metrics.json, $out/figure.png," \
     "$out/latent.png, $out/eval.{txt,json,csv}, $out/losses.png"
