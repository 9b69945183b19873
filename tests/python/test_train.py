"""cae.train, cae.evaluate, cae.corrupt: the CLI's options, defaults, checks and weights; a
progress callback that stops a run and the resume that continues it; Ctrl-C; paired data."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import cae
from conftest import REPO, check_cae, noise_images, run_cae

# Small runs: the seed preset on 400 images, batches of 100 (4 steps an epoch).
QUICK = dict(batch=100, lr=0.002, masks=1, seed=3)
QUICK_CLI = ["--batch", 100, "--lr", 0.002, "--masks", 1, "--seed", 3]
TIMING = {"train_images_per_second", "ms_per_step", "ms_blocked_in_communication_per_step",
          "wall_seconds_this_run", "threads"}


def same_model(a, b):
    """Model files a and b compute the same bits on a fixed batch: the same weights, as far as a
    test can tell (their metadata may differ: the dataset's name)."""
    ma, mb = cae.Autoencoder.load(a), cae.Autoencoder.load(b)
    x = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    return np.array_equal(ma.denoise(x), mb.denoise(x)) and np.array_equal(ma.encode(x), mb.encode(x))


def gray_arrays(seed=1):
    return noise_images(400, (28, 28), seed), noise_images(100, (28, 28), seed + 1)


def test_python_training_gives_the_cli_weights(gray_dataset, tmp_path):
    check_cae("train", "--dataset", gray_dataset, "--epochs", 2, *QUICK_CLI, "--out",
              tmp_path / "cli", "--threads", cae.get_num_threads())
    run = cae.train(gray_dataset, epochs=2, out=tmp_path / "py", verbose=False, **QUICK)
    assert not run.stopped and run.out == str(tmp_path / "py")
    assert (tmp_path / "py" / "model.cae").read_bytes() == (tmp_path / "cli" / "model.cae").read_bytes()
    # (The checkpoints differ in their history's timings only.)
    assert same_model(tmp_path / "py" / "checkpoint.cae", tmp_path / "cli" / "checkpoint.cae")
    cli_metrics = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert {k: v for k, v in run.metrics.items() if k not in TIMING} == {
        k: v for k, v in cli_metrics.items() if k not in TIMING}
    assert [e["epoch"] for e in run.history] == [1, 2]
    assert run.history[-1]["test_loss"] == pytest.approx(cli_metrics["test"]["loss"], rel=1e-7)
    assert isinstance(run.model, cae.Autoencoder) and run.model.metadata["epochs"] == "2"


def test_defaults_are_the_clis(gray_dataset, tmp_path):
    # Only what a test must bound is given: the rest is cae train's defaults on both sides.
    check_cae("train", "--dataset", gray_dataset, "--epochs", 1, "--limit", 200, "--out",
              tmp_path / "cli", "--threads", cae.get_num_threads())
    run = cae.train(gray_dataset, epochs=1, limit=200, out=tmp_path / "py", verbose=False)
    cli_metrics = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert run.metrics["batch"] == cli_metrics["batch"] == 200
    assert run.metrics["corruption"] == cli_metrics["corruption"] == "gaussian sigma=0.5"
    assert {k: v for k, v in run.metrics.items() if k not in TIMING} == {
        k: v for k, v in cli_metrics.items() if k not in TIMING}
    assert (tmp_path / "py" / "model.cae").read_bytes() == (tmp_path / "cli" / "model.cae").read_bytes()


def test_arrays_train_as_the_same_images_in_idx_files(gray_dataset, tmp_path):
    from conftest import read_idx

    train = read_idx(gray_dataset / "train-images-idx3-ubyte")
    test = read_idx(gray_dataset / "t10k-images-idx3-ubyte")
    a = cae.train(gray_dataset, epochs=1, out=tmp_path / "dir", verbose=False, **QUICK)
    b = cae.train((train, test), epochs=1, out=tmp_path / "arrays", verbose=False, **QUICK)
    c = cae.train({"train": train[..., None], "test": test[..., None], "name": "mine"}, epochs=1,
                  out=tmp_path / "dict", verbose=False, **QUICK)
    assert same_model(tmp_path / "dir" / "model.cae", tmp_path / "arrays" / "model.cae")
    assert same_model(tmp_path / "dir" / "model.cae", tmp_path / "dict" / "model.cae")
    assert c.metrics["dataset"] == "mine" and b.metrics["dataset"] == "arrays"


def test_an_lr_schedule_trains_as_the_clis(gray_dataset, tmp_path):
    check_cae("train", "--dataset", gray_dataset, "--epochs", 2, "--limit", 200, "--lr-schedule",
              "cosine min=0.0001", "--out", tmp_path / "cli", "--threads", cae.get_num_threads())
    run = cae.train(gray_dataset, epochs=2, limit=200, lr_schedule="cosine min=0.0001",
                    out=tmp_path / "py", verbose=False)
    assert (tmp_path / "py" / "model.cae").read_bytes() == (tmp_path / "cli" / "model.cae").read_bytes()
    assert run.model.metadata["lr_schedule"] == "cosine min=1e-04"
    assert run.metrics["lr_schedule"] == "cosine min=1e-04"
    assert run.metrics["final_lr"] == pytest.approx(1e-4, rel=1e-6)  # the last epoch's: min


BAD_OPTIONS = [
    # keyword arguments, the CLI's arguments for the same mistake (None: Python-only)
    (dict(epochs=0), ["--epochs", "0"]),
    (dict(batch=-5), ["--batch", "-5"]),
    (dict(lr=0), ["--lr", "0"]),
    (dict(lr="fast"), ["--lr", "fast"]),
    (dict(optimizer="rmsprop"), ["--optimizer", "rmsprop"]),
    (dict(preset="unknown"), ["--preset", "unknown"]),
    (dict(noise=float("nan")), ["--noise", "nan"]),
    (dict(masks=1001), ["--masks", "1001"]),
    (dict(backend="gpu"), ["--backend", "gpu"]),
    (dict(threads=0), ["--threads", "0"]),
    (dict(spec="conv 8 frobnicate"), ["--spec", "conv 8 frobnicate"]),
    (dict(micro_batch=7, batch=100), ["--micro-batch", "7", "--batch", "100"]),
    (dict(lr_schedule="step every=2 gamma=abc"), ["--lr-schedule", "step every=2 gamma=abc"]),
    (dict(lr_schedule="cosine min=1"), ["--lr-schedule", "cosine min=1"]),
    (dict(lr=0.01, lr_schedule="plateau min=0.01"), ["--lr", "0.01", "--lr-schedule", "plateau min=0.01"]),
]


@pytest.mark.parametrize("options,cli", BAD_OPTIONS, ids=[str(o[0]) for o in BAD_OPTIONS])
def test_bad_options_raise_the_clis_message(gray_dataset, tmp_path, options, cli):
    r = run_cae("train", "--dataset", gray_dataset, "--epochs", 1, "--out", tmp_path / "cli",
                *[] if "epochs" in options else [], *cli)
    assert r.returncode != 0
    message = r.stderr.strip().splitlines()[-1]
    assert message.startswith("cae: error: ")
    kwargs = {"epochs": 1, **options}
    with pytest.raises(cae.Error) as e:
        cae.train(gray_dataset, out=tmp_path / "py", verbose=False, **kwargs)
    assert str(e.value) == message[len("cae: error: "):]
    assert not (tmp_path / "py" / "model.cae").exists()


PYTHON_ONLY_MISTAKES = [
    (dict(frob=1), "unknown option 'frob' (the options of cae train: threads"),
    (dict(micro=5), "unknown option 'micro'"),
    (dict(help=True), "unknown option 'help'"),
    (dict(resume=1), "resume is a flag: give True or False, found int"),
    (dict(crosshair="yes"), "crosshair is a flag"),
    (dict(epochs=True), "epochs takes a value, not True"),
    (dict(progress=5), "progress must be callable"),
    (dict(dataset=5), "dataset must be a name or path"),
    (dict(dataset=(np.zeros((4, 28, 28), np.float32), np.zeros((4, 28, 28), np.uint8))),
     "dataset[0] (train): dtype float32 is not uint8"),
    (dict(dataset=(np.zeros((4, 28), np.uint8), np.zeros((4, 28, 28), np.uint8))),
     "an array of 2 dimension(s)"),
    (dict(dataset=(np.zeros((4, 28, 28), np.uint8),)), "(train, test), found 1 items"),
    (dict(dataset=(np.zeros((4, 28, 28), np.uint8), np.zeros((4, 20, 28), np.uint8))),
     "the test images are 20x28x1, the training images 28x28x1"),
    (dict(dataset={"train": np.zeros((4, 28, 28), np.uint8)}), "needs 'test'"),
    (dict(dataset={"train": np.zeros((4, 28, 28), np.uint8), "test": np.zeros((4, 28, 28), np.uint8),
                   "images": 1}), "dataset has key 'images'"),
    (dict(dataset={"train": np.zeros((4, 28, 28), np.uint8), "test": np.zeros((4, 28, 28), np.uint8),
                   "train_targets": np.zeros((4, 28, 28), np.uint8)}), "give both train_targets and test_targets"),
    (dict(dataset={"train": np.zeros((4, 28, 28), np.uint8), "test": np.zeros((4, 28, 28), np.uint8),
                   "train_targets": np.zeros((3, 28, 28), np.uint8),
                   "test_targets": np.zeros((4, 28, 28), np.uint8)}), "3 training targets for 4 training images"),
    (dict(dataset={"train": np.zeros((4, 28, 28), np.uint8), "test": np.zeros((4, 28, 28), np.uint8),
                   "train_targets": np.zeros((4, 28, 28), np.uint8),
                   "test_targets": np.zeros((4, 28, 28, 3), np.uint8)}), "the test targets are 28x28x3"),
    (dict(dataset=str(REPO / "no-such-dataset")), "no-such-dataset"),
]


@pytest.mark.parametrize("options,words", PYTHON_ONLY_MISTAKES, ids=[str(m[1]) for m in PYTHON_ONLY_MISTAKES])
def test_python_mistakes_raise_cae_error(gray_dataset, tmp_path, options, words):
    kwargs = {"dataset": gray_dataset, "epochs": 1, "out": tmp_path, "verbose": False, **options}
    with pytest.raises(cae.Error) as e:
        cae.train(**kwargs)
    assert words in str(e.value)
    assert not (tmp_path / "checkpoint.cae").exists()


def test_progress_sees_every_step_and_can_stop_the_run_which_then_resumes(gray_dataset, tmp_path):
    cae.train(gray_dataset, epochs=3, out=tmp_path / "whole", verbose=False, **QUICK)
    calls = []

    def stop_in_epoch_2(epoch, step, loss, images_per_second):
        calls.append((epoch, step))
        assert np.isfinite(loss) and images_per_second > 0
        return not (epoch == 2 and step == 3)

    run = cae.train(gray_dataset, epochs=3, out=tmp_path / "cut", verbose=False,
                    progress=stop_in_epoch_2, **QUICK)
    assert run.stopped and run.metrics is None
    assert calls == [(1, 1), (1, 2), (1, 3), (1, 4), (2, 1), (2, 2), (2, 3)]
    assert [e["epoch"] for e in run.history] == [1]
    assert not (tmp_path / "cut" / "model.cae").exists()
    assert run.model is not None and run.model.name.endswith("checkpoint.cae")
    # A callback that returns None keeps going; resume continues from epoch 2.
    seen = []
    again = cae.train(gray_dataset, epochs=3, out=tmp_path / "cut", verbose=False, resume=True,
                      progress=lambda e, s, l, i: seen.append(e), **QUICK)
    assert not again.stopped and set(seen) == {2, 3}
    assert [e["epoch"] for e in again.history] == [1, 2, 3]
    assert same_model(tmp_path / "whole" / "model.cae", tmp_path / "cut" / "model.cae")
    # Stopped in the first epoch: no checkpoint, no model.
    first = cae.train(gray_dataset, epochs=1, out=tmp_path / "early", verbose=False,
                      progress=lambda *a: False, **QUICK)
    assert first.stopped and first.model is None and first.history == []


def test_an_exception_in_the_callback_propagates_and_leaves_the_checkpoint(gray_dataset, tmp_path):
    def fail(epoch, step, loss, ips):
        if epoch == 2:
            raise ValueError("planted")

    with pytest.raises(ValueError, match="planted"):
        cae.train(gray_dataset, epochs=3, out=tmp_path, verbose=False, progress=fail, **QUICK)
    assert cae.Autoencoder.load(tmp_path / "checkpoint.cae").image_shape == (1, 28, 28)


def test_ctrl_c_stops_cleanly_and_resume_continues_it(gray_dataset, tmp_path):
    cae.train(gray_dataset, epochs=4, out=tmp_path / "whole", verbose=False, **QUICK)
    out = tmp_path / "interrupted"
    # The child restores Python's Ctrl-C handler: a shell that starts the tests in the background
    # (`scripts/test.sh &`, nohup) hands its children SIGINT ignored, and Python keeps it so.
    script = textwrap.dedent(f"""
        import cae, signal, time
        signal.signal(signal.SIGINT, signal.default_int_handler)
        def slow(*args):
            time.sleep(0.05)  # gives the signal time to arrive during the run
        cae.train({str(gray_dataset)!r}, epochs=4, out={str(out)!r}, verbose=False,
                  progress=slow, **{QUICK!r})
        print("finished")
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    child = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.cae").exists() and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.01)
    child.send_signal(signal.SIGINT)
    stdout, stderr = child.communicate(timeout=120)
    assert child.returncode != 0 and "KeyboardInterrupt" in stderr and "finished" not in stdout
    assert not (out / "model.cae").exists()
    assert cae.Autoencoder.load(out / "checkpoint.cae").image_shape == (1, 28, 28)
    epochs_done = len((out / "losses.csv").read_text().splitlines()) - 1
    assert 1 <= epochs_done < 4
    cae.train(gray_dataset, epochs=4, out=out, verbose=False, resume=True, **QUICK)
    assert same_model(tmp_path / "whole" / "model.cae", out / "model.cae")


def test_pairs_train_from_image_to_target(tmp_path):
    train, test = gray_arrays(5)
    # Targets equal to the images, with no corruption option: the images as given, undamaged.
    same = cae.train({"train": train, "test": test, "train_targets": train, "test_targets": test},
                     epochs=1, out=tmp_path / "pairs", verbose=False, batch=100)
    plain = cae.train((train, test), epochs=1, out=tmp_path / "plain", verbose=False, batch=100,
                      corruption="none")
    assert same.metrics["corruption"] == "gaussian sigma=0" and same.metrics["paired_targets"]
    assert same_model(tmp_path / "pairs" / "model.cae", tmp_path / "plain" / "model.cae")
    # Other targets: another model, and its scores are against the targets.
    inverted = cae.train({"train": train, "test": test, "train_targets": 255 - train,
                          "test_targets": 255 - test}, epochs=1, out=tmp_path / "inv",
                         verbose=False, batch=100)
    assert not same_model(tmp_path / "pairs" / "model.cae", tmp_path / "inv" / "model.cae")
    x, y = test.astype(np.float64) / 255, (255 - test).astype(np.float64) / 255
    assert inverted.metrics["test"]["mse_noisy"] == pytest.approx(np.mean((x - y) ** 2), rel=1e-6)
    table = cae.evaluate(inverted.model, {"train": train, "test": test, "train_targets": 255 - train,
                                          "test_targets": 255 - test}, no_baselines=True)
    noisy = next(m for m in table["methods"] if m["name"] == "noisy")
    assert noisy["mse"] == pytest.approx(np.mean((x - y) ** 2), rel=1e-6)
    # A corruption asked for damages the images, as always.
    damaged = cae.train({"train": train, "test": test, "train_targets": train, "test_targets": test},
                        epochs=1, out=tmp_path / "damaged", verbose=False, batch=100, noise=0.2)
    assert damaged.metrics["corruption"] == "gaussian sigma=0.2"


def test_evaluate_gives_cae_eval_table(gray_model, gray_dataset, tmp_path):
    check_cae("eval", "-m", gray_model, "--dataset", gray_dataset, "--limit", 40, "--tune", 10,
              "--json", tmp_path / "cli.json", "--threads", cae.get_num_threads())
    cli = json.loads((tmp_path / "cli.json").read_text())
    for model in (gray_model, cae.Autoencoder.load(gray_model)):
        table = cae.evaluate(model, gray_dataset, limit=40, tune=10, json=tmp_path / "py.json")
        per_image = table.pop("per_image")
        assert table == cli
        assert json.loads((tmp_path / "py.json").read_text()) == cli
        assert set(per_image) == {m["name"] for m in cli["methods"]}
        for m in cli["methods"]:
            assert per_image[m["name"]]["psnr_db"].shape == (40,)
            assert per_image[m["name"]]["psnr_db"].mean() == pytest.approx(m["psnr_db"], rel=1e-12)
    with pytest.raises(cae.Error, match="unknown option 'frob'"):
        cae.evaluate(gray_model, gray_dataset, frob=2)
    with pytest.raises(cae.Error, match="--tune: value 0 is not in 1"):
        cae.evaluate(gray_model, gray_dataset, tune=0)
    with pytest.raises(cae.Error, match="cannot open"):
        cae.evaluate(tmp_path / "missing.cae", gray_dataset)
    # Adapting to a photo (cae eval --adapt) takes whole photos, not an IDX set.
    with pytest.raises(cae.Error, match="--adapt: adapting to a photo needs whole photos"):
        cae.evaluate(gray_model, gray_dataset, adapt=5, masks=2, noise=0)
    with pytest.raises(cae.Error, match="--adapt-lr"):
        cae.evaluate(gray_model, gray_dataset, adapt=5, adapt_lr=-1)
    with pytest.raises(cae.Error, match="--adapt-near needs --adapt"):
        cae.evaluate(gray_model, gray_dataset, adapt_near=8, masks=2, noise=0)
    # So does the symmetries' ensemble, which turns whole photos.
    with pytest.raises(cae.Error, match="--ensemble: the symmetries' ensemble repairs whole"):
        cae.evaluate(gray_model, gray_dataset, ensemble=8)


def test_evaluate_scores_inside_the_damage_beside_the_inpainters(gray_model, gray_dataset):
    table = cae.evaluate(gray_model, gray_dataset, limit=20, tune=5, masks=2, noise=0)
    names = [m["name"] for m in table["methods"]]
    assert names[-2:] == ["telea", "navier-stokes"]
    for m in table["methods"]:
        region = table["per_image"][m["name"]]["psnr_db_region"]
        assert region.shape == (20,)
        assert np.nanmean(region) == pytest.approx(m["psnr_db_region"], rel=1e-12)
    plain = cae.evaluate(gray_model, gray_dataset, limit=20, tune=5, no_baselines=True)
    assert "psnr_db_region" not in plain["methods"][0]
    assert "psnr_db_region" not in plain["per_image"]["noisy"]


def test_corrupt_is_the_damage_cae_eval_scores(gray_model, gray_dataset):
    from conftest import read_idx

    model = cae.Autoencoder.load(gray_model)
    test = read_idx(gray_dataset / "t10k-images-idx3-ubyte")[:40]
    clean = test.astype(np.float32) * np.float32(1 / 255)
    noisy = cae.corrupt(clean, model.metadata["corruption"] + " + masks count=2", seed=4, layout="NHW")
    table = cae.evaluate(model, gray_dataset, limit=40, seed=4, masks=2, no_baselines=True)
    per_image_mse = ((noisy.astype(np.float64) - clean) ** 2).mean(axis=(1, 2))
    assert np.allclose(per_image_mse, table["per_image"]["noisy"]["mse"], rtol=1e-9, atol=0)
    # Each image's damage is its own: keyed by its index, whatever the batch.
    assert np.array_equal(cae.corrupt(clean[7:], "gaussian sigma=0.3", seed=1, layout="NHW", first_index=7),
                          cae.corrupt(clean, "gaussian sigma=0.3", seed=1, layout="NHW")[7:])
    assert not np.array_equal(cae.corrupt(clean, seed=1, layout="NHW"), cae.corrupt(clean, seed=2, layout="NHW"))
    # Bytes are damaged as their floats, then rounded as cae rounds.
    as_bytes = cae.corrupt(test, "gaussian sigma=0.3", seed=1, layout="NHW")
    as_floats = cae.corrupt(clean, "gaussian sigma=0.3", seed=1, layout="NHW")
    assert as_bytes.dtype == np.uint8 and as_bytes.shape == test.shape
    assert np.array_equal(as_bytes, np.floor(as_floats * 255 + 0.5).astype(np.uint8))
    # Any size, channels last or first.
    rgb = noise_images(3, (17, 9, 3), 2)
    hwc = cae.corrupt(rgb, "crosshair thickness=3")
    assert hwc.shape == rgb.shape
    assert np.array_equal(cae.corrupt(rgb.transpose(0, 3, 1, 2), "crosshair thickness=3", layout="NCHW"),
                          hwc.transpose(0, 3, 1, 2))
    for args, words in [((clean, "gaussian sigma=-1"), "sigma"), ((clean, "blur radius=2"), "blur"),
                        ((clean.astype(np.float64),), "dtype float64"), (([1, 2],), "expected a NumPy array")]:
        with pytest.raises(cae.Error, match=words):
            cae.corrupt(*args)


def test_the_documented_example_runs(tmp_path):
    """docs/python.md's example, as written there, on a small stand-in for MNIST."""
    from conftest import make_dataset

    text = (REPO / "docs" / "python.md").read_text()
    example = text.split("<!-- example -->")[1].split("```python")[1].split("```")[0]
    train, test = gray_arrays(7)
    make_dataset(tmp_path / "data" / "mnist", train, test)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), MPLBACKEND="Agg",
               CAE_DATA=str(tmp_path / "data"))
    r = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert cae.Autoencoder.load(tmp_path / "runs" / "example" / "model.cae").metadata["epochs"] == "1"
    try:
        import matplotlib  # noqa: F401
        assert (tmp_path / "example.png").stat().st_size > 0
    except ImportError:
        assert "no figure" in r.stdout


