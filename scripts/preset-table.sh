#!/usr/bin/env bash
# The preset table of docs/mnist.md: every preset trained with the seed's recipe (batch 200, Adam 0.001,
# Gaussian sigma 0.5, --seed 0) for EPOCHS (default 5) epochs on each dataset, one after the
# other in this one run (so times per epoch compare), then scored on the whole test set by
# `cae eval --no-baselines` (PSNR, SSIM, BCE). Prints a Markdown table; the runs stay in OUT.
# The seed is the reference of the time column, so PRESETS (the order of the runs) must name it.
#   scripts/preset-table.sh [DATASET ...]     (default: mnist fashion-mnist)
set -euo pipefail
cd "$(dirname "$0")/.."
cae=${CAE:-build/cae}
out=${OUT:-out/presets}
epochs=${EPOCHS:-5}
threads=${THREADS:-2}
presets=${PRESETS:-seed seed-tconv unet unet-wide residual}
datasets=("$@")
[ ${#datasets[@]} -gt 0 ] || datasets=(mnist fashion-mnist)
for ds in "${datasets[@]}"; do
  mkdir -p "$out/$ds"
  for p in $presets; do
    dir="$out/$ds/$p"
    if [ ! -f "$dir/model.cae" ]; then
      "$cae" train --dataset "$ds" --preset "$p" --epochs "$epochs" --seed 0 --threads "$threads" \
        --out "$dir" >"$dir.log" 2>&1 || { cat "$dir.log"; exit 1; }
    fi
    [ -f "$dir/eval.json" ] || "$cae" eval -m "$dir/model.cae" --dataset "$ds" --threads "$threads" \
      --no-baselines --json "$dir/eval.json" >/dev/null
  done
done
/usr/bin/python3 - "$out" "$epochs" "${datasets[@]}" <<'PY'
import csv, json, os, statistics, subprocess, sys
out, epochs, datasets = sys.argv[1], sys.argv[2], sys.argv[3:]
print(f"| dataset | preset | PSNR dB | SSIM | BCE | parameters | s/epoch (median) | vs seed |")
print("|---|---|---|---|---|---|---|---|")
def median_epoch(d):
    return statistics.median(float(r["seconds"]) for r in csv.DictReader(open(os.path.join(d, "losses.csv"))))

for ds in datasets:
    seed_time = median_epoch(os.path.join(out, ds, "seed"))
    for p in os.environ.get("PRESETS", "seed seed-tconv unet unet-wide residual").split():
        d = os.path.join(out, ds, p)
        ev = json.load(open(os.path.join(d, "eval.json")))
        row = next(r for r in ev["methods"] if r["name"].startswith("cae"))
        t = median_epoch(d)
        info = subprocess.run([os.environ.get("CAE", "build/cae"), "info", os.path.join(d, "model.cae")],
                              capture_output=True, text=True, check=True).stdout
        params = next(l.split(": ")[1] for l in info.splitlines() if l.startswith("parameters: "))
        print(f"| {ds} | {p} | {row['psnr_db']:.2f} | {row['ssim']:.4f} | {row['bce']:.4f} | "
              f"{params} | {t:.1f} | {t / seed_time:.2f}x |")
PY
