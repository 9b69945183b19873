# Types of the Python module cae (docs/python.md), for editors and type checkers.
import os
from typing import Literal, NamedTuple, Optional, Union

import numpy as np
import numpy.typing as npt

__version__: str

Path = Union[str, os.PathLike[str]]
Layout = Literal["NHWC", "HWC", "NCHW", "CHW", "NHW", "HW"]
ImageArray = Union[npt.NDArray[np.uint8], npt.NDArray[np.float32]]

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
