#!/usr/bin/env bash
# Prepares the GPU check (bench/gpu_check.sh, docs/gpu.md) on a machine WITHOUT a GPU: the lent
# GPU machine has the CUDA toolkit and PyTorch but none of cae's Debian libraries (oneDNN,
# OpenCV, ONNX, ...) and no network, so cae is built here and travels with what it needs.
#
# Writes build-gpu/carry/ (ignored by git through /build*/; about 40 MB):
#   bundle.tar.xz   bin/{cae,test_cuda_parity} and lib/ (their shared libraries, minus glibc's
#                   and CUDA's: cuDNN and the driver are the GPU machine's own)
#   mnist/          train- and t10k-images-idx3-ubyte.gz (cae and bench/torch_gpu.py read .gz)
#
# Then, with the device tool: run command "bash bench/gpu_check.sh", carry ["build-gpu/carry"].
#
#   bench/gpu_prepare.sh [--jobs N]      (MNIST from $CAE_DATA/mnist, else scripts/setup-data.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=2
[[ "${1:-}" == "--jobs" ]] && jobs=$2
build=build-gpu
carry=$build/carry

say() { printf 'gpu_prepare: %s\n' "$*"; }
die() {
  printf 'gpu_prepare: error: %s\n' "$*" >&2
  exit 1
}

[[ -x /usr/local/cuda/bin/nvcc ]] || die "needs the CUDA toolkit in /usr/local/cuda (nvcc, cuDNN 9)"

# MPI stays out: its runtime loads plugins from fixed system paths that do not travel.
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache
                                          -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
say "configuring $build (Release, CAE_CUDA=ON, CAE_MPI=OFF)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCAE_CUDA=ON -DCAE_MPI=OFF \
  "${launcher[@]}" >/dev/null
say "building cae and test_cuda_parity with -j$jobs"
cmake --build "$build" -j"$jobs" --target cae test_cuda_parity

rm -rf "$carry"
mkdir -p "$carry/stage/bin" "$carry/stage/lib" "$carry/mnist"
cp "$build/cae" "$build/test_cuda_parity" "$carry/stage/bin/"

# Every shared library the two programs load, except the C library's own and CUDA's.
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|librt\.so|libpthread\.so|libcuda|libcudnn|libcublas|libnvrtc)'
for bin in "$carry"/stage/bin/*; do
  ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
  [[ "$name" =~ $skip ]] && continue
  cp -L "$path" "$carry/stage/lib/$name"
done
say "packing $(ls "$carry/stage/lib" | wc -l) libraries ($(du -sh "$carry/stage" | cut -f1) unpacked)"
tar -C "$carry/stage" -cf - bin lib | xz -T"$jobs" -6 >"$carry/bundle.tar.xz"
rm -rf "$carry/stage"

mnist=${CAE_DATA:-$HOME/.local/share/cae}/mnist
if [[ ! -f "$mnist/train-images-idx3-ubyte" ]]; then
  say "MNIST not in $mnist: installing it"
  scripts/setup-data.sh
fi
for f in train-images-idx3-ubyte t10k-images-idx3-ubyte; do
  gzip -9 -c "$mnist/$f" >"$carry/mnist/$f.gz"
done

say "ready: $(du -sh "$carry" | cut -f1) in $carry"
say "device tool: run command 'bash bench/gpu_check.sh', carry [\"$carry\"], timeout_s 600"
