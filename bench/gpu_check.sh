#!/usr/bin/env bash
# The GPU check of the CUDA backend (docs/gpu.md), in one call of a few minutes on a lent GPU
# machine, from the repository root, after bench/gpu_prepare.sh ran on a CPU machine:
#
#   device tool: run command "bash bench/gpu_check.sh", carry ["build-gpu/carry"], timeout_s 600
#
#  1. the card, the driver, and where cuDNN was found;
#  2. tests/test_cuda_parity: every op and the seed nets against the ref backend, the fused
#     step, graph replay, training and resume;
#  3. one epoch of the seed recipe on MNIST with --device cuda;
#  4. training throughput side by side with PyTorch on the same GPU (bench/torch_gpu.py, eager
#     channels-last + cudnn.benchmark, and CUDA graphs), variants alternating, 3 rounds, medians
#     of each run's second epoch;
#  5. the full 100-epoch seed recipe, if the time left allows.
#
# Writes into $OUT (the device tool's; else /tmp/gpu-check): summary.md (the table to quote),
# log.txt (everything), parity.xml, bench.jsonl, losses-100.csv, metrics-100.json.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
exec > >(tee -a "$out/log.txt") 2>&1
start=$SECONDS
carry=build-gpu/carry
work=/tmp/cae-gpu
summary=$out/summary.md

say() { printf '\n== %s (%ds)\n' "$*" $((SECONDS - start)); }
note() { printf '%s\n' "$*" >>"$summary"; }

[[ -f $carry/bundle.tar.xz ]] || {
  echo "gpu_check: no $carry/bundle.tar.xz: run bench/gpu_prepare.sh first and carry $carry"
  exit 1
}
rm -rf "$work" && mkdir -p "$work"
tar -C "$work" -xJf "$carry/bundle.tar.xz"
# The bundle's C++ runtime is the build machine's (GCC 12); a system one at least as new wins, so
# that the machine's own libraries (cuDNN) get what they were built for.
system_cxx=$(ldconfig -p | awk '/libstdc\+\+\.so\.6 .*x86-64/ {print $NF; exit}')
if [[ -n $system_cxx ]] && grep -qa GLIBCXX_3.4.30 "$system_cxx"; then
  rm -f "$work/lib/libstdc++.so.6" "$work/lib/libgcc_s.so.1"
fi

# ---- 1. the machine ----
say "device"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$work/gpu.csv"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())'
# cuDNN 9 and what it loads at run time: the toolkit's copy, else the Python wheels' (nvidia-*).
libdirs=$(python3 - <<'EOF'
import glob, os, site
dirs = []
for sp in site.getsitepackages() + [site.getusersitepackages()]:
    dirs += sorted(glob.glob(os.path.join(sp, "nvidia", "*", "lib")))
print(":".join(dirs))
EOF
)
export LD_LIBRARY_PATH="$work/lib:/usr/local/cuda/lib64:${libdirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cae=$work/bin/cae
ldd "$cae" | grep -E "cudnn|not found"
{
  echo "# GPU check of the CUDA backend"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo
  echo '```'
  cat "$work/gpu.csv"
  ldd "$cae" | grep cudnn
  echo '```'
} >"$summary"

# ---- 2. parity ----
say "parity test"
timeout 240 "$work/bin/test_cuda_parity" --gtest_output="xml:$out/parity.xml" 2>&1 |
  tee "$work/parity.log"
parity_rc=${PIPESTATUS[0]}
note ""
note "## Parity test: exit $parity_rc"
note ""
note '```'
# gtest's closing lines: counts, then the skipped and failed tests by name.
awk '/^\[==========\]/ {tail = ""} {tail = tail $0 "\n"} END {printf "%s", tail}' \
  "$work/parity.log" >>"$summary"
note '```'

# ---- 3. one epoch of the seed recipe ----
export CAE_DATA=$PWD/$carry
say "one epoch on MNIST, --device cuda"
graph_env=()
if ! timeout 120 "$cae" train --device cuda --epochs 1 --out "$work/epoch1"; then
  say "retrying without CUDA graphs"
  graph_env=(CAE_CUDA_GRAPH=0)
  env "${graph_env[@]}" timeout 120 "$cae" train --device cuda --epochs 1 --out "$work/epoch1"
