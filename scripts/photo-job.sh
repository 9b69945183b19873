#!/usr/bin/env bash
# The photo job: set everything up, train an informed inpainting model on patches of the photos
# dataset for a bounded time (MINUTES, default 15, on top of the set-up), then score it against
# cv::inpaint on the held-out test photos with the tutorial's damage (a crosshair of thickness 3)
# and with random square masks, and draw the repairs of the test photos, into ${OUT:-out/photos}.
# The main job stays MNIST.
#
# The model sees random lines of thickness 3 and one 8-16 px square in 64x64 crops during
# training (a crosshair through a crop's centre would teach it one position; lines cover every
# one), the mask as its fourth input channel, and Navier-Stokes' repair of the damage, which it
# learns to correct (docs/photos.md, "Blind or informed inpainting", "Correcting a classical fill").
# EPOCHS (default 28) of 6,400 crops with a cosine schedule take about 12 minutes on 2 cores with
# AVX-512; MINUTES stops it earlier on a slower machine (the schedule then ends above its floor).
# FILL and AUGMENT replace the fill and the augmentation (docs/photos.md, "Repairing photos", measures
# navier-stokes r=1 and AUGMENT=hflip,vflip,rot90,scale=0.5-2 against the defaults).
# Each evaluation and repair also adapts the model to each test photo before repairing it
# (--adapt: ADAPT steps, default 1000, at --adapt-lr ADAPT_LR, default 1e-3, both chosen on the
# validation photos; about 100 s a photo); ADAPT=0 leaves it out. ADAPT=3000 scores higher on
# the validation and the test photos at three times the cost (docs/photos.md, "Longer adaptation").
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${MINUTES:-15}
epochs=${EPOCHS:-28}
out=${OUT:-out/photos}

scripts/install-deps.sh
scripts/setup-data.sh
scripts/build.sh
build=${BUILD_DIR:-build}
photos=${CAE_DATA:-$HOME/.local/share/cae}/photos
damage='crosshair thickness=3'
adapt=(--adapt "${ADAPT:-1000}" --adapt-lr "${ADAPT_LR:-1e-3}")

"$build/cae" train --dataset photos --patch 64 --augment "${AUGMENT:-hflip,vflip,rot90}" \
  --informed --fill "${FILL:-navier-stokes r=3}" --noise 0 --lines 2 --line-thickness 3 --masks 1 \
  --mask-min 8 --mask-max 16 --loss mse --preset unet --batch 32 --patches-per-epoch 6400 \
  --epochs "$epochs" --lr-schedule 'cosine min=1e-5' --time-limit "$minutes" \
  --out "$out"
# best.cae: the epoch with the lowest validation loss (the photos of val/).
"$build/cae" eval -m "$out/best.cae" --dataset photos --corruption "$damage" "${adapt[@]}" \
  --json "$out/eval.json" --csv "$out/eval.csv" | tee "$out/eval.txt"
"$build/cae" eval -m "$out/best.cae" --dataset photos --corruption 'masks count=40 min=8 max=16' \
  "${adapt[@]}" --json "$out/eval-masks.json" --csv "$out/eval-masks.csv" |
  tee "$out/eval-masks.txt"
for photo in "$photos"/test/*; do
  name=$(basename "${photo%.*}")
  "$build/cae" compare "$photo" -m "$out/best.cae" --corruption "$damage" "${adapt[@]}" \
    -o "$out/repair-$name.png"
done
"$build/cae" plot "$out" -o "$out/losses.png" --title "informed unet on photo patches"
echo "photo-job: wrote $out/model.cae, $out/best.cae, $out/losses.csv, $out/metrics.json," \
     "$out/eval{,-masks}.{txt,json,csv}, $out/repair-*.png, $out/losses.png"
