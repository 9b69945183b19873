"""cae.Autoencoder: the same bits as the cae program, every layout, no copies, threads."""

import os
import pickle
import shutil
import threading
import time
import tracemalloc

import numpy as np
import pytest

import cae
from conftest import check_cae, noise_images, read_idx, write_idx


def cli_denoise_idx(model_path, images, tmp_path):
    """cae denoise --idx on images (n, h, w[, c]) uint8, with this process's thread count."""
    write_idx(tmp_path / "in-idx3-ubyte", images)
    check_cae("denoise", "-m", model_path, "--idx", tmp_path / "in-idx3-ubyte", "-o",
              tmp_path / "out-idx3-ubyte", "--threads", cae.get_num_threads())
    return read_idx(tmp_path / "out-idx3-ubyte")


@pytest.mark.parametrize("count", [1, 3, 64, 65, 200])
def test_denoise_bytes_equals_cae_denoise_bit_for_bit(gray_model, tmp_path, count):
    model = cae.Autoencoder.load(gray_model)
    images = (np.random.default_rng(count).random((count, 28, 28)) * 255).astype(np.uint8)
    expected = cli_denoise_idx(gray_model, images, tmp_path)
    assert np.array_equal(model.denoise(images, layout="NHW"), expected)
    assert np.array_equal(model.denoise(images[..., None]), expected[..., None])


def test_denoise_rgb_equals_cae_denoise_in_every_layout(rgb_model, tmp_path):
    model = cae.Autoencoder.load(rgb_model)
    images = noise_images(7, (12, 10, 3), 9, on=0.5)
    expected = cli_denoise_idx(rgb_model, images, tmp_path)  # NHWC
    assert np.array_equal(model.denoise(images), expected)
    assert np.array_equal(model.denoise(images.transpose(0, 3, 1, 2), layout="NCHW"),
                          expected.transpose(0, 3, 1, 2))
    assert np.array_equal(model.denoise(images[2]), expected[2])
    assert np.array_equal(model.denoise(images[2].transpose(2, 0, 1), layout="CHW"),
                          expected[2].transpose(2, 0, 1))


def test_floats_come_back_in_the_layout_they_came_in(rgb_model):
    model = cae.Autoencoder.load(rgb_model)
    nhwc = np.random.default_rng(1).random((5, 12, 10, 3), dtype=np.float32)
    out = model.denoise(nhwc)
    assert out.shape == nhwc.shape and out.dtype == np.float32 and out.flags.c_contiguous
    assert out.min() >= 0 and out.max() <= 1
    nchw = np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))
    assert np.array_equal(model.denoise(nchw, layout="NCHW"), out.transpose(0, 3, 1, 2))
    assert np.array_equal(model.denoise(nhwc[3]), out[3])
    assert np.array_equal(model.denoise(nchw[3], layout="CHW"), out[3].transpose(2, 0, 1))
    # Bytes are the floats of the same pixels, rounded as cae rounds (half away from zero).
    pixels = (nhwc * 255).astype(np.uint8)
    floats = model.denoise(pixels.astype(np.float32) * np.float32(1 / 255))
    assert np.abs(model.denoise(pixels).astype(int) - np.floor(floats * 255 + 0.5)).max() <= 1


def test_gray_layouts_agree(gray_model):
    model = cae.Autoencoder.load(gray_model)
    x = np.random.default_rng(2).random((4, 28, 28), dtype=np.float32)
    out = model.denoise(x, layout="NHW")
    assert out.shape == (4, 28, 28)
    assert np.array_equal(model.denoise(x[:, None], layout="NCHW")[:, 0], out)
    assert np.array_equal(model.denoise(x[..., None])[..., 0], out)
    assert np.array_equal(model.denoise(x[1]), out[1])
    assert np.array_equal(model.denoise(x[1], layout="HW"), out[1])


