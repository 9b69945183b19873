#!/usr/bin/env bash
# Trains the models that ship with cae (models/*.cae, docs/models.md) from a fixed seed on the
# photos dataset (51 photographs pinned by SHA-256 in scripts/setup-data.sh: 29 train, 7 val,
# 15 test), copies each into models/, and scores it on the test photos against the classical
# baselines, their settings tuned on the validation photos.
#
#   scripts/train-models.sh [NAME...]     NAME: inpaint, denoise (default: both)
#
# OUT (default runs/models) holds the runs and the scores (NAME/eval-*.json, the tables the
# cards quote). Each model is the epoch with the lowest validation loss (best.cae): the test
# photos are used for nothing but the scores. On 2 cores of an AMD EPYC (Zen 5) shared with other
# work, inpaint trained its 60 epochs in 35 minutes; denoise was stopped by its time limit (50
# minutes) after 35 of its 40 epochs, and its best epoch was the 35th. The limits
# (INPAINT_MINUTES, default 75; DENOISE_MINUTES, default 50) end a run earlier on a slower
# machine, so the epochs that run, and the model, can differ there (metrics.json says how many
# ran). The evaluation (ADAPT, default 300 adaptation steps, 0 to leave them out) takes about 30
# minutes more.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-runs/models}
adapt=${ADAPT:-300}
names=("$@")
((${#names[@]})) || names=(inpaint denoise)

scripts/install-deps.sh
scripts/setup-data.sh
scripts/build.sh
cae=${BUILD_DIR:-build}/cae
mkdir -p models "$out"

# Every model: patches of 64x64 from the train photos, flipped and turned, Adam with a cosine
# schedule, the validation photos choosing the epoch.
common=(--dataset photos --patch 64 --augment hflip,vflip,rot90 --loss mse --batch 32
        --patches-per-epoch 6400 --lr-schedule 'cosine min=1e-5' --seed 0 --threads 2)

train_inpaint() {
  # The unet preset, told where the damage is (--informed: the mask is a fourth input) and
  # correcting Navier-Stokes' fill of it, on one line, one 8-16 px square and one brush stroke
  # 5-30 px wide per 64x64 crop: the three kinds of damage people mark.
  "$cae" train "${common[@]}" --preset unet --informed --fill 'navier-stokes r=3' \
    --corruption 'masks count=1 min=8 max=16 value=0 + lines count=1 thickness=3 value=1 + strokes count=1 min=5 max=30 vertices=5 length=16 value=1' \
    --epochs 60 --time-limit "${INPAINT_MINUTES:-75}" --out "$out/inpaint"
}

train_denoise() {
  # The unet preset predicting the noise (examples/unet-residual.spec, DnCNN's global residual),
  # blind: each crop's sigma is drawn uniform in [0, 50/255], so one model serves every level.
  "$cae" train "${common[@]}" --spec @examples/unet-residual.spec \
    --corruption 'gaussian sigma=0 max=0.196' --epochs 40 --time-limit "${DENOISE_MINUTES:-50}" \
    --out "$out/denoise"
}

eval_inpaint() {
  local m=models/inpaint.cae
  "$cae" eval -m "$m" --dataset photos --corruption 'strokes count=6 min=5 max=30 vertices=5 length=48' \
    --json "$out/inpaint/eval-strokes.json" --csv "$out/inpaint/eval-strokes.csv"
  "$cae" eval -m "$m" --dataset photos --corruption 'crosshair thickness=3' \
    --json "$out/inpaint/eval-crosshair.json" --csv "$out/inpaint/eval-crosshair.csv"
  if ((adapt > 0)); then
    "$cae" eval -m "$m" --dataset photos --corruption 'strokes count=6 min=5 max=30 vertices=5 length=48' \
      --adapt "$adapt" --no-baselines --json "$out/inpaint/eval-strokes-adapt.json" \
      --csv "$out/inpaint/eval-strokes-adapt.csv"
    "$cae" eval -m "$m" --dataset photos --corruption 'crosshair thickness=3' \
      --adapt "$adapt" --no-baselines --json "$out/inpaint/eval-crosshair-adapt.json" \
      --csv "$out/inpaint/eval-crosshair-adapt.csv"
  fi
}

eval_denoise() {
  local sigma
  for sigma in 15 25 50; do
    "$cae" eval -m models/denoise.cae --dataset photos \
      --corruption "gaussian sigma=$(awk -v s="$sigma" 'BEGIN { printf "%.6f", s / 255 }')" \
      --json "$out/denoise/eval-sigma$sigma.json" --csv "$out/denoise/eval-sigma$sigma.csv"
  done
}

for name in "${names[@]}"; do
  case $name in
    inpaint | denoise) ;;
    *) echo "train-models: error: unknown model '$name' (inpaint, denoise)" >&2; exit 2 ;;
  esac
  "train_$name"
  cp "$out/$name/best.cae" "models/$name.cae.tmp"
  mv "models/$name.cae.tmp" "models/$name.cae"
  "eval_$name"
done
echo "train-models: wrote ${names[*]/%/.cae} to models/; scores in $out/*/eval-*.json"
