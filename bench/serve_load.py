#!/usr/bin/python3
"""A bounded load test of `cae serve` on loopback, with a flood of hostile requests beside it.

  /usr/bin/python3 bench/serve_load.py [-m MODEL] [--clients 8] [--requests 400] [--size 512x512]
                                       [--coverage 0.01] [--hostile 2] [--threads 2] [--cae build/cae]

Starts `cae serve -m MODEL --port 0 --threads T` and writes a WxH RGB photo with a brush-stroke
mask (bench/repair_bench.py's). CLIENTS threads, each on one keep-alive connection, send REQUESTS
repairs in all (POST /api/v1/repair) and check each answer byte for byte against `cae repair`
of the same files. Meanwhile HOSTILE threads send, round after round, the bad requests of
docs/serve.md: a truncated multipart body, a non-image, a PNG header claiming 20000x20000, a mask
of another size, an upload above the limit, a wrong content type, an unknown model; each must be
answered 4xx with a JSON error. Prints the good requests' latency (p50, p99, max; HTTP included,
measured from the first byte sent to the last byte read), errors, the hostile answers by status,
the server's peak RSS (VmHWM) and the CPU, and that SIGTERM ended the server with status 0.
Without -m it trains a model of the photo job's architecture for one tiny epoch, as repair_bench
does: its weights are poor, its time per tile is the trained model's. A benchmark, not a test:
it exits 1 only when a check fails.
"""
import argparse, http.client, json, os, re, statistics, struct, subprocess, sys, tempfile, threading, time, zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import repair_bench  # noqa: E402  (write_png, photo_rows, stroke_mask_rows, cpu_model)

BOUNDARY = "caeServeLoad7MA4YWxkTrZu0gW"


def multipart(fields):
    """fields: (name, bytes, filename or None)."""
    out = b""
    for name, data, filename in fields:
        out += f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"".encode()
        if filename:
            out += f"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream".encode()
        out += b"\r\n\r\n" + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def forged_png(w, h):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


