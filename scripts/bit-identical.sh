#!/usr/bin/env bash
# Whether a change leaves cae's results bit for bit as they were (issue 36: a refactor must).
#   scripts/bit-identical.sh BASE_REF [CANDIDATE_BUILD_DIR]
# BASE_REF is the commit before the change (any git revision). It is built in Release, CUDA off,
# the cae program only, from a temporary worktree into BASE_BUILD_DIR (default
# build-base-<sha12>), which is kept and reused for that commit; the worktree is removed.
# CANDIDATE_BUILD_DIR (default build: scripts/build.sh's) is brought up to date first
# (`cmake --build DIR --target cae`), so it runs the tree as it is now, uncommitted edits too.
# Given the base's own build dir as the candidate, it checks that the runs repeat themselves.
#
# Both programs run, one after the other, the same things into OUT/base and OUT/candidate:
#   - every preset `cae presets` lists (the base's list), trained one short epoch on MNIST
#     (400 images in two batches of 200, each as micro-batches, scored on 200 test images):
#     forward, backward, gradient sums and Adam; then `cae denoise` of eight noisy test images
#     as one IDX set (8-bit) and as PNGs at 16 bits, one of them a 2x4 mosaic (tiled);
#   - the seed's SEED_EPOCHS (default 5) epochs on the whole of MNIST, and the same denoise;
#   - and `cae presets` itself.
# It prints one line per item, `same` or `DIFFERENT: ...`, comparing model.cae whole (it holds
# only the spec, the run's settings and the weights); checkpoint.cae (weights, Adam's moments,
# meta) but for the seconds and images/s in its history; losses.csv but for those two columns;
# metrics.json but for its timings; the denoised files byte for byte. Logs are not compared.
# Exit status: 0 all the same, 1 some item differs, 2 a build or a run failed.
#
# Kernels are the fixed rules' (CAE_KERNELS=fixed, CAE_KERNEL_CACHE=none): measured choices
# follow timing. Both sides get the same --threads (THREADS, default 2) and --seed (SEED,
# default 0), and every CAE_ variable as set, CAE_MAX_ISA too: on an AVX-512 machine run it
# once natively and once with CAE_MAX_ISA=avx2. MNIST is read from CAE_DATA or
# ~/.local/share/cae (scripts/setup-data.sh). OUT: default out/bit-identical. JOBS: build jobs
# (default nproc). The runs take about 3 minutes on 2 idle cores (4 with CAE_MAX_ISA=avx2);
# building a base the first time takes about 8 minutes more.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
[[ "${1:-}" == -h || "${1:-}" == --help ]] && { usage; exit 0; }
[[ $# -ge 1 && $# -le 2 ]] || { usage >&2; exit 2; }
sha=$(git rev-parse --verify --quiet "$1^{commit}") || { echo "no commit '$1'" >&2; exit 2; }
short=${sha:0:12}
candidate=${2:-build}
base=${BASE_BUILD_DIR:-build-base-$short}
out=${OUT:-out/bit-identical}
threads=${THREADS:-2}
seed=${SEED:-0}
seed_epochs=${SEED_EPOCHS:-5}
jobs=${JOBS:-$(nproc)}
data=${CAE_DATA:-$HOME/.local/share/cae}
export CAE_KERNELS=fixed CAE_KERNEL_CACHE=none
start=$SECONDS

# --- the builds -------------------------------------------------------------------------------
# The base's worktree sits at a path of its commit's own, so that an interrupted build resumes
# in the same build directory (cmake ties a build directory to its source path).
worktree=${TMPDIR:-/tmp}/cae-bit-identical-$short
remove_worktree() {
  if git worktree list --porcelain | grep -qxF "worktree $worktree"; then
    git worktree remove --force "$worktree"
  fi
}
# One build of a base at a time: a second run waits for the first and reuses its build.
exec {lock}>"$worktree.lock"
flock "$lock"
trap remove_worktree EXIT
if [[ ! -f "$base/built-$sha" ]]; then
  echo "bit-identical: building base $short in $base (from worktree $worktree)"
  remove_worktree
  git worktree add --quiet --force --detach "$worktree" "$sha"
  if [[ -f "$base/CMakeCache.txt" ]] &&
    ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$worktree" "$base/CMakeCache.txt"; then
    rm -rf "$base"  # configured from another path: start afresh
  fi
  mkdir -p "$base"
  # CUDA only adds the cuda backend (src/ops/dispatch.cpp); the CPU kernels are the same without.
  { cmake -S "$worktree" -B "$base" -DCMAKE_BUILD_TYPE=Release -DCAE_CUDA=OFF \
      -DCAE_BUILD_TESTS=OFF -DCAE_PYTHON=OFF &&
      cmake --build "$base" --target cae -j"$jobs"; } >"$base/bit-identical-build.log" 2>&1 ||
    { tail -30 "$base/bit-identical-build.log"; exit 2; }
  touch "$base/built-$sha"
  remove_worktree
fi
trap - EXIT  # past here the worktree path may be another run's
exec {lock}>&-

[[ -f "$candidate/CMakeCache.txt" ]] ||
  { echo "$candidate is not a cmake build directory: run scripts/build.sh first" >&2; exit 2; }
if [[ $(realpath "$candidate") == $(realpath "$base") ]]; then
  # The base's own build as the candidate: a check of the runs themselves (its source is gone).
  candidate_head="$short (the base's own build)"
else
  echo "bit-identical: bringing the candidate $candidate up to date"
  cmake --build "$candidate" --target cae -j"$jobs" >"$candidate/bit-identical-build.log" 2>&1 ||
    { tail -30 "$candidate/bit-identical-build.log"; exit 2; }
  candidate_src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$candidate/CMakeCache.txt")
  candidate_head=$(git -C "$candidate_src" rev-parse --short=12 HEAD 2>/dev/null || echo "?")
  [[ -z $(git -C "$candidate_src" status --porcelain --untracked-files=no 2>/dev/null) ]] ||
    candidate_head+=" with uncommitted changes"
fi
base_cae=$base/cae
candidate_cae=$candidate/cae
echo "bit-identical: base $short ($base_cae) against candidate $candidate_head ($candidate_cae)"
echo "bit-identical: --threads $threads --seed $seed, $(env | grep '^CAE_' | sort | paste -sd' ')"

# --- the runs ---------------------------------------------------------------------------------
rm -rf "$out"
mkdir -p "$out/inputs"
# Eight noisy test images (the seed's damage: Gaussian sigma 0.5, clipped), made here and not
# by either program, so that both denoise the very same bytes.
/usr/bin/python3 - "$data/mnist" "$out/inputs" <<'PY'
import gzip, os, random, struct, sys, zlib
src, dst = sys.argv[1], sys.argv[2]
path = next(p for p in (f"{src}/t10k-images-idx3-ubyte", f"{src}/t10k-images-idx3-ubyte.gz")
            if os.path.exists(p))
raw = open(path, "rb").read()
if raw[:2] == b"\x1f\x8b":
    raw = gzip.decompress(raw)
n, h, w = struct.unpack_from(">III", raw, 4)
count, rng = 8, random.Random(0)
images = []
for i in range(count):
    clean = raw[16 + i * h * w:16 + (i + 1) * h * w]
    images.append(bytes(min(255, max(0, round(255 * (p / 255 + rng.gauss(0, 0.5))))) for p in clean))

def png(name, rows):  # 8-bit gray, no ancillary chunks
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", len(rows[0]), len(rows), 8, 0, 0, 0, 0)
    idat = zlib.compress(b"".join(b"\0" + r for r in rows))
    with open(os.path.join(dst, name), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))

with open(os.path.join(dst, "noisy.idx"), "wb") as f:
    f.write(struct.pack(">IIII", 0x803, count, h, w) + b"".join(images))
for i, img in enumerate(images):
    png(f"noisy-{i}.png", [img[y * w:(y + 1) * w] for y in range(h)])
png("mosaic.png", [b"".join(images[r * 4 + c][y * w:(y + 1) * w] for c in range(4))
                   for r in range(2) for y in range(h)])
PY

# denoise BIN DIR: DIR/model.cae applied to the inputs, as an IDX set and as 16-bit PNGs.
denoise() {
  "$1" denoise -m "$2/model.cae" --threads "$threads" --idx "$out/inputs/noisy.idx" \
    -o "$2/denoised.idx" 2>>"$2/denoise.log" &&
    "$1" denoise -m "$2/model.cae" --threads "$threads" --depth 16 -o "$2/denoised" \
      "$out/inputs"/*.png 2>>"$2/denoise.log"
}
# train BIN DIR ARGS...: cae train into DIR, then denoise with its model; a failure ends the script.
train() {
  local bin=$1 dir=$2
  shift 2
  mkdir -p "$dir"
  { "$bin" train --seed "$seed" --threads "$threads" --out "$dir" "$@" >"$dir/train.log" 2>&1 &&
    denoise "$bin" "$dir"; } || { tail -20 "$dir/train.log" "$dir/denoise.log" 2>/dev/null; exit 2; }
}
"$base_cae" presets >"$out/base-presets.txt"
mapfile -t presets < <(sed -n 's/^# //p' "$out/base-presets.txt")
for side in base candidate; do
  bin=${side}_cae
  bin=${!bin}
  t0=$SECONDS
  mkdir -p "$out/$side"
  "$bin" presets >"$out/$side/presets.txt"
  for p in "${presets[@]}"; do
    train "$bin" "$out/$side/$p" --preset "$p" --epochs 1 --limit 400 --test-limit 200 --batch 200
  done
  train "$bin" "$out/$side/seed-$seed_epochs-epochs" --epochs "$seed_epochs"
  echo "bit-identical: $side ran in $((SECONDS - t0)) s"
done
rm "$out/base-presets.txt"

# --- the comparison ---------------------------------------------------------------------------
status=0
/usr/bin/python3 - "$out/base" "$out/candidate" <<'PY' || status=$?
import csv, io, json, os, struct, sys
base, cand = sys.argv[1], sys.argv[2]
TIMING_COLUMNS = {"seconds", "images_per_second"}  # losses.csv, a checkpoint's history
TIMING_KEYS = {"train_images_per_second", "ms_per_step", "ms_blocked_in_communication_per_step",
               "wall_seconds_this_run", "kernel_measuring_ms"}  # metrics.json
LOGS = {"train.log", "denoise.log"}  # progress lines with timings

def read_cae(path):
    """(kind, spec, {meta}, {name: (dims, bytes)}) of a cae model file (docs/model-format.md)."""
    b = open(path, "rb").read()
    pos = 20
    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, b, pos)
        pos += struct.calcsize("<" + fmt)
        return v
    def text():
        nonlocal pos
        (n,) = take("I")
        pos += n
        return b[pos - n:pos].decode()
    kind, spec = text(), text()
    meta = dict((text(), text()) for _ in range(take("I")[0]))
    tensors = {}
    for _ in range(take("I")[0]):
        name = text()
        dims = take(f"{take('I')[0]}q")
        _dtype, length = take("IQ")
        pos += -pos % 64
        tensors[name] = (dims, b[pos:pos + length])
        pos += length
    return kind, spec, meta, tensors

def table_difference(a, b):
    """Where two CSV texts first differ, their timing columns left out; None if nowhere."""
    a, b = ([{k: v for k, v in r.items() if k not in TIMING_COLUMNS}
             for r in csv.DictReader(io.StringIO(t))] for t in (a, b))
    if len(a) != len(b):
        return f"{len(a)} rows against {len(b)}"
    for i, (ra, rb) in enumerate(zip(a, b)):
        keys = [k for k in ra | rb if ra.get(k) != rb.get(k)]
        if keys:
            return f"row {i + 1}: {', '.join(keys)} (first {ra.get(keys[0])} against {rb.get(keys[0])})"
    return None

def tensors_difference(ta, tb):
    """How many tensors and floats differ and by how much at most; None if none."""
    if [(n, d) for n, (d, _) in ta.items()] != [(n, d) for n, (d, _) in tb.items()]:
        return "tensor names or shapes"
    tensors = floats = total = 0
    worst, where = 0.0, ""
    for name, (_, xa) in ta.items():
        xb = tb[name][1]
        total += len(xa) // 4
        if xa == xb:
            continue
        tensors += 1
        for i, (p, q) in enumerate(zip(struct.iter_unpack("<f", xa), struct.iter_unpack("<f", xb))):
            if xa[4 * i:4 * i + 4] != xb[4 * i:4 * i + 4]:
                floats += 1
                if not abs(p[0] - q[0]) <= worst:  # NaN counts as the worst
                    worst, where = abs(p[0] - q[0]), name
    if not tensors:
        return None
    return (f"{tensors} of {len(ta)} tensors, {floats} of {total} floats, "
            f"largest |diff| {worst:.3g} in {where}")

def cae_difference(a, b):
    """What differs between two model files; a checkpoint's history without its timings."""
    (ka, sa, ma, ta), (kb, sb, mb, tb) = read_cae(a), read_cae(b)
    found = [tensors_difference(ta, tb)]
    if ka != kb: found.append(f"kind {ka} against {kb}")
    if sa != sb: found.append("spec")
    keys = [k for k in ma | mb if ma.get(k) != mb.get(k)]
    if "history" in keys:
        history = table_difference(ma.get("history", ""), mb.get("history", ""))
        keys.remove("history")
        if history: found.append(f"history {history}")
    if keys:
        found.append("meta " + ", ".join(f"{k} {ma.get(k)!r} against {mb.get(k)!r}" for k in keys))
    return "; ".join(f for f in found if f) or None

def flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v})
    return out

def compare(rel):
    """What differs at base/rel and cand/rel (a file or a folder of files); None if nothing."""
    a, b = os.path.join(base, rel), os.path.join(cand, rel)
    name = os.path.basename(rel)
    if not os.path.exists(b):
        return "missing in the candidate"
    if os.path.isdir(a):
        fa, fb = sorted(os.listdir(a)), sorted(os.listdir(b))
        if fa != fb:
            return f"files {fa} against {fb}"
        bad = [f for f in fa if open(os.path.join(a, f), "rb").read() != open(os.path.join(b, f), "rb").read()]
        return f"{len(bad)} of {len(fa)} files: {', '.join(bad)}" if bad else None
    if name == "losses.csv":
        return table_difference(open(a).read(), open(b).read())
    if name == "metrics.json":
        ja, jb = ({k: v for k, v in flat(json.load(open(p))).items() if k not in TIMING_KEYS}
                  for p in (a, b))
        keys = [k for k in ja | jb if ja.get(k) != jb.get(k)]
        return f"{', '.join(keys)} (first {ja.get(keys[0])} against {jb.get(keys[0])})" if keys else None
    if name == "checkpoint.cae":  # its history holds the seconds of each epoch
        return cae_difference(a, b)
    if open(a, "rb").read() == open(b, "rb").read():
        return None
    if name.endswith(".cae"):
        return cae_difference(a, b) or "the bytes, not the fields"
    return "the bytes"

items = [("presets.txt", None)]  # (item, its verdict where known without comparing)
for run in sorted(d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d))):
    files = set(os.listdir(os.path.join(base, run))) - LOGS
    items += [(f"{run}/{f}", None) for f in sorted(files)]
    extra = set(os.listdir(os.path.join(cand, run))) - LOGS - files
    if extra:
        items.append((f"{run}/", "files only in the candidate: " + ", ".join(sorted(extra))))
differences = 0
for item, difference in items:
    difference = difference or compare(item)
    differences += difference is not None
    verdict = "same" if difference is None else "DIFFERENT: " + difference
    print(f"{item:<30} {verdict if len(verdict) <= 220 else verdict[:217] + '...'}")
print(f"{len(items) - differences} of {len(items)} items the same")
sys.exit(1 if differences else 0)
PY
echo "bit-identical: $((SECONDS - start)) s in all"
exit "$status"
