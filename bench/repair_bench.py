#!/usr/bin/python3
"""How long `cae repair` (or `cae denoise`) takes on a big photo, set-up included.

  /usr/bin/python3 bench/repair_bench.py [-m MODEL] [--size 4000x3000] [--coverage 0.01]
                                         [--reps 5] [--threads 2] [--cae build/cae] [--denoise]

Writes a WxH RGB photo (a smooth texture with noise: the content does not change the time) and
a mask of random brush strokes 5-30 px wide covering COVERAGE of it, then times the whole command
`cae repair photo.png --mask mask.png -m MODEL -o out.png` REPS times (process start, reading the
model, the photo and the mask, the repair, encoding and writing the PNG): median, min and max of
the wall-clock time, with the CPU named. MODEL defaults to the shipped inpainter, `inpaint`
(docs/models.md). With --denoise it times `cae denoise photo.png -m MODEL -o out.png` instead,
MODEL defaulting to the shipped `denoise`: every tile of the photo runs. A benchmark, not a test:
nothing here passes or fails.

With --torch, each cae run alternates with PyTorch (Debian's python3-torch, channels-last, under
no_grad, the same thread count) running the shipped models' architecture (the unet preset:
bench/torch_seed.py's Unet; 3 channels in and out, minus the input for `denoise`; RGB + mask in,
RGB out for `inpaint`) on the whole photo as one tensor, with Glorot weights (the time does not
depend on them): the uint8 photo to floats, the forward, back to uint8. PyTorch is timed in
process, without start-up or PNG coding, and runs every pixel once, where cae runs tiles with
overlaps (and, for repair, only the tiles the mask touches): the ratio says what a user waits
for with each, not which kernels are faster.
"""
import argparse, math, os, random, statistics, struct, subprocess, sys, tempfile, time, zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_png(path, width, height, channels, rows):
    """An 8-bit gray or RGB PNG of rows (bytes, one per row), written plainly (zlib level 1)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    color = {1: 0, 3: 2}[channels]
    raw = b"".join(b"\0" + r for r in rows)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 1)))
        f.write(chunk(b"IEND", b""))


def photo_rows(width, height):
    import numpy as np
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([0.5 + 0.3 * np.sin(x / 97 + k) * np.cos(y / 61 - k) for k in range(3)], axis=-1)
    img += rng.normal(0, 0.03, img.shape).astype(np.float32)
    img = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    return [img[r].tobytes() for r in range(height)]


def stroke_mask_rows(width, height, coverage, seed=2):
    """Brush strokes (random walks drawn with round brushes 5-30 px wide) until `coverage`."""
    import numpy as np
    rng = random.Random(seed)
    mask = np.zeros((height, width), np.uint8)
    target = coverage * width * height
    while mask.sum() / 255 < target:
        r = rng.uniform(2.5, 15)
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        angle = rng.uniform(0, 2 * math.pi)
        for _ in range(rng.randint(4, 12)):
            angle += rng.uniform(-1, 1)
            length = rng.uniform(20, 120)
            steps = int(length / max(1.0, r / 2)) + 1
            for s in range(steps):
                cx, cy = x + math.cos(angle) * length * s / steps, y + math.sin(angle) * length * s / steps
                x0, x1 = max(0, int(cx - r)), min(width, int(cx + r) + 1)
                y0, y1 = max(0, int(cy - r)), min(height, int(cy + r) + 1)
                if x0 >= x1 or y0 >= y1:
                    continue
                yy, xx = np.mgrid[y0:y1, x0:x1]
                mask[y0:y1, x0:x1][(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 255
            x, y = x + math.cos(angle) * length, y + math.sin(angle) * length
    return [mask[r].tobytes() for r in range(height)], mask.sum() / 255 / (width * height)


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("-m", "--model", help="the model (default: the shipped inpaint, or denoise with "
                    "--denoise)")
    ap.add_argument("--size", default="4000x3000", help="WxH of the photo (default 4000x3000)")
    ap.add_argument("--coverage", type=float, default=0.01, help="share of the photo damaged")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cae", default=os.path.join(ROOT, "build", "cae"))
    ap.add_argument("--adapt", type=int, default=0, help="--adapt STEPS for the timed command")
    ap.add_argument("--denoise", action="store_true", help="time cae denoise of the photo instead")
    ap.add_argument("--torch", action="store_true", help="alternate with PyTorch on the whole photo")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    work = tempfile.mkdtemp(prefix="cae-repair-bench-")
    model = args.model or ("denoise" if args.denoise else "inpaint")
    photo, mask = os.path.join(work, "photo.png"), os.path.join(work, "mask.png")
    write_png(photo, width, height, 3, photo_rows(width, height))
    rows, covered = stroke_mask_rows(width, height, args.coverage)
    write_png(mask, width, height, 1, rows)
    cmd = [args.cae, "repair", photo, "--mask", mask, "-m", model, "-o", os.path.join(work, "out.png"),
           "--threads", str(args.threads)] + (["--adapt", str(args.adapt)] if args.adapt else [])
    if args.denoise:
        cmd = [args.cae, "denoise", photo, "-m", model, "-o", os.path.join(work, "out.png"),
               "--threads", str(args.threads)]
    peer = torch_peer(width, height, args.denoise, args.threads) if args.torch else None
    times, peer_times, said = [], [], ""
    for _ in range(args.reps):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            sys.exit(f"repair_bench: {' '.join(cmd)} failed: {proc.stderr.strip()}")
        said = proc.stderr.strip()
        if peer:
            start = time.perf_counter()
            peer()
            peer_times.append(time.perf_counter() - start)
    what = (f"cae denoise of a {width}x{height} RGB photo" if args.denoise else
            f"cae repair of a {width}x{height} RGB photo, {100 * covered:.2f}% damaged by brush strokes")
    print(f"{what}, {args.threads} threads, on {cpu_model()}:")
    print(f"  wall-clock per command: median {statistics.median(times):.2f} s, "
          f"min {min(times):.2f} s, max {max(times):.2f} s over {args.reps} runs")
    print(f"  cae said: {said.splitlines()[-1] if said else ''}")
    print(f"  model: {model}")
    if peer_times:
        import torch
        print(f"  PyTorch {torch.__version__}, the same architecture on the whole photo in process: "
              f"median {statistics.median(peer_times):.2f} s, min {min(peer_times):.2f} s, "
              f"max {max(peer_times):.2f} s")
        ratios = [p / c for c, p in zip(times, peer_times)]
        print(f"  PyTorch / cae per round: median {statistics.median(ratios):.2f}x "
              f"({min(ratios):.2f}-{max(ratios):.2f}x)")


def torch_peer(width, height, denoise, threads):
    """A function running the shipped models' unet in PyTorch on a width x height photo."""
    import numpy as np
    import torch
    import torch.nn as nn
    sys.dont_write_bytecode = True
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from torch_seed import Unet
    torch.set_num_threads(threads)
    net = Unet(3 if denoise else 4)
    if not denoise:
        net.out = nn.Conv2d(32, 3, 3, padding=1)
    net = net.eval().to(memory_format=torch.channels_last)
    photo = np.frombuffer(b"".join(photo_rows(width, height)), np.uint8).reshape(height, width, 3)
    mask = np.zeros((height, width, 1), np.uint8)

    def run():
        with torch.no_grad():
            x = torch.from_numpy(photo).permute(2, 0, 1)[None].float().div_(255)
            if not denoise:
                x = torch.cat([x, torch.from_numpy(mask).permute(2, 0, 1)[None].float()], 1)
            x = x.contiguous(memory_format=torch.channels_last)
            y = x - net(x) if denoise else net(x)
            return (y.clamp_(0, 1) * 255 + 0.5).to(torch.uint8)[0].permute(1, 2, 0).contiguous()

    run()  # warm-up: PyTorch chooses its kernels on the first call
    return run


if __name__ == "__main__":
    main()