def test_views_and_other_memory_orders_give_the_same_result(rgb_model):
    model = cae.Autoencoder.load(rgb_model)
    base = noise_images(6, (12, 10, 3), 11, on=0.5)
    expected = model.denoise(np.ascontiguousarray(base[::-1]))
    reversed_view = base[::-1]
    fortran = np.asfortranarray(base[::-1])
    readonly = np.ascontiguousarray(base[::-1])
    readonly.flags.writeable = False
    strided = np.zeros((6, 24, 10, 3), np.uint8)[:, ::2]
    strided[...] = base[::-1]
    for view in (reversed_view, fortran, readonly, strided):
        assert np.array_equal(model.denoise(view), expected)
    floats = base.astype(np.float32) / 255
    assert np.array_equal(model.denoise(floats[::-1]), model.denoise(np.ascontiguousarray(floats[::-1])))


def test_empty_batch_is_an_empty_answer(gray_model):
    model = cae.Autoencoder.load(gray_model)
    for dtype in (np.uint8, np.float32):
        out = model.denoise(np.zeros((0, 28, 28, 1), dtype))
        assert out.shape == (0, 28, 28, 1) and out.dtype == dtype
    assert model.encode(np.zeros((0, 28, 28, 1), np.float32)).shape == (0, 4, 4, 16)