fi
note ""
note "## One epoch of the seed recipe on MNIST (--device cuda ${graph_env[*]})"
note ""
note '```'
cat "$work/epoch1/losses.csv" >>"$summary" 2>/dev/null || note "(no losses.csv: the run failed)"
note '```'

# ---- 4. throughput next to PyTorch ----
say "throughput, alternating (3 rounds)"
cae_run() {  # cae_run NAME ENV...: 2 epochs; the second epoch's training images/s
  local name=$1
  shift
  rm -rf "$work/bench"
  if env "$@" timeout 60 "$cae" train --device cuda --epochs 2 --out "$work/bench" >/dev/null 2>&1
  then
    python3 - "$work/bench/losses.csv" "$name" <<'EOF'
import csv, json, sys
row = list(csv.DictReader(open(sys.argv[1])))[-1]
print(json.dumps({"variant": sys.argv[2], "images_per_second": float(row["images_per_second"]),
                  "train_loss": float(row["train_loss"])}))
EOF
  else
    echo "{\"variant\": \"$name\", \"error\": \"cae train failed\"}"
  fi
}
torch_run() {  # torch_run MODE TF32
  timeout 60 python3 bench/torch_gpu.py --mode "$1" --tf32 "$2" --epochs 2 --data "$CAE_DATA/mnist" ||
    echo "{\"variant\": \"torch-$1-tf32=$2\", \"error\": \"torch_gpu.py failed\"}"
}
for round in 1 2 3; do
  cae_run cae-graph "${graph_env[@]}" >>"$out/bench.jsonl"
  torch_run eager 0 >>"$out/bench.jsonl"
  cae_run cae-eager CAE_CUDA_GRAPH=0 >>"$out/bench.jsonl"
  torch_run graph 0 >>"$out/bench.jsonl"
  cae_run cae-graph-tf32 CAE_CUDA_TF32=1 "${graph_env[@]}" >>"$out/bench.jsonl"
  torch_run eager 1 >>"$out/bench.jsonl"
  tail -n 6 "$out/bench.jsonl"
done
note ""
note "## Training throughput, seed model, batch 200 (medians of 3 alternating runs, 2nd epoch)"
note ""
python3 - "$out/bench.jsonl" >>"$summary" <<'EOF'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    runs.setdefault(r["variant"], []).append(r)
base = [r["images_per_second"] for r in runs.get("torch-eager-tf32=0", []) if "images_per_second" in r]
base = statistics.median(base) if base else None
print("| variant | images/s (median) | runs | vs PyTorch eager fp32 |")
print("|---|---|---|---|")
for name, rs in runs.items():
    ips = [r["images_per_second"] for r in rs if "images_per_second" in r]
    if not ips:
        print(f"| {name} | failed | {len(rs)} | |")
        continue
    m = statistics.median(ips)
    ratio = f"{m / base:.2f}x" if base else ""
    print(f"| {name} | {m:,.0f} | {', '.join(f'{x:,.0f}' for x in ips)} | {ratio} |")
EOF

# ---- 5. the full recipe ----
left=$((560 - (SECONDS - start)))
if ((left > 90)); then
  say "the full 100-epoch seed recipe (limit ${left}s)"
  t0=$SECONDS
  env "${graph_env[@]}" timeout "$left" "$cae" train --device cuda --epochs 100 --out "$work/full" 2>&1 | tail -n 5
  wall=$((SECONDS - t0))
  cp "$work/full/losses.csv" "$out/losses-100.csv" 2>/dev/null
  cp "$work/full/metrics.json" "$out/metrics-100.json" 2>/dev/null
  note ""
  note "## Full seed recipe: 100 epochs, ${wall} s wall (process start, data, training, test each epoch, checkpoints)"
  note ""
  note '```'
  tail -n 3 "$work/full/losses.csv" >>"$summary" 2>/dev/null || note "(did not finish)"
  note '```'
else
  note ""
  note "## Full seed recipe: skipped, ${left}s left"
fi
say "done"
cat "$summary"
