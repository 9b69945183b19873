#!/usr/bin/env bash
# Installs the Debian packages cae builds and runs with (docs/dependencies.md says why each is
# there). Does nothing when they are all present; needs root (or sudo) otherwise.
#   scripts/install-deps.sh          install what is missing
#   scripts/install-deps.sh --list   print the packages, one a line, and install nothing
# Packages every Debian system has (Essential: yes or Priority: required, e.g. coreutils, tar,
# gzip, sed, apt) are not listed; scripts/check-deps.sh counts them as present.
set -euo pipefail

packages=(build-essential cmake pkg-config libdnnl-dev zlib1g-dev libpng-dev libcli11-dev
          nlohmann-json3-dev libgtest-dev libgmock-dev)
# Debian builds oneDNN with its OpenCL GPU runtime: dnnl-config.cmake calls
# find_package(OpenCL REQUIRED), but libdnnl-dev only Recommends the package that has it.
packages+=(ocl-icd-opencl-dev)
packages+=(libopenmpi-dev openmpi-bin)  # data-parallel training (docs/distributed.md)
packages+=(libjpeg-dev libopencv-dev gnuplot-nox)  # JPEG, eval baselines, loss plots (docs/evaluation.md)
packages+=(libonnx-dev libprotobuf-dev libopencv-dev)  # ONNX export; OpenCV DNN checks it in tests
packages+=(clang libclang-rt-14-dev libomp-14-dev llvm-14)  # fuzzers, sanitizer reports (docs/reliability.md)
# cae serve (docs/serve.md): cpp-httplib for the HTTP server, and Chromium for the page's browser
# test (tests/serve_browser.js drives it through npm's playwright-core, which downloads no browser).
packages+=(libcpp-httplib-dev chromium)
packages+=(strace)  # scripts/check-deps.sh: CI traces a build to see what it reads
# The Python module (docs/python.md): pybind11 and the headers of Debian's python3 to build it,
# NumPy to run it, pytest for its tests.
packages+=(pybind11-dev python3-dev python3-numpy python3-pytest)
[[ "${CAE_WITH_TORCH:-0}" == 1 ]] && packages+=(python3-torch python3-numpy)

case "${1:-}" in
  "") ;;
  --list)
    printf '%s\n' "${packages[@]}" | awk '!seen[$0]++'
    exit 0
    ;;
  *)
    echo "usage: $0 [--list]" >&2
    exit 2
    ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all packages present"
  exit 0
fi
sudo=""
if [[ "$(id -u)" -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: error: need root to install ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
