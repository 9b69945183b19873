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
    times, said = [], ""
    for _ in range(args.reps):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            sys.exit(f"repair_bench: {' '.join(cmd)} failed: {proc.stderr.strip()}")
        said = proc.stderr.strip()
    what = (f"cae denoise of a {width}x{height} RGB photo" if args.denoise else
            f"cae repair of a {width}x{height} RGB photo, {100 * covered:.2f}% damaged by brush strokes")
    print(f"{what}, {args.threads} threads, on {cpu_model()}:")
    print(f"  wall-clock per command: median {statistics.median(times):.2f} s, "
          f"min {min(times):.2f} s, max {max(times):.2f} s over {args.reps} runs")
    print(f"  cae said: {said.splitlines()[-1] if said else ''}")
    print(f"  model: {model}")


if __name__ == "__main__":
    main()
