#!/usr/bin/env python3
"""Writes tests/data/shapes/: 40 small procedural RGB images (32x32) for the folder-dataset tests.

Shapes (discs, boxes, bars) in random colours on smooth two-colour gradients, fixed by the seed, so
the set is reproducible: 36 8-bit RGB PNGs, 1 gray PNG, 1 16-bit RGB PNG and 2 JPEGs (the formats
the folder reader accepts). PNGs are written with zlib alone; the JPEGs need Pillow
(/usr/bin/python3 has it on Debian through python3-pil). Run from the repository root.
"""
import io
import random
import struct
import zlib
from pathlib import Path

SIZE = 32
OUT = Path(__file__).resolve().parent / "shapes"


def png(path, pixels, channels, depth=8):
    """pixels: rows of samples (ints); channels 1 (gray) or 3 (RGB)."""
    color = {1: 0, 3: 2}[channels]
    raw = b""
    for row in pixels:
        raw += b"\0" + (bytes(row) if depth == 8 else b"".join(struct.pack(">H", v) for v in row))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", SIZE, SIZE, depth, color, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
                     chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def picture(rng):
    """A SIZE x SIZE list of (r, g, b) floats in [0, 1]."""
    a = [rng.random() * 0.5 for _ in range(3)]
    b = [0.5 + rng.random() * 0.5 for _ in range(3)]
    vertical = rng.random() < 0.5
    img = [[[a[c] + (b[c] - a[c]) * ((y if vertical else x) / (SIZE - 1)) for c in range(3)]
            for x in range(SIZE)] for y in range(SIZE)]
    for _ in range(rng.randint(1, 3)):
        colour = [rng.random() for _ in range(3)]
        kind = rng.choice(["disc", "box", "bar"])
        cy, cx, r = rng.randint(6, 25), rng.randint(6, 25), rng.randint(3, 8)
        for y in range(SIZE):
            for x in range(SIZE):
                if kind == "disc":
                    inside = (y - cy) ** 2 + (x - cx) ** 2 <= r * r
                elif kind == "box":
                    inside = abs(y - cy) <= r and abs(x - cx) <= r
                else:
                    inside = abs(x - cx) <= 1
                if inside:
                    img[y][x] = colour[:]
    return img


def main():
    rng = random.Random(4)
    OUT.mkdir(exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    for i in range(40):
        img = picture(rng)
        name = OUT / f"shape{i:02d}"
        to8 = lambda v: max(0, min(255, round(v * 255)))
        if i == 7:  # gray: the luma of the picture
            rows = [[to8(0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]) for p in row] for row in img]
            png(name.with_suffix(".png"), rows, 1)
        elif i == 13:  # 16 bits per sample
            rows = [[max(0, min(65535, round(v * 65535))) for p in row for v in p] for row in img]
            png(name.with_suffix(".png"), rows, 3, 16)
        elif i in (21, 33):
            from PIL import Image
            flat = bytes(to8(v) for row in img for p in row for v in p)
            buf = io.BytesIO()
            Image.frombytes("RGB", (SIZE, SIZE), flat).save(buf, "JPEG", quality=92)
            name.with_suffix(".jpg").write_bytes(buf.getvalue())
        else:
            rows = [[to8(v) for p in row for v in p] for row in img]
            png(name.with_suffix(".png"), rows, 3)


if __name__ == "__main__":
    main()
