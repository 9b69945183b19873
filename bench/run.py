#!/usr/bin/python3
"""cae against PyTorch on the same CPU, side by side, in one invocation.

  /usr/bin/python3 bench/run.py [--reps 5] [--out bench-results.md] [--quick]

Builds cae in Release with the bench target (build-bench/), installs Debian's python3-torch when
`import torch` fails, then runs cae_bench and bench/torch_bench.py as two warm servers and sends
them the same commands alternately (A B A B ...): identical batch, thread count, warm-up and
number of steps. Reports images/s (median, min, max) per side and the cae/PyTorch ratio of each
pair, a per-layer table of cae's training step next to the bare oneDNN primitives, and the peak
RSS of a one-epoch full-MNIST training run of each side. Timings on a shared machine are noisy:
read the ratios, which come from back-to-back runs.
"""
import argparse, json, os, platform, resource, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"  # Debian's, where python3-torch lives


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, text=True, capture_output=True, **kw).stdout


def build(build_dir):
    launcher = " -DCMAKE_CXX_COMPILER_LAUNCHER=ccache" if shutil.which("ccache") else ""
    subprocess.run(f"cmake -S {ROOT} -B {build_dir} -DCMAKE_BUILD_TYPE=Release -DCAE_BUILD_BENCH=ON"
                   f"{launcher} > /dev/null", shell=True, check=True)
    subprocess.run(f"cmake --build {build_dir} -j2 --target cae cae_bench", shell=True, check=True,
                   stdout=subprocess.DEVNULL)


def ensure_torch():
    if subprocess.run([PY, "-c", "import torch"], capture_output=True).returncode == 0:
        return
    print("python3-torch is missing: installing it from Debian", file=sys.stderr)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["apt-get", "install", "-y", "python3-torch"], check=True)