def peak_traced_bytes(call):
    """The most memory NumPy (and anything else tracemalloc sees) held beyond the start, in call."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        call()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_no_copy_where_the_memory_already_has_the_engines_layout(rgb_model, gray_model):
    rgb = cae.Autoencoder.load(rgb_model)
    gray = cae.Autoencoder.load(gray_model)
    nchw = np.random.default_rng(3).random((2000, 3, 12, 10), dtype=np.float32)  # 2.9 MB
    pixels = noise_images(2000, (12, 10, 3), 4)
    gray_floats = np.random.default_rng(5).random((500, 28, 28, 1), dtype=np.float32)  # 1.6 MB
    small = 64 * 1024  # array headers and views; the outputs live in C++ memory
    assert peak_traced_bytes(lambda: rgb.denoise(nchw, layout="NCHW")) < small
    assert peak_traced_bytes(lambda: rgb.denoise(pixels)) < small
    assert peak_traced_bytes(lambda: gray.denoise(gray_floats)) < small  # one channel: NHWC is NCHW
    # A channels-last float batch of several channels has to be rearranged: copied once.
    nhwc = np.ascontiguousarray(nchw.transpose(0, 2, 3, 1))
    assert peak_traced_bytes(lambda: rgb.denoise(nhwc)) >= nhwc.nbytes


def test_encode_and_decode(gray_model, rgb_model):
    model = cae.Autoencoder.load(gray_model)
    assert model.image_shape == (1, 28, 28) and model.image_shape.channels == 1
    assert model.latent_shape == cae.Shape(channels=16, height=4, width=4)
    x = np.random.default_rng(6).random((3, 28, 28, 1), dtype=np.float32)
    codes = model.encode(x)
    assert codes.shape == (3, 4, 4, 16) and codes.dtype == np.float32
    assert np.allclose(model.decode(codes), model.denoise(x), atol=1e-5)
    nchw = model.encode(x[..., 0][:, None], layout="NCHW")
    assert nchw.shape == (3, 16, 4, 4)
    assert np.array_equal(nchw.transpose(0, 2, 3, 1), codes)
    assert model.encode(x[..., 0], layout="NHW").shape == (3, 4, 4, 16)
    assert model.decode(codes[0]).shape == (28, 28, 1)
    assert np.array_equal(model.encode((x * 255).astype(np.uint8)),
                          model.encode((x * 255).astype(np.uint8).astype(np.float32) * np.float32(1 / 255)))
    rgb = cae.Autoencoder.load(rgb_model)
    assert rgb.latent_shape == (4, 6, 5)
    y = np.random.default_rng(7).random((2, 12, 10, 3), dtype=np.float32)
    assert np.allclose(rgb.decode(rgb.encode(y)), rgb.denoise(y), atol=1e-5)


def test_save_load_bytes_and_pickle(gray_model, tmp_path):
    model = cae.Autoencoder.load(str(gray_model))
    assert model.metadata["loss"] == "bce"
    assert model.metadata["corruption"] == "gaussian sigma=0.5"
    assert model.metadata["epochs"] == "1"
    x = noise_images(5, (28, 28), 8)
    expected = model.denoise(x, layout="NHW")
    model.save(tmp_path / "copy.cae")
    for again in (cae.Autoencoder.load(tmp_path / "copy.cae"),
                  cae.Autoencoder.from_bytes(model.to_bytes(), "copy"),
                  pickle.loads(pickle.dumps(model))):
        assert np.array_equal(again.denoise(x, layout="NHW"), expected)
        assert again.metadata == model.metadata
    checkpoint = cae.Autoencoder.load(gray_model.parent / "checkpoint.cae")
    assert np.array_equal(checkpoint.denoise(x, layout="NHW"), expected)
    checkpoint.save(tmp_path / "from-checkpoint.cae")
    check_cae("info", tmp_path / "from-checkpoint.cae")
    assert "Autoencoder 1x28x28" in repr(model)


def test_threads_run_models_at_once_with_the_gil_released(gray_model):
    models = [cae.Autoencoder.load(gray_model) for _ in range(2)]
    x = np.random.default_rng(9).random((1000, 28, 28, 1), dtype=np.float32)
    expected = models[0].denoise(x)
    results = [None, None]

    def work(i):
        results[i] = models[i].denoise(x)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    # While the kernels run, this thread keeps running Python: the GIL is not held by them.
    ticks = 0
    while any(t.is_alive() for t in threads):
        ticks += 1
        time.sleep(0.001)
    for t in threads:
        t.join()
    assert all(np.array_equal(r, expected) for r in results)
    assert ticks >= 5
    # One model shared by threads runs their calls one at a time, with the same results.
    shared = [None] * 3

    def work_shared(i):
        shared[i] = models[0].denoise(x[:100])

    threads = [threading.Thread(target=work_shared, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(r, expected[:100]) for r in shared)


def test_thread_count_is_set_for_every_thread():
    before = cae.get_num_threads()
    try:
        cae.set_num_threads(1)
        assert cae.get_num_threads() == 1
        seen = []
        t = threading.Thread(target=lambda: seen.append(cae.get_num_threads()))
        t.start()
        t.join()
        assert seen == [1]
    finally:
        cae.set_num_threads(before)


def test_repair_equals_cae_repair_bit_for_bit(inpaint_model, tmp_path):
    from conftest import read_png, write_png

    model = cae.Autoencoder.load(inpaint_model)
    assert model.informed
    rng = np.random.default_rng(3)
    image = (rng.random((37, 45, 3)) * 255).astype(np.uint8)
    mask = np.zeros((37, 45), np.uint8)
    mask[10:14, 5:40] = 255
    mask[20:30, 30] = 1
    write_png(tmp_path / "photo.png", image)
    write_png(tmp_path / "mask.png", mask)
    check_cae("repair", tmp_path / "photo.png", "--mask", tmp_path / "mask.png", "-m",
              inpaint_model, "-o", tmp_path / "out.png", "--threads", cae.get_num_threads())
    expected = read_png(tmp_path / "out.png")
    repaired = model.repair(image, mask)
    assert repaired.dtype == np.uint8 and repaired.shape == image.shape
    assert np.array_equal(repaired, expected)
    assert np.array_equal(repaired[mask == 0], image[mask == 0])
    assert not np.array_equal(repaired[mask != 0], image[mask != 0])
    # Any dtype of mask: bool, float.
    assert np.array_equal(model.repair(image, mask != 0), expected)
    assert np.array_equal(model.repair(image, mask.astype(np.float32)[..., None]), expected)

    # 16-bit RGBA: 16-bit out, the alpha untouched, as cae repair writes it.
    wide = np.concatenate([image.astype(np.uint16) * 257 + 5,
                           rng.integers(0, 65536, (37, 45, 1), dtype=np.uint16)], axis=-1)
    write_png(tmp_path / "wide.png", wide)
    check_cae("repair", tmp_path / "wide.png", "--mask", tmp_path / "mask.png", "-m",
              inpaint_model, "-o", tmp_path / "wide-out.png", "--threads", cae.get_num_threads())
    repaired16 = model.repair(wide, mask)
    assert repaired16.dtype == np.uint16
    assert np.array_equal(repaired16, read_png(tmp_path / "wide-out.png"))
    assert np.array_equal(repaired16[..., 3], wide[..., 3])

    # Adapted: the same as cae repair --adapt with the same seed.
    check_cae("repair", tmp_path / "photo.png", "--mask", tmp_path / "mask.png", "-m",
              inpaint_model, "-o", tmp_path / "adapted.png", "--adapt", 3, "--seed", 4,
              "--threads", cae.get_num_threads())
    assert np.array_equal(model.repair(image, mask, adapt=3, seed=4),
                          read_png(tmp_path / "adapted.png"))


def test_repair_refuses_what_does_not_fit(inpaint_model, gray_model):
    model = cae.Autoencoder.load(inpaint_model)
    image = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(cae.Error, match="the mask's shape is"):
        model.repair(image, np.zeros((20, 21), np.uint8))
    with pytest.raises(cae.Error, match="uint8 .0-255., uint16 .0-65535. or float32"):
        model.repair(image.astype(np.int32), np.zeros((20, 20)))
    with pytest.raises(cae.Error, match="expected a number from 0 to 1"):
        model.repair(np.full((20, 20, 3), 1.5, np.float32), np.zeros((20, 20)))
    with pytest.raises(cae.Error, match="the model is informed"):
        model.denoise(np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(cae.Error, match="the model is blind"):
        cae.Autoencoder.load(gray_model).repair(np.zeros((28, 28), np.uint8), np.ones((28, 28)))


def test_shipped_models_by_name(inpaint_model, gray_model, tmp_path, monkeypatch):
    # $CAE_MODELS, when set, is the one folder searched: NAME.cae there stand in for the shipped models.
    shutil.copy(inpaint_model, tmp_path / "inpaint.cae")
    shutil.copy(gray_model, tmp_path / "denoise.cae")
    monkeypatch.setenv("CAE_MODELS", str(tmp_path))
    found = {m["name"]: m["path"] for m in cae.models()}
    assert found["inpaint"] == str(tmp_path / "inpaint.cae")
    assert found["denoise"] == str(tmp_path / "denoise.cae")
    model = cae.load_model("inpaint")
    assert model.informed and model.name == str(tmp_path / "inpaint.cae")
    assert not cae.load_model("denoise").informed
    assert cae.load_model(inpaint_model).to_bytes() == model.to_bytes()  # a path works too
    with pytest.raises(cae.Error, match="no shipped model of that name .shipped: denoise, inpaint"):
        cae.load_model("nonesuch")


def _bf16_here():
    """Whether this CPU has AVX512_BF16 and no cap below AVX-512 is set (core/isa.h)."""
    with open("/proc/cpuinfo") as f:
        flags = next((line for line in f if line.startswith("flags")), "").split()
    capped = os.environ.get("CAE_MAX_ISA", "") not in ("", "avx512") or \
        os.environ.get("ONEDNN_MAX_CPU_ISA", "") not in ("", "ALL", "all")
    return "avx512_bf16" in flags and not capped


def test_bf16_from_the_environment_runs_close_to_f32_or_is_refused(gray_model, monkeypatch):
    """CAE_PRECISION=bf16 reaches the Python module's executors: within bf16's rounding of the
    f32 output where the CPU has AVX512_BF16, else the one error saying why."""
    images = (np.random.default_rng(5).random((16, 28, 28, 1)) * 255).astype(np.uint8)
    f32 = cae.Autoencoder.load(gray_model).denoise(images.astype(np.float32) / 255)
    monkeypatch.setenv("CAE_PRECISION", "bf16")
    model = cae.Autoencoder.load(gray_model)
    if not _bf16_here():
        with pytest.raises(cae.Error, match="bf16 needs a CPU with AVX512_BF16"):
            model.denoise(images)
        return
    bf16 = model.denoise(images.astype(np.float32) / 255)
    diff = np.abs(bf16 - f32)
    assert diff.max() < 0.05 and diff.mean() < 5e-3
    assert diff.max() > 0, "the same bits as f32: did bf16 run?"