def options_of(function):
    """The option names the module knows, from its own unknown-option message."""
    with pytest.raises(cae.Error) as e:
        function(frob=1)
    return set(str(e.value).split(": ", 2)[2].rstrip(")").split(", "))


def test_the_stub_lists_every_option_and_name():
    import ast

    stub = ast.parse((pathlib.Path(cae.__file__).parent / "__init__.pyi").read_text())
    functions = {n.name: n for n in stub.body if isinstance(n, ast.FunctionDef)}
    classes = {n.name for n in stub.body if isinstance(n, ast.ClassDef)}
    for name in cae.__all__:
        assert name in functions or name in classes or name == "__version__", name
    train_kw = {a.arg for a in functions["train"].args.kwonlyargs} - {"progress", "verbose"}
    assert train_kw == options_of(lambda **o: cae.train("mnist", **o))
    eval_kw = {a.arg for a in functions["evaluate"].args.kwonlyargs}
    eval_options = options_of(lambda **o: cae.evaluate("m.cae", "mnist", **o))
    assert eval_kw <= eval_options
    assert eval_options - eval_kw == {"corruption", "noise", "speckle", "salt_pepper", "masks",
                                      "mask_min", "mask_max", "mask_value", "lines", "crosshair",
                                      "line_thickness", "jitter", "line_value", "strokes",
                                      "stroke_min", "stroke_max", "stroke_value"}


