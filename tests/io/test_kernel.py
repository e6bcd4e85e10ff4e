"""Kernel files: exact .npy, 16-bit PNG round trip, refusal of anything not a blur kernel."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image

from deblurkit.errors import DeblurkitError, ImageError, KernelError
from deblurkit.io import read_image, read_kernel, write_kernel


@pytest.fixture
def kernel() -> np.ndarray:
    """A 9 x 13 anisotropic Gaussian streak (constructed, sums to 1), float32."""
    y, x = np.mgrid[-4:5, -6:7].astype(np.float64)
    k = np.exp(-(x**2 / 18.0 + y**2 / 2.0))
    k[0, 0] = 0.0
    return (k / k.sum()).astype(np.float32)


def test_round_trip_npy_exact_png_within_quantisation(tmp_path, kernel):
    paths = write_kernel(tmp_path / "k.npy", kernel)
    assert paths == [tmp_path / "k.npy", tmp_path / "k.png", tmp_path / "k_view.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.npy", "k.png", "k_view.png"]

    got = read_kernel(paths[0])
    assert got.dtype == np.float32 and got.shape == kernel.shape
    np.testing.assert_array_equal(got, kernel)  # bit for bit

    png = read_image(paths[1])
    assert png.bit_depth == 16 and png.pixels.shape == (9, 13, 1)
    assert png.pixels.max() == 1.0  # scaled so that the maximum is 65535
    q = np.rint(kernel.astype(np.float64) / kernel.max() * 65535)  # the stored 16-bit values
    from_png = read_kernel(paths[1])
    assert from_png.dtype == np.float32 and abs(float(from_png.sum(dtype=np.float64)) - 1) < 1e-6
    np.testing.assert_allclose(from_png, q / q.sum(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(from_png, kernel, atol=kernel.max() / 65535)


def test_view_image_is_nearest_neighbour_enlargement(tmp_path, kernel):
    _, _, view = write_kernel(tmp_path / "k", kernel)
    v = read_image(view)
    factor = 10  # ceil(128 / 13): the longer side becomes 130 >= 128
    assert v.bit_depth == 8 and v.pixels.shape == (9 * factor, 13 * factor, 1)
    expected = np.rint(kernel.astype(np.float64) / kernel.max() * 255)
    blocks = np.rint(v.pixels[..., 0] * 255).reshape(9, factor, 13, factor)
    assert (blocks == blocks[:, :1, :, :1]).all()  # constant blocks
    np.testing.assert_array_equal(blocks[:, 0, :, 0], expected)


def test_big_kernel_view_is_not_enlarged(tmp_path):
    k = np.full((130, 3), 1 / 390, np.float32)
    _, png, view = write_kernel(tmp_path / "wide.png", k)  # ".png" given: same stem
    assert png == tmp_path / "wide.png" and view == tmp_path / "wide_view.png"
    assert read_image(view).pixels.shape == (130, 3, 1)


def test_image_kernels_are_normalised(tmp_path, rng):
    grey = rng.integers(0, 256, (7, 5)).astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "g.png")
    np.testing.assert_allclose(read_kernel(tmp_path / "g.png"), grey / grey.sum(), rtol=1e-6)
    rgb = rng.integers(0, 256, (7, 5, 3)).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.bmp")
    mean = rgb.astype(np.float64).mean(axis=2)
    np.testing.assert_allclose(read_kernel(tmp_path / "c.bmp"), mean / mean.sum(), rtol=1e-6)
    opaque = np.dstack([rgb, np.full((7, 5), 255, np.uint8)])
    Image.fromarray(opaque).save(tmp_path / "o.png")
    np.testing.assert_allclose(read_kernel(tmp_path / "o.png"), mean / mean.sum(), rtol=1e-6)


def test_reading_twice_is_identical(tmp_path, kernel):
    npy, png, _ = write_kernel(tmp_path / "k", kernel)
    for path in (npy, png):
        np.testing.assert_array_equal(read_kernel(path), read_kernel(path))


def test_npy_is_not_renormalised(tmp_path, kernel):
    path = tmp_path / "close.npy"
    np.save(path, kernel.astype(np.float64) * 1.0005)
    got = read_kernel(path)
    assert abs(float(got.sum(dtype=np.float64)) - 1.0005) < 1e-6


def _refused(path, needle: str, error=KernelError) -> None:
    with pytest.raises(error) as exc:
        read_kernel(path)
    msg = str(exc.value)
    assert isinstance(exc.value, DeblurkitError) and "\n" not in msg
    assert str(path) in msg and needle in msg, msg


def test_bad_npy_kernels_are_refused(tmp_path, kernel):
    neg = kernel.copy()
    neg[0, 1] -= 0.01
    neg[4, 6] += 0.01
    nan = kernel.copy()
    nan[2, 2] = np.nan
    arrays = {
        "neg": (neg, "1 negative entries"),
        "nan": (nan, "1 non-finite entries"),
        "cube": (np.full((3, 3, 3), 1 / 27), "must be 2-D"),
        "flat": (np.full(9, 1 / 9), "must be 2-D"),
        "empty": (np.zeros((0, 5)), "is empty"),
        "half": (kernel * 0.5, "sums to 0.5"),
        "double": (kernel * 2, "sums to 2"),
        "bool": (np.eye(3, dtype=bool), "dtype bool"),
        "complex": (kernel.astype(np.complex64), "dtype complex64"),
    }
    for name, (arr, needle) in arrays.items():
        path = tmp_path / f"{name}.npy"
        np.save(path, arr)
        _refused(path, needle)


def test_unreadable_kernel_files_are_refused(tmp_path):
    _refused(tmp_path / "missing.npy", "no such file")
    (tmp_path / "dir.npy").mkdir()
    _refused(tmp_path / "dir.npy", "is a directory")
    (tmp_path / "text.npy").write_text("0.1 0.2 0.7\n")
    _refused(tmp_path / "text.npy", "not a readable .npy array")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    _refused(tmp_path / "obj.npy", "not a readable .npy array")  # allow_pickle=False
    (tmp_path / "pickled.npy").write_bytes(pickle.dumps(np.ones((3, 3)) / 9))
    _refused(tmp_path / "pickled.npy", "not a readable .npy array")
    np.savez(tmp_path / "arch.npz", k=np.ones((3, 3)) / 9)
    (tmp_path / "arch.npz").rename(tmp_path / "arch.npy")
    _refused(tmp_path / "arch.npy", "holds a NpzFile")
    (tmp_path / "k.txt").write_text("1")
    _refused(tmp_path / "k.txt", "unknown kernel file extension '.txt'")


def test_bad_image_kernels_are_refused(tmp_path):
    Image.new("L", (5, 5), 0).save(tmp_path / "black.png")
    _refused(tmp_path / "black.png", "all 25 pixels are black")
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[..., 3] = 100
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    _refused(tmp_path / "alpha.png", "transparent alpha channel")
    (tmp_path / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    _refused(tmp_path / "cut.png", "truncated or corrupt PNG", error=ImageError)


def test_write_kernel_refuses_bad_kernels_and_writes_nothing(tmp_path, kernel):
    for bad, needle in [(-kernel, "negative"), (kernel * 2, "sums to 2"),
                        (kernel[None], "must be 2-D"), (np.zeros((0, 3)), "is empty")]:
        with pytest.raises(KernelError, match=needle):
            write_kernel(tmp_path / "k", bad)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "k.npy").mkdir()
    with pytest.raises(KernelError, match="is a directory"):
        write_kernel(tmp_path / "k", kernel)
