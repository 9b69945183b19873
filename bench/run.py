#!/usr/bin/python3
"""cae against PyTorch and ONNX Runtime on the same CPU, side by side, in one invocation.

  /usr/bin/python3 bench/run.py [--reps 5] [--out bench-results.md] [--quick] [--isa avx2]

Builds cae in Release with the bench target (build-bench/), installs Debian's python3-torch when
`import torch` fails and npm's onnxruntime-node into build-bench/ort/ when it is not there, then
runs three warm servers: cae_bench (cae), bench/torch_bench.py (PyTorch) and, for inference only,
bench/ort_bench.js (ONNX Runtime on cae's own ONNX export of the seed model). Each gets the same
commands in turn (A B C A B C ...): identical batch, thread count, warm-up and number of steps.
Reports images/s (median, min, max) per side and cae's ratio to each other side round by round, a
per-layer table of cae's training step next to the bare oneDNN primitives, and the peak RSS of a
one-epoch full-MNIST training run of cae and PyTorch. `--isa avx2` caps every side that can be
capped to AVX2, to measure the AVX2 tier on an AVX-512 machine. Timings on a shared machine are
noisy: read the ratios, which come from back-to-back runs.
"""
import argparse, json, os, platform, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"  # Debian's, where python3-torch lives
ORT_PACKAGE, ORT_VERSION = "onnxruntime-node", "1.30.0"

# What --isa puts in every side's environment. CAE_MAX_ISA is cae's own switch (its kernels, and
# oneDNN through dnnl::set_max_cpu_isa); ONEDNN_MAX_CPU_ISA caps the oneDNN PyTorch runs its
# convolutions on (Debian's python3-torch links the system libdnnl, the same library as cae);
# ATEN_CPU_CAPABILITY caps PyTorch's own ATen kernels. ONNX Runtime has no such switch: MLAS picks
# its kernels from CPUID and XCR0 when the library loads, and no environment variable or session
# option of 1.30 overrides that (onnxruntime/core/mlas/lib/platform.cpp).
ISA_ENV = {
    "native": {},
    "avx2": {"CAE_MAX_ISA": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"},
}
TIER_ORDER = ("baseline", "avx2", "avx512")
REPORTED_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_bf16")
SIDE_NAMES = {"cae": "cae", "torch": "PyTorch", "ort": "ONNX Runtime"}


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, text=True, capture_output=True, **kw).stdout


def run_or_die(argv, what, **kw):
    proc = subprocess.run(argv, text=True, capture_output=True, **kw)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({' '.join(argv)}): {(proc.stderr or proc.stdout).strip()[-600:]}")
    return proc.stdout


def build(build_dir):
    launcher = " -DCMAKE_CXX_COMPILER_LAUNCHER=ccache" if shutil.which("ccache") else ""
    subprocess.run(f"cmake -S {ROOT} -B {build_dir} -DCMAKE_BUILD_TYPE=Release -DCAE_BUILD_BENCH=ON"
                   f"{launcher} > /dev/null", shell=True, check=True)
    subprocess.run(f"cmake --build {build_dir} -j2 --target cae cae_bench", shell=True, check=True,
                   stdout=subprocess.DEVNULL)


def apt_install(packages):
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["apt-get", "install", "-y"] + packages, check=True)


def ensure_torch():
    if subprocess.run([PY, "-c", "import torch"], capture_output=True).returncode == 0:
        return
    print("python3-torch is missing: installing it from Debian", file=sys.stderr)
    apt_install(["python3-torch"])