def test_load_dataset_gives_the_images_cae_train_reads(gray_dataset, tmp_path):
    from conftest import read_idx

    ds = cae.load_dataset(gray_dataset)
    assert ds["train"].shape == (400, 28, 28, 1) and ds["train"].dtype == np.uint8
    assert np.array_equal(ds["train"][..., 0], read_idx(gray_dataset / "train-images-idx3-ubyte"))
    assert np.array_equal(ds["test"][..., 0], read_idx(gray_dataset / "t10k-images-idx3-ubyte"))
    with pytest.raises(cae.Error, match="mnist"):
        cae.load_dataset("mnist", data=tmp_path / "empty")
    with pytest.raises(cae.Error, match="fit"):
        cae.load_dataset(gray_dataset, fit="stretch")


def test_patch_training_on_a_folder_with_a_validation_split(tmp_path):
    """patch, augment, patches_per_epoch and patience reach the CLI's run; the history has the
    validation scores, and the run's weights are the CLI's."""
    import zlib, struct

    def png(path, image):
        h, w = image.shape
        raw = b"".join(b"\x00" + image[r].tobytes() for r in range(h))
        def chunk(kind, data):
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                         + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))

    rng = np.random.default_rng(0)
    for split, sizes in {"train": [(30, 40), (20, 26)], "val": [(18, 21)], "test": [(25, 19)]}.items():
        (tmp_path / "photos" / split).mkdir(parents=True)
        for i, size in enumerate(sizes):
            png(tmp_path / "photos" / split / f"{i}.png", (rng.random(size) < 0.3).astype(np.uint8) * 255)
    options = dict(patch="12", augment="hflip,rot90", patches_per_epoch=40, batch=20, patience=3,
                   epochs=2, seed=3)
    run = cae.train(tmp_path / "photos", verbose=False, out=tmp_path / "py", **options)
    assert [e["epoch"] for e in run.history] == [1, 2]
    assert all("val_loss" in e for e in run.history)
    assert run.metrics["patch"] == "12x12" and run.metrics["val_images"] == 1
    assert (tmp_path / "py" / "best.cae").exists()
    fitted = cae.load_dataset(tmp_path / "photos", size="12")
    assert fitted["val"].shape == (1, 12, 12, 1) and fitted["train"].shape == (2, 12, 12, 1)
    cli = [a for k, v in options.items() for a in (f"--{k.replace('_', '-')}", v)]
    check_cae("train", "--dataset", tmp_path / "photos", "--out", tmp_path / "cli", *cli)
    x = np.random.default_rng(1).random((4, 12, 12, 1), dtype=np.float32)
    py, cli_model = (cae.Autoencoder.load(tmp_path / d / "model.cae") for d in ("py", "cli"))
    assert np.array_equal(py.denoise(x), cli_model.denoise(x))
