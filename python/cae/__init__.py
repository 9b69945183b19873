"""cae: convolutional autoencoders for image denoising, on oneDNN, with NumPy arrays.

The same engine as the cae command and the C++ API (docs/python.md):

    import cae
    fixed = cae.load_model("inpaint").repair(photo, mask)      # the shipped inpainter
    run = cae.train(dataset="mnist", epochs=5, out="runs/py")    # cae train's options
    clean = run.model.denoise(noisy)      # uint8 or float32, NHWC (or layout="NCHW", ...)
    table = cae.evaluate(run.model, "mnist")                     # cae eval's table

Every failure is a cae.Error (a RuntimeError) carrying the library's message.
"""

import dataclasses
from typing import Any, Callable, Optional

from cae._cae import (
    Autoencoder,
    Error,
    Shape,
    __version__,
    _evaluate,
    _train,
    corrupt,
    get_num_threads,
    load_dataset,
    load_model,
    models,
    set_num_threads,
    version,
)

__all__ = [
    "Autoencoder",
    "Error",
    "Shape",
    "TrainResult",
    "corrupt",
    "evaluate",
    "get_num_threads",
    "load_dataset",
    "load_model",
    "models",
    "set_num_threads",
    "train",
    "version",
    "__version__",
]


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What cae.train() gives back.

    model:   the trained model (out/model.cae); after a stop, the last checkpoint's weights
             (out/checkpoint.cae), or None when no epoch was completed.
    history: one dict per epoch, resumed epochs included: epoch, train_loss, test_loss,
             test_bce, test_psnr_noisy, test_psnr_output, seconds, images_per_second.
    metrics: what out/metrics.json holds (None after a stop).
    stopped: True when the progress callback returned False.
    out:     the output directory.
    """

    model: Optional[Autoencoder]
    history: list
    metrics: Optional[dict]
    stopped: bool
    out: str


def train(
    dataset: Any = "mnist",
    *,
    progress: Optional[Callable[[int, int, float, float], Any]] = None,
    verbose: bool = True,
    **options: Any,
) -> TrainResult:
    """Trains a model as `cae train` does, with its options as keyword arguments.

    dataset: a name or path as for --dataset ("mnist", "fashion-mnist", "photos", a directory
      of IDX files or a folder of images); or NumPy arrays: (train, test) of uint8 images
      (N, H, W) or (N, H, W, C), or a dict with "train", "test" and optionally
      "train_targets" and "test_targets" (what the model is to output for each image: pairs are
      trained as given, without damage, unless a corruption option is given).
    options: every option of `cae train --help`, spelled with underscores: preset="seed",
      spec=..., epochs=100, batch=200, micro_batch=..., lr=0.001, optimizer="adam", loss="bce",
      noise=0.5, masks=..., corruption="...", seed=0, out="runs/seed", resume=False,
      limit=..., threads=..., backend="dnnl", patch="64", augment="hflip,vflip,rot90",
      patches_per_epoch=..., patience=..., ...  The defaults and the checks are the CLI's:
      an unknown option or a bad value raises cae.Error before anything runs. Flags take True
      or False; threads defaults to cae.get_num_threads().
    progress: called after every step as progress(epoch, step, loss, images_per_second);
      returning False (not None) stops the run after that step.
    verbose: print the CLI's progress lines on stderr.

    Writes out/checkpoint.cae and losses.csv after every epoch (and best.cae with a validation
    split) and model.cae and metrics.json at the end, as the CLI does; with a validation split
    each epoch of the history also has val_loss, val_bce, val_psnr_noisy and val_psnr_output. A stop, Ctrl-C (KeyboardInterrupt, raised after the current
    step) or an exception of the callback leaves the last epoch's checkpoint loadable;
    train(..., resume=True) with the same options continues it to the weights an uninterrupted
    run reaches.
    """
    result = _train(dataset, progress, verbose, options)
    return TrainResult(**result)


def evaluate(model: Any, dataset: Any = "mnist", **options: Any) -> dict:
    """Scores a model as `cae eval` does, with its options as keyword arguments.

    model: an Autoencoder, or the path of a model file. dataset: as for train() (its test
    images, and test targets if given, are used). options: those of `cae eval --help` with
    underscores: limit=..., seed=0, tune=100, no_baselines=False, adapt=0, adapt_lr=1e-3 and
    adapt_near=0 (photo folders: adapt the model to each photo first), ensemble=1 (photo
    folders: average the repairs of the photo flipped and turned, 1, 2, 4 or 8), the corruption
    options (default: the corruption the model was trained for), json=PATH, csv=PATH,
    threads=...

    Returns cae eval --json's table as a dict: corruption, seed, images, tune_images, and
    methods (name, setting, mse, psnr_db, ssim, bce for the noisy input, the model and each
    baseline), plus per_image: {method: {"mse", "psnr_db", "ssim", "bce": arrays}}.
    """
    return _evaluate(model, dataset, options)
