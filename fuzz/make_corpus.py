#!/usr/bin/python3
"""Writes the seed corpus under fuzz/corpus/<target>/ (committed; rerun only to refresh it).

Real files, kept small so that libFuzzer mutates them quickly: IDX heads and images cut from
MNIST (scripts/setup-data.sh installs it), PNG and JPEG files of MNIST digits in every colour
type and depth the readers meet (Debian python3-pil), model and checkpoint files written by
`cae train` on a tiny dataset, architecture specs, and command lines.

Usage: /usr/bin/python3 fuzz/make_corpus.py [path/to/cae]   (default build/cae)
"""
import gzip
import io
import os
import struct
import subprocess
import sys
import tempfile

from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
MNIST = os.path.join(os.environ.get("CAE_DATA", os.path.expanduser("~/.local/share/cae")), "mnist")


def put(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    with open(os.path.join(CORPUS, target, name), "wb") as f:
        f.write(data)


def mnist_images(count, offset=0):
    with open(os.path.join(MNIST, "t10k-images-idx3-ubyte"), "rb") as f:
        head = f.read(16)
        f.seek(16 + 784 * offset)
        return head, [f.read(784) for _ in range(count)]


def idx_seeds():
    head, images = mnist_images(3)
    three = struct.pack(">IIII", 0x803, 3, 28, 28) + b"".join(images)
    put("fuzz_idx", "mnist-t10k-3-images-idx3", three)
    put("fuzz_idx", "mnist-t10k-3-images-idx3.gz", gzip.compress(three, mtime=0))
    put("fuzz_idx", "mnist-t10k-head-only", head)  # the real header: claims 10000 images
    with open(os.path.join(MNIST, "t10k-labels-idx1-ubyte"), "rb") as f:
        f.read(8)
        labels = f.read(10)
    put("fuzz_idx", "mnist-t10k-10-labels-idx1", struct.pack(">II", 0x801, 10) + labels)
    # 4-D n,h,w,c: two 6x5 crops with three channels taken from three digits.
    crops = bytearray()
    for n in range(2):
        for y in range(6):
            for x in range(5):
                for c in range(3):
                    crops.append(images[c][(y + 11) * 28 + x + 11 + n])
    put("fuzz_idx", "mnist-crops-2x6x5x3-idx4", struct.pack(">IIIII", 0x804, 2, 6, 5, 3) + crops)


def digit(index=0, size=28):
    _, images = mnist_images(1, index)
    img = Image.frombytes("L", (28, 28), images[0])
    return img if size == 28 else img.resize((size, size))


def png_bytes(img, **options):
    out = io.BytesIO()
    img.save(out, format="PNG", **options)
    return out.getvalue()


def jpeg_bytes(img, **options):
    out = io.BytesIO()
    img.save(out, format="JPEG", **options)
    return out.getvalue()


def image_seeds():
    gray = digit(0)
    rgb = Image.merge("RGB", (digit(0), digit(1), digit(2)))
    pngs = {
        "digit-gray8.png": png_bytes(gray),
        "digit-rgb8.png": png_bytes(rgb),
        "digit-gray-alpha.png": png_bytes(Image.merge("LA", (gray, digit(1)))),
        "digit-rgba.png": png_bytes(Image.merge("RGBA", (digit(0), digit(1), digit(2), digit(3)))),
        "digit-palette.png": png_bytes(rgb.quantize(16)),
        "digit-1bit.png": png_bytes(gray.convert("1")),
        "digit-gray16.png": png_bytes(gray.convert("I").point(lambda v: v * 257).convert("I;16")),
        "digit-12x12-gray8.png": png_bytes(digit(4, 12)),
    }
    jpegs = {
        "digit-gray.jpg": jpeg_bytes(gray, quality=90),
        "digit-rgb.jpg": jpeg_bytes(rgb, quality=90),
        "digit-rgb-progressive.jpg": jpeg_bytes(rgb, quality=75, progressive=True),
        "digit-rgb-420.jpg": jpeg_bytes(rgb, quality=50, subsampling=2),
        "digit-12x12-gray.jpg": jpeg_bytes(digit(4, 12), quality=95),
    }
    for name, data in pngs.items():
        put("fuzz_png", name, data)
        put("fuzz_image", name, data)
    for name, data in jpegs.items():
        put("fuzz_jpeg", name, data)
        put("fuzz_image", name, data)


def model_seeds(cae):
    with tempfile.TemporaryDirectory() as work:
        ds = os.path.join(work, "ds")
        os.makedirs(ds)
        _, images = mnist_images(12)
        # 8x8 crops of the digits' centres: a dataset the size of a seed.
        crops = b"".join(bytes(img[(y + 10) * 28 + 10:(y + 10) * 28 + 18]) for img in images for y in range(8))
        for name, first, count in (("train", 0, 8), ("t10k", 8, 4)):
            with open(os.path.join(ds, name + "-images-idx3-ubyte"), "wb") as f:
                f.write(struct.pack(">IIII", 0x803, count, 8, 8) + crops[first * 64:(first + count) * 64])
        for tag, spec, extra in (("pool-mirror", "conv 2 relu; pool; resize mirror; conv channels", []),
                                 ("tconv-mse", "conv 2 k1 s2 relu; tconv channels k2 s2 mirror", ["--loss", "mse"])):
            out = os.path.join(work, tag)
            subprocess.run([cae, "train", "--dataset", ds, "--spec", spec, "--epochs", "1", "--batch", "4",
                            "--threads", "1", "--out", out] + extra, check=True, capture_output=True)
            for kind in ("model", "checkpoint"):
                with open(os.path.join(out, kind + ".cae"), "rb") as f:
                    put("fuzz_model_file", f"{tag}-{kind}.cae", f.read())


SPECS = {
    "seed": "conv 32 relu\npool\nconv 32 relu\npool\nconv 16 relu\npool\nresize mirror\nconv 16 relu\n"
            "resize mirror\nconv 32 relu\nresize mirror\nconv 32 relu\nconv channels\n",
    "seed-tconv": "conv 32 relu\npool\nconv 32 relu\npool\nconv 16 relu\npool\ntconv 16 s2 mirror relu\n"
                  "tconv 32 s2 mirror relu\ntconv 32 s2 mirror relu\nconv channels\n",
    "one-line": "conv 8 k5 s2 valid sigmoid nobias; relu; sigmoid; pool k3 s1 valid; resize 7x9; resize 4",
    "comments": "# an encoder\nconv 4 k3 s1 same linear # first\n\npool k2 s2 same\ntconv channels k4 s2 14x14 relu nobias\n",
    "fixed-tconv": "conv 3 s2; tconv 3 k3 s2 same; conv channels k1",
}

ARGS = [
    ["train", "--dataset", "ds", "--preset", "seed", "--epochs", "3", "--batch", "10", "--lr", "0.01",
     "--optimizer", "sgd", "--momentum", "0.5", "--loss", "mse", "--noise", "0.3", "--seed", "7",
     "--threads", "2", "--backend", "ref", "--out", "run", "--resume", "--limit", "100", "--test-limit", "10"],
    ["train", "--spec", "@spec.txt", "--data", "dir"],
    ["denoise", "-m", "model.cae", "a.png", "b.png", "-o", "outdir"],
    ["denoise", "--model", "model.cae", "--idx", "images-idx3-ubyte", "--out", "den"],
    ["show", "-m", "model.cae", "--count", "10", "--scale", "3", "--noise", "0.5", "--seed", "0", "-o", "f.png"],
    ["info", "model.cae"],
    ["presets"],
    ["--version"],
    ["train", "--epochs", "-3"],
]


def text_seeds():
    for name, spec in SPECS.items():
        put("fuzz_spec", name + ".txt", spec.encode())
    for i, args in enumerate(ARGS):
        put("fuzz_cli", f"args-{i}-{args[0].lstrip('-')}", b"\0".join(a.encode() for a in args))


def main():
    cae = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "cae")
    idx_seeds()
    image_seeds()
    model_seeds(cae)
    text_seeds()


if __name__ == "__main__":
    main()
