"""Bad input of every kind raises cae.Error with a message that says what was wrong, before any
work, and never takes the interpreter down."""

import pathlib
import struct
import zlib

import numpy as np
import pytest

import cae


@pytest.fixture(scope="module")
def model(gray_model):
    return cae.Autoencoder.load(gray_model)


@pytest.fixture(scope="module")
def flat_model(tmp_path_factory, gray_dataset):
    from conftest import check_cae

    out = tmp_path_factory.mktemp("flat")
    check_cae("train", "--dataset", gray_dataset, "--spec", "conv 4 relu; conv channels",
              "--epochs", 1, "--batch", 100, "--out", out)
    return cae.Autoencoder.load(out / "model.cae")


def gray(*shape, dtype=np.float32):
    return np.full(shape, 0.5 if dtype == np.float32 else 128, dtype)


nan_batch = gray(2, 28, 28, 1)
nan_batch[1, 3, 4, 0] = np.nan
inf_batch = gray(2, 1, 28, 28)
inf_batch[0, 0, 0, 0] = -np.inf

BAD_IMAGES = [
    # what, arguments to denoise, words the message must hold
    ("float64", (gray(2, 28, 28, 1).astype(np.float64),), "dtype float64 is not uint8 or float32"),
    ("int32", (gray(2, 28, 28, 1).astype(np.int32),), "dtype int32"),
    ("bool", (np.zeros((2, 28, 28, 1), bool),), "dtype bool"),
    ("big-endian", (gray(2, 28, 28, 1).astype(">f4"),), "is not uint8 or float32"),
    ("a list", ([[0.5] * 28] * 28,), "expected a NumPy array, found list"),
    ("None", (None,), "expected a NumPy array, found NoneType"),
    ("0-d", (np.array(0.5, np.float32),), "0 dimension(s) holds no images"),
    ("1-d", (gray(784),), "1 dimension(s) holds no images"),
    ("5-d", (gray(1, 2, 28, 28, 1),), "5 dimension(s)"),
    ("channels", (gray(2, 28, 28, 3),), "needs an array of shape (N, 28, 28, 1) here, found (2, 28, 28, 3)"),
    ("height", (gray(2, 27, 28, 1),), "found (2, 27, 28, 1)"),
    ("a gray batch as HWC", (gray(5, 28, 28),), "give layout='NHW'"),
    ("NCHW read as NHWC", (gray(2, 1, 28, 28),), "found (2, 1, 28, 28)"),
    ("unknown layout", (gray(2, 28, 28, 1), "NWHC"), "unknown layout 'NWHC'"),
    ("layout not text", (gray(2, 28, 28, 1), 4), "layout must be a string"),
    ("layout of other rank", (gray(2, 28, 28, 1), "HWC"), "layout HWC needs an array of 3 dimensions, found 4"),
    ("HW layout of a batch", (gray(2, 28, 28), "HW"), "layout HW needs an array of 2 dimensions"),
    ("NaN", (nan_batch,), "holds nan"),
    ("-Inf", (inf_batch, "NCHW"), "holds -inf"),
]


@pytest.mark.parametrize("what,args,words", BAD_IMAGES, ids=[c[0] for c in BAD_IMAGES])
def test_bad_images_raise_cae_error(model, what, args, words):
    with pytest.raises(cae.Error) as e:
        model.denoise(*args)
    assert words in str(e.value)
    assert str(e.value).startswith("denoise: ")


def test_cae_error_is_a_runtime_error():
    assert issubclass(cae.Error, RuntimeError)
    assert cae.Error.__module__ == "cae" and cae.Error.__name__ == "Error"


def test_encode_decode_errors(model, flat_model):
    with pytest.raises(cae.Error, match="encode: dtype float64"):
        model.encode(gray(1, 28, 28, 1).astype(np.float64))
    with pytest.raises(cae.Error, match=r"decode: layout NHWC needs an array of shape \(N, 4, 4, 16\)"):
        model.decode(gray(2, 4, 4, 8))
    with pytest.raises(cae.Error, match="decode: dtype uint8 is not float32"):
        model.decode(gray(2, 4, 4, 16, dtype=np.uint8))
    with pytest.raises(cae.Error, match="holds nan"):
        model.decode(np.full((1, 16, 4, 4), np.nan, np.float32), layout="NCHW")
    for call in (lambda: flat_model.latent_shape, lambda: flat_model.encode(gray(1, 28, 28, 1))):
        with pytest.raises(cae.Error, match="no latent code"):
            call()
    assert flat_model.denoise(gray(1, 28, 28, 1)).shape == (1, 28, 28, 1)