def start_server(cae, model, threads, extra):
    proc = subprocess.Popen([cae, "serve", "-m", model, "--port", "0", "--threads", str(threads)] + extra,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not m:
        proc.kill()
        sys.exit(f"serve_load: cae serve said: {line}{proc.stderr.read()}")
    threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep its pipe drained
    return proc, int(m.group(1))


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("-m", "--model", help="an informed model (default: the photo job's architecture, "
                    "trained for one tiny epoch)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--size", default="512x512", help="WxH of the photo (default 512x512)")
    ap.add_argument("--coverage", type=float, default=0.01, help="share of the photo damaged")
    ap.add_argument("--hostile", type=int, default=2, help="threads sending bad requests (0: none)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--serve-args", default="", help="more arguments for cae serve")
    ap.add_argument("--cae", default=os.path.join(ROOT, "build", "cae"))
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    work = tempfile.mkdtemp(prefix="cae-serve-load-")
    model = args.model
    if not model:
        model = os.path.join(work, "unet.cae")
        subprocess.run([args.cae, "train", "--dataset", "photos", "--patch", "64", "--informed",
                        "--fill", "navier-stokes r=3", "--noise", "0", "--lines", "2",
                        "--line-thickness", "3", "--masks", "1", "--mask-min", "8", "--mask-max",
                        "16", "--loss", "mse", "--preset", "unet", "--batch", "32",
                        "--patches-per-epoch", "64", "--epochs", "1", "--out",
                        os.path.join(work, "run"), "--threads", str(args.threads)],
                       check=True, capture_output=True)
        os.replace(os.path.join(work, "run", "model.cae"), model)
    name = os.path.splitext(os.path.basename(model))[0]
    photo_path, mask_path = os.path.join(work, "photo.png"), os.path.join(work, "mask.png")
    repair_bench.write_png(photo_path, width, height, 3, repair_bench.photo_rows(width, height))
    rows, covered = repair_bench.stroke_mask_rows(width, height, args.coverage)
    repair_bench.write_png(mask_path, width, height, 1, rows)
    expected_path = os.path.join(work, "expected.png")
    subprocess.run([args.cae, "repair", photo_path, "--mask", mask_path, "-m", model, "-o", expected_path,
                    "--threads", str(args.threads)], check=True, capture_output=True)
    photo, mask, expected = (open(p, "rb").read() for p in (photo_path, mask_path, expected_path))
    good_body = multipart([("image", photo, "photo.png"), ("mask", mask, "mask.png")])
    small_mask_rows, _ = repair_bench.stroke_mask_rows(width // 2, height // 2, args.coverage)
    small_mask = os.path.join(work, "small-mask.png")
    repair_bench.write_png(small_mask, width // 2, height // 2, 1, small_mask_rows)

    server, port = start_server(args.cae, model, args.threads, args.serve_args.split())
    mtype = f"multipart/form-data; boundary={BOUNDARY}"
    # Each: (what, content type, body, Content-Length to claim or None).
    hostile = [
        ("truncated multipart", mtype, good_body[: len(good_body) // 2], None),
        ("not an image", mtype, multipart([("image", b"hello, not a photo", "x.png"), ("mask", mask, "m.png")]), None),
        ("20000x20000 header", mtype, multipart([("image", forged_png(20000, 20000), "bomb.png"), ("mask", mask, "m.png")]), None),
        ("mask of another size", mtype, multipart([("image", photo, "p.png"), ("mask", open(small_mask, "rb").read(), "m.png")]), None),
        ("upload over the limit", mtype, b"x" * 1024, 1 << 40),
        ("wrong content type", "application/json", b'{"image": "photo.png"}', None),
        ("unknown model", mtype, multipart([("image", photo, "p.png"), ("mask", mask, "m.png"), ("model", b"nope", None)]), None),
    ]

    latencies, errors, lock = [], [], threading.Lock()
    hostile_answers = {}
    remaining = [args.requests]
    done = threading.Event()

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if remaining[0] == 0:
                    break
                remaining[0] -= 1
            start = time.perf_counter()
            try:
                conn.request("POST", "/api/v1/repair", body=good_body, headers={"Content-Type": mtype})
                r = conn.getresponse()
                body = r.read()
                elapsed = time.perf_counter() - start
                ok = r.status == 200 and body == expected
                with lock:
                    latencies.append(elapsed)
                    if not ok:
                        errors.append(f"{r.status} {body[:200]!r}" if r.status != 200 else "200 with other bytes")
            except (OSError, http.client.HTTPException) as e:
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.close()

    def flooder(k):
        i = k
        while not done.is_set():
            what, ctype, body, claim = hostile[i % len(hostile)]
            i += 1
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.putrequest("POST", "/api/v1/repair")
                conn.putheader("Content-Type", ctype)
                conn.putheader("Content-Length", str(claim if claim else len(body)))
                conn.endheaders()
                conn.send(body)
                r = conn.getresponse()
                data = r.read()
                conn.close()
                well_formed = 400 <= r.status < 500 and "error" in json.loads(data or b"{}")
                key = (what, r.status if well_formed else f"BAD {r.status}")
            except (OSError, http.client.HTTPException, ValueError) as e:
                key = (what, f"no answer ({type(e).__name__})")
            with lock:
                hostile_answers[key] = hostile_answers.get(key, 0) + 1

    floods = [threading.Thread(target=flooder, args=(k,)) for k in range(args.hostile)]
    for t in floods:
        t.start()
    start = time.perf_counter()
    clients = [threading.Thread(target=client) for _ in range(args.clients)]
    for t in clients:
        t.start()
    for t in clients:
        t.join()
    wall = time.perf_counter() - start
    done.set()
    for t in floods:
        t.join()
    rss = peak_rss_mb(server.pid)
    server.terminate()
    status = server.wait(timeout=60)

    lat = sorted(latencies)
    p = lambda q: 1000 * lat[min(len(lat) - 1, int(q * len(lat)))]
    print(f"cae serve on {repair_bench.cpu_model()}, {os.cpu_count()} CPUs, --threads {args.threads}: "
          f"{args.requests} repairs of a {width}x{height} RGB photo ({100 * covered:.2f}% damaged by "
          f"strokes), {args.clients} clients, {args.hostile} hostile flooders")
    print(f"  latency ms (HTTP included): p50 {p(0.50):.0f}, p90 {p(0.90):.0f}, p99 {p(0.99):.0f}, "
          f"max {1000 * lat[-1]:.0f}; {len(lat) / wall:.1f} repairs/s over {wall:.1f} s")
    print(f"  errors: {len(errors)} of {len(latencies)} good requests" + (f" (first: {errors[0]})" if errors else ""))
    print(f"  peak RSS of the server: {rss:.0f} MB")
    bad_hostile = 0
    for (what, got), n in sorted(hostile_answers.items(), key=lambda kv: str(kv[0])):
        print(f"  hostile: {what}: {got} x{n}")
        bad_hostile += n if not isinstance(got, int) else 0
    print(f"  cae serve exited {status} after SIGTERM; model {model}")
    if errors or bad_hostile or status != 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
