"""cmake --install puts the module where Debian's python3 finds it, and the installed copy runs
on its own, away from the build tree."""

import os
import pathlib
import site
import subprocess
import sys

import numpy as np

import cae
from conftest import MODULE_BUILD


def install_dir():
    cache = (MODULE_BUILD / "CMakeCache.txt").read_text().splitlines()
    line = next(l for l in cache if l.startswith("CAE_PYTHON_INSTALL_DIR:"))
    return line.split("=", 1)[1]


def test_the_install_directory_is_on_debians_python_path():
    # The default prefix /usr/local, and /usr: both on the path of the python3 it was built for.
    for prefix in ("/usr/local", "/usr"):
        assert os.path.join(prefix, install_dir()) in site.getsitepackages() + sys.path


def test_the_installed_module_runs_on_its_own(gray_model, tmp_path):
    prefix = tmp_path / "prefix"
    r = subprocess.run(["cmake", "--install", str(MODULE_BUILD), "--prefix", str(prefix)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    package = prefix / install_dir() / "cae"
    assert (package / "__init__.py").exists() and (package / "__init__.pyi").exists()
    assert (package / "py.typed").exists()
    images = (np.random.default_rng(1).random((3, 28, 28, 1)) * 255).astype(np.uint8)
    np.save(tmp_path / "in.npy", images)
    script = ("import cae, numpy as np, sys; m = cae.Autoencoder.load(sys.argv[1]); "
              "np.save('out.npy', m.denoise(np.load('in.npy'))); print(cae.__file__)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(prefix / install_dir())
    r = subprocess.run([sys.executable, "-c", script, str(gray_model)], cwd=tmp_path, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert pathlib.Path(r.stdout.strip()).is_relative_to(prefix)
    assert np.array_equal(np.load(tmp_path / "out.npy"), cae.Autoencoder.load(gray_model).denoise(images))