def test_files_that_are_not_models(tmp_path, gray_model):
    with pytest.raises(cae.Error, match="nowhere.cae"):
        cae.Autoencoder.load(tmp_path / "nowhere.cae")
    with pytest.raises(cae.Error, match="it is a directory"):
        cae.Autoencoder.load(tmp_path)
    (tmp_path / "text.cae").write_text("not a model\n")
    with pytest.raises(cae.Error, match="text.cae"):
        cae.Autoencoder.load(tmp_path / "text.cae")
    data = bytearray(gray_model.read_bytes())
    with pytest.raises(cae.Error, match="truncated"):
        cae.Autoencoder.from_bytes(bytes(data[: len(data) // 2]), "truncated")
    data[len(data) // 3] ^= 1
    with pytest.raises(cae.Error, match="checksum"):
        cae.Autoencoder.from_bytes(bytes(data), "flipped")
    with pytest.raises(cae.Error, match="expected a path"):
        cae.Autoencoder.load(42)
    with pytest.raises(cae.Error, match="expected bytes"):
        cae.Autoencoder.from_bytes("a string")
    model = cae.Autoencoder.load(gray_model)
    with pytest.raises(cae.Error, match="missing-dir"):
        model.save(tmp_path / "missing-dir" / "m.cae")


def test_thread_counts_out_of_range():
    for n in (0, -1, 1025):
        with pytest.raises(cae.Error, match=f"value {n} is not in 1 … 1024"):
            cae.set_num_threads(n)


def with_meta(source, key, value):
    """The bytes of the model file `source` with meta `key` set to `value` (added when absent),
    rewritten field by field as docs/model-format.md lays the file out: a forged file whose
    checksum holds, for the checks that read the meta."""
    b = pathlib.Path(source).read_bytes()
    pos = 20

    def take(fmt):
        nonlocal pos
        values = struct.unpack_from("<" + fmt, b, pos)
        pos += struct.calcsize("<" + fmt)
        return values

    def text():
        (n,) = take("I")
        return bytes(take(f"{n}s")[0]).decode()

    kind, spec = text(), text()
    meta = dict((text(), text()) for _ in range(take("I")[0]))
    meta[key] = value
    tensors = []
    for _ in range(take("I")[0]):
        name = text()
        (rank,) = take("I")
        shape = take(f"{rank}q")
        dtype, nbytes = take("IQ")
        pos = (pos + 63) // 64 * 64
        tensors.append((name, shape, dtype, b[pos : pos + nbytes]))
        pos += nbytes
    out = bytearray(b"CAEMODEL" + struct.pack("<IQ", 1, 0))

    def put(t):
        out.extend(struct.pack("<I", len(t.encode())) + t.encode())

    put(kind)
    put(spec)
    out += struct.pack("<I", len(meta))
    for k, v in meta.items():
        put(k)
        put(v)
    out += struct.pack("<I", len(tensors))
    for name, shape, dtype, data in tensors:
        put(name)
        out += struct.pack(f"<I{len(shape)}qIQ", len(shape), *shape, dtype, len(data))
        out += bytes(-len(out) % 64) + data
    out[12:20] = struct.pack("<Q", len(out) + 4)
    return bytes(out + struct.pack("<I", zlib.crc32(out)))


@pytest.mark.parametrize("fill,words", [("telea r=3", "the model must be informed"),
                                        ("bogus r=3", "the inpainter must be telea or navier-stokes")])
def test_a_fill_the_model_cannot_take_is_refused_when_read(tmp_path, gray_model, gray_dataset, fill, words):
    # gray_model is blind (and bce): no fill can be on it, and no loader may take one that is.
    path = tmp_path / "forged.cae"
    path.write_bytes(with_meta(gray_model, "fill", fill))
    for load in (lambda: cae.Autoencoder.load(path),
                 lambda: cae.Autoencoder.from_bytes(path.read_bytes(), str(path)),
                 lambda: cae.evaluate(path, gray_dataset, no_baselines=True)):
        with pytest.raises(cae.Error) as e:
            load()
        assert str(e.value).startswith(f"{path}: meta fill '{fill}': ")
        assert words in str(e.value)
    # The writer above changes only what it is told: a value the file holds gives it back.
    assert with_meta(gray_model, "epochs", "1") == gray_model.read_bytes()
