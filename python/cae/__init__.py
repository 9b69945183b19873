"""cae: convolutional autoencoders for image denoising, on oneDNN, with NumPy arrays.

The same engine as the cae command and the C++ API (docs/python.md):

    import cae
    model = cae.Autoencoder.load("model.cae")
    clean = model.denoise(noisy)          # uint8 or float32, NHWC (or layout="NCHW", ...)

Every failure is a cae.Error (a RuntimeError) carrying the library's message.
"""

from cae._cae import (
    Autoencoder,
    Error,
    Shape,
    __version__,
    get_num_threads,
    set_num_threads,
    version,
)

__all__ = [
    "Autoencoder",
    "Error",
    "Shape",
    "get_num_threads",
    "set_num_threads",
    "version",
    "__version__",
]