class Server:
    """A side of the comparison: a process answering one JSON line per command line."""

    def __init__(self, name, argv, env):
        self.name = name
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=env, cwd=ROOT)

    def ask(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
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


def compare(cae, torch, mode, batch, threads, reps):
    if mode == "train":
        warmup, steps = 3, max(5, 1000 // batch)
    else:
        warmup, steps = 5, 200 if batch == 1 else max(10, 1000 // batch)
    command = f"{mode} {batch} {threads} {warmup} {steps}"
    a, b = [], []
    for _ in range(reps):  # A B A B: drift in the machine's load hits both sides alike
        a.append(cae.ask(command)["images_per_second"])
        b.append(torch.ask(command)["images_per_second"])
    ratios = [x / y for x, y in zip(a, b)]
    return {"mode": mode, "batch": batch, "threads": threads, "steps": steps, "cae": a,
            "torch": b, "ratios": ratios}


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
    info["torch"] = sh(f"{PY} -c 'import torch; print(torch.__version__)'").strip()
    info["oneDNN"] = sh("dpkg-query -W -f='${Version}' libdnnl-dev").strip()
    info["compiler"] = sh("c++ --version").splitlines()[0]
    info["kernel"] = platform.release()
    try:
        info["commit"] = sh(f"git -C {ROOT} rev-parse --short HEAD").strip()
    except subprocess.CalledProcessError:
        info["commit"] = "?"
    return info


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
        impl = s.get("impl", "")
        kind = "Winograd" if "wino" in impl else "cae direct" if impl == "cae" else "oneDNN direct"
        if s["name"].endswith(("forward", "weights", "data", "(direct)")):
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
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--out", default=None, help="also write the markdown report here")
    ap.add_argument("--quick", action="store_true", help="batch 200 only, no RSS runs")
    ap.add_argument("--infer-batches", default="1,16,64,200,512", help="comma-separated")
    ap.add_argument("--train", default="200x2,200x1,16x2,64x2,512x2",
                    help="training configurations BATCHxTHREADS, comma-separated")
    ap.add_argument("--threads", default="2,1", help="thread counts for inference, comma-separated")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--versus-env", default=None, metavar="VAR=VALUE",
                    help="before/after: side B is cae_bench with this environment setting instead of "
                         "PyTorch (e.g. CAE_THIN_CONV=dnnl); batch 200 training and batch 1/200 inference")
    ap.add_argument("--data", default=os.path.join(os.environ.get("CAE_DATA", os.path.expanduser("~/.local/share/cae"))))
    a = ap.parse_args()
    if not a.skip_build:
        build(a.build_dir)
    ensure_torch()
    env = dict(os.environ)
    cae_exe, bench_exe = os.path.join(a.build_dir, "cae"), os.path.join(a.build_dir, "cae_bench")
    load_before = os.getloadavg()
    info = machine()
    cae = Server("cae", [bench_exe], env)
    if a.versus_env:
        var, _, value = a.versus_env.partition("=")
        torch = Server(f"cae {a.versus_env}", [bench_exe], dict(env, **{var: value}))
    else:
        torch = Server("pytorch", [PY, os.path.join(ROOT, "bench", "torch_bench.py")], env)
    results = []
    train_cfg = [tuple(map(int, c.split("x"))) for c in a.train.split(",") if c]
    infer_batches = [int(b) for b in a.infer_batches.split(",") if b]
    if a.quick:
        train_cfg, infer_batches = [(200, 2), (200, 1)], [200]
    for batch, threads in train_cfg:
        results.append(compare(cae, torch, "train", batch, threads, a.reps))
        print(f"train b{batch} t{threads}: ratio {stats(results[-1]['ratios'])[0]:.2f}", file=sys.stderr)
    for threads in [int(t) for t in a.threads.split(",") if t]:
        for batch in infer_batches:
            results.append(compare(cae, torch, "infer", batch, threads, a.reps))
            print(f"infer b{batch} t{threads}: ratio {stats(results[-1]['ratios'])[0]:.2f}", file=sys.stderr)
    layer_rows = [] if a.versus_env else cae.lines_until_end("layers 200 2 10")
    cae.close()
    torch.close()
    if a.versus_env:
        a.skip_rss = True

    rss = None
    mnist = os.path.join(a.data, "mnist", "train-images-idx3-ubyte")
    if not (a.quick or a.skip_rss) and os.path.exists(mnist):
        out_dir = tempfile.mkdtemp(prefix="cae_rss_")
        cae_rss, cae_wall, _ = peak_rss([cae_exe, "train", "--epochs", "1", "--threads", "2", "--out", out_dir,
                                         "--data", a.data], env)
        with open(os.path.join(out_dir, "losses.csv")) as f:
            row = f.read().splitlines()[1].split(",")
        cae_epoch, cae_train = float(row[6]), 60000 / float(row[7])
        torch_rss, torch_wall, out = peak_rss([PY, os.path.join(ROOT, "bench", "torch_seed.py"), "--epochs", "1",
                                               "--threads", "2", "--data", os.path.join(a.data, "mnist")], env)
        torch_epoch = json.loads(out.splitlines()[-1])["train_seconds"]
        shutil.rmtree(out_dir, ignore_errors=True)
        rss = {"cae_train_s": cae_train, "cae_mb": cae_rss, "torch_mb": torch_rss, "cae_epoch_s": cae_epoch, "torch_epoch_s": torch_epoch,
               "cae_wall_s": cae_wall, "torch_wall_s": torch_wall}
    load_after = os.getloadavg()

    md = ["## Side by side (bench/run.py)", "",
          f"Command: `/usr/bin/python3 bench/run.py {' '.join(sys.argv[1:])}`  ",
          f"Machine: {info.get('Model name')}, {info.get('CPU(s)')} CPUs; flags: {info.get('flags')}  ",
          f"Versions: PyTorch {info['torch']} (channels-last), oneDNN {info['oneDNN']}, {info['compiler']}, "
          f"Linux {info['kernel']}, cae {info['commit']}  ",
          f"Load average (1 min) before/after: {load_before[0]:.1f} / {load_after[0]:.1f}", "",
          "images/s: median (min–max) of the repetitions; ratio = cae / PyTorch of each back-to-back pair.", "",
          "| what | batch | threads | steps | cae img/s | PyTorch img/s | ratio |", "|---|---|---|---|---|---|---|"]
    for r in results:
        md.append(f"| {r['mode']} | {r['batch']} | {r['threads']} | {r['steps']} | {fmt_side(r['cae'])} | "
                  f"{fmt_side(r['torch'])} | {fmt_ratio(r['ratios'])} |")
    lat = [r for r in results if r["mode"] == "infer" and r["batch"] == 1]
    if lat:
        md += ["", "Batch-1 latency (ms, median): " + "; ".join(
            f"{r['threads']} thread(s): cae {1000 / stats(r['cae'])[0]:.3f}, PyTorch "
            f"{1000 / stats(r['torch'])[0]:.3f} ({stats(r['ratios'])[0]:.1f}× lower)" for r in lat)]
    if a.versus_env:
        md[md.index("| what | batch | threads | steps | cae img/s | PyTorch img/s | ratio |")] = (
            f"| what | batch | threads | steps | cae img/s | cae {a.versus_env} img/s | ratio |")
        md = [line.replace("ratio = cae / PyTorch", f"ratio = cae / cae {a.versus_env}")
                  .replace(", PyTorch ", f", cae {a.versus_env} ") for line in md]
        text = "\n".join(md) + "\n"
        print(text)
        if a.out:
            with open(a.out, "w") as f:
                f.write(text)
        return
    net_ops = {1: "maxpool", 3: "maxpool", 5: "maxpool", 6: "resize", 8: "resize", 10: "resize"}
    lines, total, bare_conv = layer_table(layer_rows, net_ops)
    md += ["", "### Per layer: one training step, batch 200, 2 threads", "",
           "cae: every step of the executor timed on its own (forward, fused activation backward, backward "
           "weights and data, reorders). Bare: the same conv as lone oneDNN primitives in layouts of their own "
           "choosing and the algorithm the executor asks for (Winograd where `winograd_chosen`), forward with "
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
        with open(os.path.splitext(a.out)[0] + ".json", "w") as f:
            json.dump({"machine": info, "results": results, "layers": layer_rows, "rss": rss}, f, indent=1)


if __name__ == "__main__":
    main()