def ensure_ort(ort_dir):
    """onnxruntime-node, whose Linux x64 CPU library ships inside the npm package, in a directory
    of the bench's own. --ignore-scripts: the package's install script only fetches CUDA
    libraries, and fails without them."""
    installed = os.path.join(ort_dir, "node_modules", ORT_PACKAGE, "package.json")
    if os.path.exists(installed):
        with open(installed) as f:
            if json.load(f).get("version") == ORT_VERSION:
                return
    if not (shutil.which("node") and shutil.which("npm")):
        print("node and npm are missing: installing Debian's nodejs and npm", file=sys.stderr)
        apt_install(["nodejs", "npm"])
    os.makedirs(ort_dir, exist_ok=True)
    manifest = os.path.join(ort_dir, "package.json")
    if not os.path.exists(manifest):
        with open(manifest, "w") as f:
            json.dump({"name": "cae-bench-ort", "private": True,
                       "description": "ONNX Runtime for bench/ort_bench.js (bench/run.py installs it)"}, f,
                      indent=1)
    print(f"installing {ORT_PACKAGE}@{ORT_VERSION} into {ort_dir}", file=sys.stderr)
    run_or_die(["npm", "install", "--ignore-scripts", "--save-exact", "--no-audit", "--no-fund",
                f"{ORT_PACKAGE}@{ORT_VERSION}"], "npm install", cwd=ort_dir)


def synthetic_idx(path, n):
    """MNIST-like bytes as an IDX file, the pattern of cae_bench's synthetic_images()."""
    s, pixels = 12345, bytearray(n * 784)
    for i in range(len(pixels)):
        s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
        pixels[i] = 0 if (s >> 24) < 205 else (s >> 16) & 0xFF
    with open(path, "wb") as f:
        f.write((0x803).to_bytes(4, "big") + n.to_bytes(4, "big") + (28).to_bytes(4, "big") * 2)
        f.write(pixels)


def seed_onnx(cae_exe, ort_dir, preset="seed"):
    """cae's own ONNX export of the seed model (`cae export`; symbolic batch). `cae train` wants
    images, so one step on one batch of synthetic ones makes the model file: no dataset needed,
    and speed does not depend on the weights."""
    work = tempfile.mkdtemp(prefix="cae_onnx_")
    try:
        synthetic_idx(os.path.join(work, "train-images-idx3-ubyte"), 200)
        synthetic_idx(os.path.join(work, "t10k-images-idx3-ubyte"), 20)
        run_or_die([cae_exe, "train", "--preset", preset, "--epochs", "1", "--batch", "200", "--dataset", work,
                    "--out", os.path.join(work, "run")], "cae train (the model for ONNX Runtime)")
        onnx = os.path.join(ort_dir, preset + ".onnx")
        run_or_die([cae_exe, "export", os.path.join(work, "run", "model.cae"), "-o", onnx], "cae export")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return onnx


