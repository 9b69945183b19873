"""What the tests of the Python module share: the build tree's cae program, IDX files written
here, small synthetic datasets and models trained on them by the cae program itself.

Run from the repository root (scripts/test.sh does):
    PYTHONPATH=build/python /usr/bin/python3 -m pytest -q tests/python
CAE_EXE names the cae program to compare with (default: the one beside the module's build).
"""

import os
import pathlib
import struct
import subprocess

import numpy as np
import pytest

import cae

# The tests compare runs bit for bit and with known values: the fixed kernel rules, not choices
# measured (and so varying) from run to run (docs/performance.md, "Kernel choice").
os.environ.setdefault("CAE_KERNELS", "fixed")

MODULE_BUILD = pathlib.Path(cae.__file__).resolve().parents[2]
CAE_EXE = pathlib.Path(os.environ.get("CAE_EXE", MODULE_BUILD / "cae"))
REPO = pathlib.Path(__file__).resolve().parents[2]


def write_idx(path, images):
    """An IDX ubyte file of images (n, h, w) or (n, h, w, c), uint8."""
    images = np.ascontiguousarray(images, dtype=np.uint8)
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 8, images.ndim))
        f.write(struct.pack(">" + "I" * images.ndim, *images.shape))
        f.write(images.tobytes())


def read_idx(path):
    data = pathlib.Path(path).read_bytes()
    ndim = data[3]
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data[4 + 4 * ndim :], np.uint8).reshape(shape)


def run_cae(*args):
    """Runs the cae program; returns its CompletedProcess (stdout and stderr as text)."""
    return subprocess.run([str(CAE_EXE), *map(str, args)], capture_output=True, text=True)


def check_cae(*args):
    r = run_cae(*args)
    assert r.returncode == 0, f"cae {' '.join(map(str, args))}\n{r.stdout}{r.stderr}"
    return r


def noise_images(n, shape, seed, on=0.3):
    """n images of shape (h, w) or (h, w, c): each sample 255 with probability `on`, else 0."""
    rng = np.random.default_rng(seed)
    return ((rng.random((n, *shape)) < on) * 255).astype(np.uint8)


def make_dataset(directory, train, test):
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_idx(directory / "train-images-idx3-ubyte", train)
    write_idx(directory / "t10k-images-idx3-ubyte", test)
    return directory


@pytest.fixture(scope="session")
def gray_dataset(tmp_path_factory):
    """400 training and 100 test images, 28x28 gray: the seed preset's shape."""
    return make_dataset(
        tmp_path_factory.mktemp("gray"), noise_images(400, (28, 28), 1), noise_images(100, (28, 28), 2)
    )


@pytest.fixture(scope="session")
def gray_model(tmp_path_factory, gray_dataset):
    """The seed preset after one epoch on gray_dataset, trained by the cae program."""
    out = tmp_path_factory.mktemp("gray-run")
    check_cae("train", "--dataset", gray_dataset, "--epochs", 1, "--batch", 100, "--out", out)
    return out / "model.cae"


@pytest.fixture(scope="session")
def rgb_model(tmp_path_factory):
    """A small 3-channel model on 12x10 RGB images: layouts with several channels."""
    data = make_dataset(
        tmp_path_factory.mktemp("rgb"), noise_images(60, (12, 10, 3), 3), noise_images(20, (12, 10, 3), 4)
    )
    out = tmp_path_factory.mktemp("rgb-run")
    check_cae("train", "--dataset", data, "--spec", "conv 8 relu; pool; conv 4 relu; resize mirror; conv channels",
              "--loss", "mse", "--epochs", 1, "--batch", 20, "--out", out)
    return out / "model.cae"


def write_png(path, image):
    """A PNG of image (h, w) or (h, w, c), uint8 or uint16, c = 1 to 4; no filtering."""
    import zlib

    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    h, w, c = image.shape
    depth = 16 if image.dtype == np.uint16 else 8
    color = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    rows = image.astype(">u2" if depth == 16 else np.uint8).reshape(h, -1)
    raw = b"".join(b"\0" + rows[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    pathlib.Path(path).write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def read_png(path):
    """The samples of a non-interlaced 8- or 16-bit PNG (as libpng writes them, any filter), as
    (h, w) for gray or (h, w, c), uint8 or uint16."""
    import zlib

    data = pathlib.Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat = 8, b""
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert interlace == 0 and depth in (8, 16) and color in (0, 2, 4, 6), path
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    c = {0: 1, 4: 2, 2: 3, 6: 4}[color]
    bpp = c * depth // 8
    stride = w * bpp
    raw = zlib.decompress(idat)
    out = np.zeros((h, stride), np.int32)
    prev = np.zeros(stride, np.int32)
    for y in range(h):
        kind = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        row = np.zeros(stride, np.int32)
        for i in range(stride):
            a = row[i - bpp] if i >= bpp else 0
            b = prev[i]
            cc = prev[i - bpp] if i >= bpp else 0
            if kind == 0:
                pred = 0
            elif kind == 1:
                pred = a
            elif kind == 2:
                pred = b
            elif kind == 3:
                pred = (a + b) // 2
            else:
                p = a + b - cc
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - cc)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else cc)
            row[i] = (line[i] + pred) & 0xFF
        out[y] = row
        prev = row
    samples = out.astype(np.uint8).reshape(h, -1)
    if depth == 16:
        samples = samples.reshape(h, -1, 2).astype(np.uint16)
        samples = (samples[..., 0] << 8) | samples[..., 1]
    samples = samples.reshape(h, w, c)
    return samples[..., 0] if c == 1 else samples


@pytest.fixture(scope="session")
def inpaint_model(tmp_path_factory):
    """A small informed RGB model (16x16 tiles) that repairs square masks, trained by the cae
    program: repair() against cae repair."""
    data = make_dataset(
        tmp_path_factory.mktemp("inpaint"), noise_images(64, (16, 16, 3), 5, on=0.5),
        noise_images(16, (16, 16, 3), 6, on=0.5)
    )
    out = tmp_path_factory.mktemp("inpaint-run")
    check_cae("train", "--dataset", data, "--spec", "conv 6 relu; conv channels", "--informed",
              "--noise", 0, "--masks", 1, "--epochs", 1, "--batch", 16, "--out", out)
    return out / "model.cae"
