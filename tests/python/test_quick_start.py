"""The README's quick start, run as written: the commands of its quick-start block, in a scratch
folder that holds the repository's examples/ and the build's cae as build/cae, with the shipped
models. The block's first two lines (install-deps, the cmake build) are what scripts/test.sh has
done before the tests run; the test checks they are there and runs every line after them."""

import os
import re
import shlex
import subprocess

import numpy as np

from conftest import CAE_EXE, REPO, read_png


def quick_start_lines():
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- quick-start.*?-->\s*```sh\n(.*?)```\s*<!-- /quick-start -->", text, re.S)
    assert block, "README.md has no quick-start block"
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line]


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / mse)


def test_the_quick_start_repairs_and_denoises_the_example_photo(tmp_path):
    lines = quick_start_lines()
    assert lines[0] == "scripts/install-deps.sh", lines
    assert lines[1].startswith("cmake -S . -B build ") and "--target cae" in lines[1], lines
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "cae").symlink_to(CAE_EXE.resolve())
    (tmp_path / "examples").symlink_to(REPO / "examples")
    env = {k: v for k, v in os.environ.items() if k != "CAE_MODELS"}
    for line in lines[2:]:
        assert shlex.split(line)[0] == "build/cae", line
        done = subprocess.run(line, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{line}\n{done.stderr}"

    photos = REPO / "examples" / "photos"
    clean, damaged = read_png(photos / "cat.png"), read_png(photos / "cat-damaged.png")
    mask = read_png(photos / "cat-mask.png") > 0
    repaired = read_png(tmp_path / "cat-repaired.png")
    assert repaired.shape == damaged.shape and repaired.dtype == np.uint8
    np.testing.assert_array_equal(repaired[~mask], damaged[~mask])
    # Inside the strokes: near the photo under them, far from the paint.
    assert psnr(repaired[mask], clean[mask]) > 22, psnr(repaired[mask], clean[mask])
    assert psnr(damaged[mask], clean[mask]) < 12

    noisy, denoised = read_png(photos / "cat-noisy.png"), read_png(tmp_path / "cat-denoised.png")
    assert denoised.shape == noisy.shape
    assert psnr(denoised, clean) > psnr(noisy, clean) + 6, (psnr(noisy, clean), psnr(denoised, clean))