class Server:
    """A side of the comparison: a process answering one JSON line per command line."""

    def __init__(self, name, argv, env, modes=("train", "infer")):
        self.name, self.modes = name, modes
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=env, cwd=ROOT)

    def ask(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name}: {command}: the process ended (exit status {self.proc.wait()})")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"{self.name}: {command}: {reply['error']}")
        return reply

    def lines_until_end(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        rows = []
        while True:
            row = json.loads(self.proc.stdout.readline())
            if row.get("kind") == "end":
                return rows
            if "error" in row:
                raise RuntimeError(f"{self.name}: {command}: {row['error']}")
            rows.append(row)

    def close(self):
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.proc.wait()


SETTLE_SECONDS = 0.3


def compare(sides, mode, batch, threads, reps):
    """`reps` rounds of one command, each round asking every side that runs `mode` in turn
    (A B C A B C): drift in the machine's load hits every side alike. The ratios are cae's rate
    over each other side's, round by round."""
    if mode == "train":
        warmup, steps = 3, max(5, 1000 // batch)
    else:
        warmup, steps = 5, 200 if batch == 1 else max(10, 1000 // batch)
    command = f"{mode} {batch} {threads} {warmup} {steps}"
    takers = {key: side for key, side in sides.items() if mode in side.modes}
    rates = {key: [] for key in takers}
    for _ in range(reps):
        for key, side in takers.items():
            # The side before may leave its thread pool spinning on the cores for a while (GOMP's,
            # ONNX Runtime's and PyTorch's pools all spin before they sleep); on 2 cores that
            # halves the next side's batch-1 speed at 2 threads. Each side starts on idle cores.
            time.sleep(SETTLE_SECONDS)
            rates[key].append(side.ask(command)["images_per_second"])
    row = {"mode": mode, "batch": batch, "threads": threads, "steps": steps, **rates}
    row["ratios"] = [x / y for x, y in zip(rates["cae"], rates["torch"])]
    if "ort" in rates:
        row["ort_ratios"] = [x / y for x, y in zip(rates["cae"], rates["ort"])]
    return row


def stats(v):
    return statistics.median(v), min(v), max(v)


def peak_rss(argv, env):
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t0 = time.time()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.time() - t0
    out = proc.stdout.read().decode()
    err = proc.stderr.read().decode()
    if status != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {err.strip()[-400:]}")
    return usage.ru_maxrss / 1024.0, wall, out


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.partition(":")[2].split())
    return set()


def tier_of(flags):
    """The tier cae's own dispatch detects (src/core/isa.cpp): avx512 = F, VL, DQ, BW and FMA;
    avx2 = AVX2 and FMA; else baseline."""
    if {"avx512f", "avx512vl", "avx512dq", "avx512bw", "fma"} <= flags:
        return "avx512"
    if {"avx2", "fma"} <= flags:
        return "avx2"
    return "baseline"


def machine():
    info = {}
    lscpu = sh("lscpu")
    for line in lscpu.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "L2 cache", "L3 cache"):
            info[key.strip()] = value.strip()
        if key.strip() == "Flags":
            flags = value.split()
            info["flags"] = " ".join(f for f in flags if f.startswith(("avx512", "amx", "avx2", "fma"))
                                     or f in ("avx_vnni",))
    # The model by CPUID as well: a cloud's brand string ("AMD EPYC") may not tell two
    # generations apart; family, model and stepping do (cae's own cpu_model() says the same).
    with open("/proc/cpuinfo") as f:
        fields = dict(line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    info["Model name"] = (f"{fields.get('model name', info.get('Model name'))} (family {fields.get('cpu family')}, "
                          f"model {fields.get('model')}, stepping {fields.get('stepping')})")
    flags = cpu_flags()
    info["tier"] = tier_of(flags)
    info["cpu_flags"] = {f: f in flags for f in REPORTED_FLAGS}
    info["torch"] = sh(f"{PY} -c 'import torch; print(torch.__version__)'").strip()
    info["oneDNN"] = sh("dpkg-query -W -f='${Version}' libdnnl-dev").strip()
    info["compiler"] = sh("c++ --version").splitlines()[0]
    info["kernel"] = platform.release()
    try:
        info["commit"] = sh(f"git -C {ROOT} rev-parse --short HEAD").strip()
    except subprocess.CalledProcessError:
        info["commit"] = "?"
    return info


def onednn_in_use(argv, env):
    """What oneDNN says it runs on for one small inference of a side: its ISA line and the
    convolution kernels it executed. A process of its own, since ONEDNN_VERBOSE writes to stdout."""
    try:
        out = subprocess.run(argv, input="infer 2 1 1 1\nquit\n", env=dict(env, ONEDNN_VERBOSE="1"), cwd=ROOT,
                             capture_output=True, text=True, timeout=300).stdout
    except subprocess.TimeoutExpired:
        return {"isa": None, "convolutions": []}
    isa, convs = None, []
    for line in out.splitlines():
        f = line.split(",")
        if f[0] not in ("onednn_verbose", "dnnl_verbose") or len(f) < 4:
            continue
        if f[1:3] == ["info", "cpu"] and f[3].startswith("isa:"):
            isa = f[3][4:]
        if f[1:4] == ["exec", "cpu", "convolution"] and len(f) > 4 and f[4] not in convs:
            convs.append(f[4])
    return {"isa": isa, "convolutions": convs}


def side_isa(server):
    """A side's own answer to `isa`, or None where it has no such command."""
    try:
        return server.ask("isa")
    except RuntimeError:
        return None


def isa_lines(a, info, probes, own):
    """The markdown lines that say which instruction set each side ran on, and what --isa did."""
    flags = info["cpu_flags"]
    present = " ".join(f for f in REPORTED_FLAGS if flags[f]) or "none"
    missing = " ".join(f for f in REPORTED_FLAGS if not flags[f])
    lines = [f"Machine: {info.get('Model name')}, {info.get('CPU(s)')} CPUs; tier **{info['tier']}**; "
             f"flags: {present}" + (f" (no {missing})" if missing else "") + "  ",
             f"Model: the `{a.preset}` preset on every side (PyTorch: bench/torch_seed.py), images "
             f"{a.shape} (HxWxC)  "]
    if a.isa == "native":
        lines.append("ISA: native (`--isa native`): every side runs the best kernels it has for this CPU  ")
    else:
        lines.append(f"ISA: `--isa {a.isa}`: " + " ".join(f"`{k}={v}`" for k, v in ISA_ENV[a.isa].items())
                     + " in every side's environment  ")

    def onednn(p):
        if not p or not p["isa"]:
            return "oneDNN: no verbose output"
        capped = a.isa != "native" and any("avx512" in c or "amx" in c for c in p["convolutions"])
        return (f"oneDNN {p['isa']} (convolutions: {', '.join(p['convolutions']) or '—'})"
                + (" — **the cap did not hold**" if capped else ""))

    cae = own.get("cae")
    parts = [f"cae: {cae['isa'] if cae else 'cae_bench does not report its kernels (no `isa` command)'}, "
             f"{onednn(probes.get('cae'))}"]
    if "torch" in probes:
        torch = own.get("torch")
        parts.append(f"PyTorch: ATen {torch['aten'] if torch else '?'}, {onednn(probes['torch'])}")
    if "ort" in own:
        parts.append("ONNX Runtime: " + ort_isa_note(a.isa, info["tier"]))
    lines.append("In effect: " + "; ".join(parts) + "  ")
    return lines


def ort_uncapped(isa, tier):
    return isa != "native" and TIER_ORDER.index(tier) > TIER_ORDER.index(isa)


def ort_isa_note(isa, tier):
    if not ort_uncapped(isa, tier):
        return f"native ({tier}; MLAS chooses its kernels from CPUID)"
    return (f"**not capped: runs {tier} natively**. MLAS chooses its kernels from CPUID and XCR0 and no "
            f"environment variable or session option overrides it, so its column is ONNX Runtime at "
            f"{tier}, not {isa}; an honest ONNX Runtime comparison on {isa} needs a real {isa} machine")


def fmt_side(v):
    m, lo, hi = stats(v)
    return f"{m:,.0f} ({lo:,.0f}–{hi:,.0f})"


def fmt_ratio(v):
    m, lo, hi = stats(v)
    return f"**{m:.2f}×** ({lo:.2f}–{hi:.2f})"


def layer_table(rows, net_ops):
    steps = [r for r in rows if r["kind"] == "step"]
    bare = {r["op"]: r for r in rows if r["kind"] == "bare"}
    by_op, kernels = {}, {}
    for s in steps:
        by_op[s["op"]] = by_op.get(s["op"], 0.0) + s["ms"]
        # "jit:avx2", "jit_wino_4x3:avx512_core", "cae:thin_conv:avx512", "cae:winograd_4x3:avx2"
        impl = s.get("impl", "")
        ours = impl.split(":")[0] == "cae"
        if "wino" in impl:
            kind = "cae Winograd" if ours else "oneDNN Winograd"
        else:
            kind = "cae direct" if ours else "oneDNN direct"
        if ":" in impl:
            kind += f" ({impl.rsplit(':', 1)[1]})"
        if s["name"].endswith(("forward", "weights", "data", "(direct)", "(winograd)")):
            kernels.setdefault(s["op"], kind)
    total = sum(s["ms"] for s in steps)
    # GFLOP/s count the direct convolution's 2·MACs per pass for every algorithm (for Winograd
    # an effective rate).
    lines = ["| op | layer | cae kernel | cae ms (fwd+bwd) | cae GFLOP/s | bare oneDNN ms | bare GFLOP/s | cae/bare time |",
             "|---|---|---|---|---|---|---|---|"]
    cae_conv = bare_conv = 0.0
    for op in sorted(by_op):
        ms = by_op[op]
        if op in bare:
            b = bare[op]
            bms = b["fwd_ms"] + b["bwd_data_ms"] + b["bwd_weights_ms"]
            # op 0 needs no data gradient in training; its bare time leaves it out too
            if op == 0:
                bms -= b["bwd_data_ms"]
            flops = b["flops"] * (2 if op == 0 else 3)
            cae_conv += ms
            bare_conv += bms
            lines.append(f"| {op} | conv {b['shape']} | {kernels.get(op, '')} | {ms:.2f} | "
                         f"{flops / ms / 1e6:.0f} | {bms:.2f} | {flops / bms / 1e6:.0f} | {ms / bms:.2f} |")
        else:
            name = "edge reorders" if op == -1 else net_ops.get(op, "?")
            lines.append(f"| {op if op >= 0 else '—'} | {name} | | {ms:.2f} | | | | |")
    lines.append(f"| | **whole step** | | **{total:.2f}** | | **{bare_conv:.2f}** (convs) | | "
                 f"bare convs / step: **{bare_conv / total:.0%}** |")
    return lines, total, bare_conv


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--preset", choices=["seed", "unet"], default="seed",
                    help="the model every side runs (PyTorch's twin in bench/torch_seed.py)")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--out", default=None, help="also write the markdown report here")
    ap.add_argument("--quick", action="store_true", help="batch 200 only, no RSS runs")
    ap.add_argument("--infer-batches", default="1,16,64,200,512", help="comma-separated")
    ap.add_argument("--train", default="200x2,200x1,16x2,64x2,512x2",
                    help="training configurations BATCHxTHREADS, comma-separated")
    ap.add_argument("--threads", default="2,1", help="thread counts for inference, comma-separated")
    ap.add_argument("--isa", choices=sorted(ISA_ENV), default="native",
                    help="avx2: cap every side to AVX2 (CAE_MAX_ISA, ONEDNN_MAX_CPU_ISA, ATEN_CPU_CAPABILITY); "
                         "ONNX Runtime cannot be capped and runs natively")
    ap.add_argument("--no-ort", action="store_true", help="leave ONNX Runtime out (no node, npm or export)")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--versus-env", default=None, metavar="VAR=VALUE",
                    help="before/after: side B is cae_bench with this environment setting instead of "
                         "PyTorch (e.g. CAE_THIN_CONV=dnnl), and no ONNX Runtime")
    ap.add_argument("--shape", default="28x28x1", metavar="HxWxC",
                    help="the images every side trains and infers on (default MNIST's 28x28x1; 64x64x3 "
                         "with --preset unet is the photo job's patches); another shape leaves out ONNX "
                         "Runtime (its export is the 28x28 seed's) and the MNIST RSS runs")
    ap.add_argument("--data", default=os.path.join(os.environ.get("CAE_DATA", os.path.expanduser("~/.local/share/cae"))))
    a = ap.parse_args()
    flags = cpu_flags()
    if TIER_ORDER.index(tier_of(flags)) < TIER_ORDER.index(a.isa if a.isa != "native" else "baseline"):
        sys.exit(f"run.py: --isa {a.isa}: this CPU's tier is {tier_of(flags)}")
    shape = [int(v) for v in a.shape.split("x")]
    if len(shape) != 3 or min(shape) < 1:
        sys.exit(f"run.py: --shape {a.shape}: expected HxWxC, e.g. 64x64x3")
    mnist_shape = shape == [28, 28, 1]
    shape_args = [] if mnist_shape else [str(v) for v in shape]
    with_ort = not (a.no_ort or a.versus_env or not mnist_shape)
    if not mnist_shape:
        a.skip_rss = True
    if not a.skip_build:
        build(a.build_dir)
    ensure_torch()
    cae_exe, bench_exe = os.path.join(a.build_dir, "cae"), os.path.join(a.build_dir, "cae_bench")
    ort_dir = os.path.join(a.build_dir, "ort")
    onnx = None
    if with_ort:
        ensure_ort(ort_dir)
        onnx = seed_onnx(cae_exe, ort_dir, a.preset)
    env = dict(os.environ, **ISA_ENV[a.isa])
    torch_argv = [PY, os.path.join(ROOT, "bench", "torch_bench.py"), a.preset] + shape_args
    info = machine()

    # Which kernels each side runs, before any timing: oneDNN's own report in a process of its
    # own, then each server's answer to `isa`.
    probes = {"cae": onednn_in_use([bench_exe, a.preset] + shape_args, env)}
    if not a.versus_env:
        probes["torch"] = onednn_in_use(torch_argv, env)
    load_before = os.getloadavg()
    sides = {"cae": Server("cae", [bench_exe, a.preset] + shape_args, env)}
    if a.versus_env:
        var, _, value = a.versus_env.partition("=")
        sides["torch"] = Server(f"cae {a.versus_env}", [bench_exe, a.preset] + shape_args, dict(env, **{var: value}))
    else:
        sides["torch"] = Server("PyTorch", torch_argv, env)
    if with_ort:
        sides["ort"] = Server("ONNX Runtime", ["node", os.path.join(ROOT, "bench", "ort_bench.js"), onnx, ort_dir],
                              env, modes=("infer",))
    own = {key: side_isa(side) for key, side in sides.items() if key != "torch" or not a.versus_env}
    info["isa"] = {"requested": a.isa, "env": ISA_ENV[a.isa], "onednn": probes, "sides": own}
    if with_ort:
        info["onnxruntime"] = (own.get("ort") or {}).get("version", ORT_VERSION)
    header = isa_lines(a, info, probes, own)
    print("\n".join(header) + "\n", flush=True)

    results = []
    train_cfg = [tuple(map(int, c.split("x"))) for c in a.train.split(",") if c]
    infer_batches = [int(b) for b in a.infer_batches.split(",") if b]
    if a.quick:
        train_cfg, infer_batches = [(200, 2), (200, 1)], [200]

    def progress(r):
        line = f"{r['mode']} b{r['batch']} t{r['threads']}: cae/{sides['torch'].name} {stats(r['ratios'])[0]:.2f}"
        if "ort_ratios" in r:
            line += f", cae/ONNX Runtime {stats(r['ort_ratios'])[0]:.2f}"
        print(line, file=sys.stderr)

    for batch, threads in train_cfg:
        results.append(compare(sides, "train", batch, threads, a.reps))
        progress(results[-1])
    for threads in [int(t) for t in a.threads.split(",") if t]:
        for batch in infer_batches:
            results.append(compare(sides, "infer", batch, threads, a.reps))
            progress(results[-1])
    layer_batch = 200 if mnist_shape else train_cfg[0][0] if train_cfg else infer_batches[0]
    layer_rows = [] if a.versus_env else sides["cae"].lines_until_end(f"layers {layer_batch} 2 10")
    for side in sides.values():
        side.close()
    if a.versus_env:
        a.skip_rss = True

    rss = None
    mnist = os.path.join(a.data, "mnist", "train-images-idx3-ubyte")
    if not (a.quick or a.skip_rss) and os.path.exists(mnist):
        out_dir = tempfile.mkdtemp(prefix="cae_rss_")
        cae_rss, cae_wall, _ = peak_rss([cae_exe, "train", "--preset", a.preset, "--epochs", "1", "--threads", "2", "--out", out_dir,
                                         "--data", a.data], env)
        with open(os.path.join(out_dir, "losses.csv")) as f:
            row = f.read().splitlines()[1].split(",")
        cae_epoch, cae_train = float(row[6]), 60000 / float(row[7])
        torch_rss, torch_wall, out = peak_rss([PY, os.path.join(ROOT, "bench", "torch_seed.py"), "--preset", a.preset, "--epochs", "1",
                                               "--threads", "2", "--data", os.path.join(a.data, "mnist")], env)
        torch_epoch = json.loads(out.splitlines()[-1])["train_seconds"]
        shutil.rmtree(out_dir, ignore_errors=True)
        rss = {"cae_train_s": cae_train, "cae_mb": cae_rss, "torch_mb": torch_rss, "cae_epoch_s": cae_epoch, "torch_epoch_s": torch_epoch,
               "cae_wall_s": cae_wall, "torch_wall_s": torch_wall}
    load_after = os.getloadavg()

    b_name = f"cae {a.versus_env}" if a.versus_env else "PyTorch"
    ort_head = "ONNX Runtime img/s" + (f" (native {info['tier']}, not capped)" if ort_uncapped(a.isa, info["tier"]) else "")
    versions = f"PyTorch {info['torch']} (channels-last), oneDNN {info['oneDNN']}"
    if with_ort:
        versions += f", ONNX Runtime {info['onnxruntime']} (npm {ORT_PACKAGE}, CPU execution provider)"
    md = ["## Side by side (bench/run.py)", "",
          f"Command: `/usr/bin/python3 bench/run.py {' '.join(sys.argv[1:])}`  "] + header + [
          f"Versions: {versions}, {info['compiler']}, Linux {info['kernel']}, cae {info['commit']}  ",
          f"Load average (1 min) before/after: {load_before[0]:.1f} / {load_after[0]:.1f}", "",
          f"images/s: median (min–max) of the repetitions; ratio = cae / {b_name} of each back-to-back round"
          + (", cae / ONNX Runtime likewise (inference only: ONNX Runtime runs cae's own ONNX export of the "
             "model, `cae export`, which ends in a sigmoid where the other sides stop at the logits)" if with_ort else "")
          + ".", ""]
    head = ["what", "batch", "threads", "steps", "cae img/s", f"{b_name} img/s", "ratio" if a.versus_env else "cae/PyTorch"]
    if with_ort:
        head += [ort_head, "cae/ORT"]
    md += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [r["mode"], str(r["batch"]), str(r["threads"]), str(r["steps"]), fmt_side(r["cae"]),
                 fmt_side(r["torch"]), fmt_ratio(r["ratios"])]
        if with_ort:
            cells += [fmt_side(r["ort"]), fmt_ratio(r["ort_ratios"])] if "ort" in r else ["—", "—"]
        md.append("| " + " | ".join(cells) + " |")
    lat = [r for r in results if r["mode"] == "infer" and r["batch"] == 1]
    if lat:
        def latency(r):
            text = (f"{r['threads']} thread(s): cae {1000 / stats(r['cae'])[0]:.3f}, {b_name} "
                    f"{1000 / stats(r['torch'])[0]:.3f} ({stats(r['ratios'])[0]:.1f}× lower)")
            if "ort" in r:
                text += (f", ONNX Runtime {1000 / stats(r['ort'])[0]:.3f} "
                         f"({stats(r['ort_ratios'])[0]:.1f}× lower)")
            return text
        md += ["", "Batch-1 latency (ms, median): " + "; ".join(latency(r) for r in lat)]
    if not a.versus_env:
        # Each step names its op's kind (cae_bench's layers), whatever the preset.
        net_ops = {r["op"]: r["layer"] for r in layer_rows if r.get("kind") == "step" and "layer" in r}
        lines, total, bare_conv = layer_table(layer_rows, net_ops)
        md += ["", f"### Per layer: one training step, batch {layer_batch}, 2 threads", "",
               "cae: every step of the executor timed on its own (forward, fused activation backward, backward "
               "weights and data, reorders). Bare: the same conv as lone oneDNN primitives in layouts of their own "
               "choosing and oneDNN's best algorithm for it (its Winograd where `onednn_winograd_fits`), forward with "
               "bias+ReLU fused, backward data, backward weights. GFLOP/s count the direct convolution's "
               "2·MACs per pass (for Winograd, an effective rate).", ""] + lines
    if rss:
        md += ["", "### Full MNIST, one epoch (60,000 images), 2 threads", "",
               "| | cae | PyTorch | ratio |", "|---|---|---|---|",
               f"| peak RSS | {rss['cae_mb']:.0f} MB | {rss['torch_mb']:.0f} MB | {rss['torch_mb'] / rss['cae_mb']:.1f}× less |",
               f"| training steps of the epoch | {rss['cae_train_s']:.1f} s | {rss['torch_epoch_s']:.1f} s | "
               f"{rss['torch_epoch_s'] / rss['cae_train_s']:.2f}× |",
               f"| whole epoch (steps, test pass, checkpoint) × 100 | {rss['cae_epoch_s'] * 100 / 60:.1f} min | | |",
               f"| process wall, start to exit | {rss['cae_wall_s']:.1f} s | {rss['torch_wall_s']:.1f} s | |"]
    text = "\n".join(md) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
        if not a.versus_env:
            with open(os.path.splitext(a.out)[0] + ".json", "w") as f:
                json.dump({"machine": info, "results": results, "layers": layer_rows, "rss": rss}, f, indent=1)


if __name__ == "__main__":
    main()
