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
