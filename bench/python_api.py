#!/usr/bin/python3
"""The Python module's denoise against the C++ API's, on the same model, in one run.

  /usr/bin/python3 bench/python_api.py [--reps 7] [--batch 200] [--steps 30] [--isa avx2]

Builds build-bench/ (Release, CAE_BUILD_BENCH=ON: the module and bench/api_bench.cpp), trains a
seed model for one step on synthetic images (the weights do not change the speed), then
alternates, round by round, Python's `model.denoise(batch)` in this process and the C++ API's
`Autoencoder::denoise` in cae_api_bench (a warm server), float32 and uint8, on 2 and 1 threads.
Prints images/s (medians) and Python's time over C++'s, per round and its median: the cost of
the bindings; by wall time and by the process's CPU time, which other work on a shared machine
does not stretch (OMP_WAIT_POLICY=passive, so that waiting threads spend none). Not a test: a
benchmark on a shared machine, read the ratios.
"""
import argparse, json, os, statistics, struct, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ISA_ENV = {"native": {}, "avx2": {"CAE_MAX_ISA": "avx2"}}


def build(build_dir):
    subprocess.run(f"cmake -S {ROOT} -B {build_dir} -DCMAKE_BUILD_TYPE=Release -DCAE_BUILD_BENCH=ON"
                   " > /dev/null", shell=True, check=True)
    subprocess.run(f"cmake --build {build_dir} -j2 --target cae cae_python cae_api_bench", shell=True,
                   check=True, stdout=subprocess.DEVNULL)


def write_idx(path, images):
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 8, images.ndim))
        f.write(struct.pack(">" + "I" * images.ndim, *images.shape))
        f.write(images.tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--isa", choices=sorted(ISA_ENV), default="native")
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    args = ap.parse_args()
    os.environ.update(ISA_ENV[args.isa])  # before the module loads: it reads the cap once
    os.environ["OMP_WAIT_POLICY"] = "passive"  # CPU time is then work, not spinning
    build(args.build)
    sys.path.insert(0, os.path.join(args.build, "python"))
    import numpy as np
    import cae

    work = tempfile.mkdtemp(prefix="cae-python-bench-")
    rng = np.random.default_rng(0)
    images = ((rng.random((200, 28, 28)) < 0.2) * 255).astype(np.uint8)
    write_idx(os.path.join(work, "train-images-idx3-ubyte"), images)
    write_idx(os.path.join(work, "t10k-images-idx3-ubyte"), images[:20])
    subprocess.run([os.path.join(args.build, "cae"), "train", "--dataset", work, "--epochs", "1",
                    "--batch", "200", "--out", os.path.join(work, "run")], check=True,
                   capture_output=True)
    model_path = os.path.join(work, "run", "model.cae")
    model = cae.Autoencoder.load(model_path)
    server = subprocess.Popen([os.path.join(args.build, "cae_api_bench"), model_path], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def cpp(kind, threads):
        server.stdin.write(f"{kind} {args.batch} {threads} {args.warmup} {args.steps}\n")
        server.stdin.flush()
        answer = json.loads(server.stdout.readline())
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer["images_per_second"], answer["images_per_cpu_second"]

    # The pattern the C++ side denoises: a ramp of bytes, its floats byte / 255.
    ramp = (np.arange(args.batch * 784) % 256).astype(np.uint8).reshape(args.batch, 28, 28, 1)
    inputs = {"bytes": ramp, "float": ramp.astype(np.float32) * np.float32(1 / 255)}

    def python(kind, threads):
        cae.set_num_threads(threads)
        x = inputs[kind]
        for _ in range(args.warmup):
            model.denoise(x)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(args.steps):
            model.denoise(x)
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        return args.steps * args.batch / wall, args.steps * args.batch / cpu

    print(f"# Python denoise against the C++ API: batch {args.batch}, {args.steps} calls after "
          f"{args.warmup}, {args.reps} rounds, tier {args.isa}, cae {cae.version()}\n")
    print("| input | threads | Python images/s | C++ API images/s | Python / C++ time, wall | Python / C++ time, CPU |")
    print("|---|---|---|---|---|---|")
    med = statistics.median
    for kind in ("float", "bytes"):
        for threads in (2, 1):
            rounds = []
            for _ in range(args.reps):
                a = python(kind, threads)
                time.sleep(0.2)
                b = cpp(kind, threads)
                time.sleep(0.2)
                rounds.append((a, b))
            wall = [b[0] / a[0] for a, b in rounds]
            cpu = [b[1] / a[1] for a, b in rounds]
            print(f"| {'float32' if kind == 'float' else 'uint8'} | {threads} | "
                  f"{med(a[0] for a, _ in rounds):.0f} | {med(b[0] for _, b in rounds):.0f} | "
                  f"{med(wall):.3f} ({min(wall):.3f} to {max(wall):.3f}) | "
                  f"{med(cpu):.3f} ({min(cpu):.3f} to {max(cpu):.3f}) |", flush=True)
    server.stdin.write("quit\n")
    server.stdin.flush()
    server.wait()


if __name__ == "__main__":
    main()
