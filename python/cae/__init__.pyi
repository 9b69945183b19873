# Types of the Python module cae (docs/python.md), for editors and type checkers.
import os
from typing import Any, Callable, Literal, NamedTuple, Optional, TypedDict, Union

import numpy as np
import numpy.typing as npt

__version__: str

Path = Union[str, os.PathLike[str]]
Layout = Literal["NHWC", "HWC", "NCHW", "CHW", "NHW", "HW"]
ImageArray = Union[npt.NDArray[np.uint8], npt.NDArray[np.float32]]
# A photo for repair(): HxW or HxWxC, any size.
PhotoArray = Union[npt.NDArray[np.uint8], npt.NDArray[np.uint16], npt.NDArray[np.float32]]

class Error(RuntimeError):
    """A failure of cae: bad input, file, spec or option, or an I/O error."""

class Shape(NamedTuple):
    """One image's or latent code's shape, in NCHW's order whatever the arrays' layout."""

    channels: int
    height: int
    width: int

class Autoencoder:
    """A trained cae model, ready to run on NumPy arrays."""

    @staticmethod
    def load(path: Path) -> Autoencoder: ...
    @staticmethod
    def from_bytes(data: Union[bytes, bytearray, memoryview], name: str = ...) -> Autoencoder: ...
    def to_bytes(self) -> bytes: ...
    def save(self, path: Path) -> None: ...
    def denoise(self, images: ImageArray, layout: Optional[Layout] = None) -> ImageArray: ...
    def repair(
        self,
        image: PhotoArray,
        mask: npt.NDArray[Any],
        adapt: int = 0,
        adapt_lr: float = 0.001,
        adapt_near: int = 0,
        ensemble: int = 1,
        seed: int = 0,
    ) -> PhotoArray: ...
    @property
    def informed(self) -> bool: ...
    def encode(self, images: ImageArray, layout: Optional[Layout] = None) -> npt.NDArray[np.float32]: ...
    def decode(
        self, codes: npt.NDArray[np.float32], layout: Optional[Layout] = None
    ) -> npt.NDArray[np.float32]: ...
    @property
    def image_shape(self) -> Shape: ...
    @property
    def latent_shape(self) -> Shape: ...
    @property
    def metadata(self) -> dict[str, str]: ...
    @property
    def name(self) -> str: ...

def version() -> str: ...
def get_num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...

# cae.train(dataset, ...): a name or path as --dataset takes it, (train, test) uint8 arrays
# (N, H, W) or (N, H, W, C), or a dict of them with optional targets.
class ArrayDataset(TypedDict, total=False):
    train: npt.NDArray[np.uint8]
    test: npt.NDArray[np.uint8]
    train_targets: npt.NDArray[np.uint8]
    test_targets: npt.NDArray[np.uint8]
    name: str

Dataset = Union[Path, tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]], ArrayDataset]
Progress = Callable[[int, int, float, float], Optional[bool]]

class TrainResult:
    model: Optional[Autoencoder]
    history: list[dict[str, float]]
    metrics: Optional[dict[str, Any]]
    stopped: bool
    out: str

# The keyword options are cae train's (cae train --help), with its defaults; listed here for
# editors. Any of them may also be None (left out).
def train(
    dataset: Dataset = "mnist",
    *,
    progress: Optional[Progress] = None,
    verbose: bool = True,
    preset: str = "seed",
    spec: str = ...,
    epochs: int = 100,
    batch: int = 200,
    micro_batch: int = ...,
    lr: float = 0.001,
    lr_schedule: str = "constant",
    optimizer: Literal["adam", "sgd"] = "adam",
    momentum: float = 0.9,
    loss: Literal["bce", "mse"] = "bce",
    corruption: str = ...,
    noise: float = 0.5,
    speckle: float = 0.0,
    salt_pepper: float = 0.0,
    masks: int = 0,
    mask_min: int = 4,
    mask_max: int = 8,
    mask_value: float = 0.0,
    lines: int = 0,
    crosshair: bool = False,
    line_thickness: int = 1,
    jitter: int = 2,
    line_value: float = 1.0,
    strokes: int = 0,
    stroke_min: int = 4,
    stroke_max: int = 8,
    stroke_value: float = 1.0,
    seed: int = 0,
    out: Path = "runs/seed",
    resume: bool = False,
    patch: str = ...,
    augment: str = "none",
    patches_per_epoch: int = ...,
    patience: int = 0,
    time_limit: float = 0.0,
    informed: bool = False,
    fill: str = ...,
    limit: int = 0,
    test_limit: int = 0,
    threads: int = ...,
    backend: Literal["dnnl", "ref", "cuda"] = "dnnl",
    device: Literal["cpu", "cuda"] = "cpu",
    precision: Literal["f32", "bf16"] = ...,
    data: Path = ...,
    size: str = ...,
    fit: Literal["resize", "crop"] = "resize",
    sync_grads: bool = False,
) -> TrainResult: ...

# cae eval's options (cae eval --help); the corruption options default to the model's own.
def evaluate(
    model: Union[Autoencoder, Path],
    dataset: Dataset = "mnist",
    *,
    limit: int = 0,
    seed: int = 0,
    tune: int = 100,
    adapt: int = 0,
    adapt_lr: float = 1e-3,
    adapt_near: int = 0,
    ensemble: Literal[1, 2, 4, 8] = 1,
    no_baselines: bool = False,
    json: Path = ...,
    csv: Path = ...,
    threads: int = ...,
    backend: Literal["dnnl", "ref", "cuda"] = "dnnl",
    device: Literal["cpu", "cuda"] = "cpu",
    precision: Literal["f32", "bf16"] = ...,
    data: Path = ...,
    size: str = ...,
    fit: Literal["resize", "crop"] = "resize",
    **corruption_options: Any,
) -> dict[str, Any]: ...
def corrupt(
    images: ImageArray,
    corruption: str = "gaussian sigma=0.5",
    seed: int = 0,
    layout: Optional[Layout] = None,
    first_index: int = 0,
) -> ImageArray: ...
def models() -> list[dict[str, str]]: ...
def load_model(name: Path) -> Autoencoder: ...
def load_dataset(
    name: Path = "mnist", data: Optional[Path] = None, size: str = "", fit: str = "resize"
) -> dict[str, Any]: ...
