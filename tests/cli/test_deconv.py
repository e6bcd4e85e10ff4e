"""``deblurkit deconv`` end to end on temporary files: results, bit depth, alpha, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from deblurkit.blur.kernels import camera_shake_kernel
from deblurkit.cli import main
from deblurkit.deconv import hyper_laplacian, richardson_lucy, wiener


def _u8(a: np.ndarray) -> np.ndarray:
    return np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)


def _load(path: Path) -> np.ndarray:
    """PNG as float64 (H, W[, C]) in [0, 1], read with Pillow (independent of deblurkit.io)."""
    im = Image.open(path)
    a = np.asarray(im, dtype=np.float64)
    return a / (65535.0 if im.mode.startswith("I") else 255.0)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


@pytest.fixture(scope="module")
def case(tmp_path_factory, astronaut):
    """A sharp RGB crop, its blur by a camera-shake kernel (8-bit PNG) and the kernel (.npy)."""
    folder = tmp_path_factory.mktemp("deconv")
    sharp = astronaut[40:136, 200:296].astype(np.float64)
    kernel = camera_shake_kernel(11, 2)
    blurred = np.stack([ndimage.convolve(sharp[..., c], kernel.astype(np.float64),
                                         mode="reflect") for c in range(3)], axis=2)
    Image.fromarray(_u8(blurred)).save(folder / "blurred.png")
    np.save(folder / "k.npy", kernel)
    return folder, sharp, kernel


def run(*args: object) -> int:
    return main(["deconv", *map(str, args)])


@pytest.mark.parametrize("method", ["hyperlaplacian", "wiener", "l2", "rl"])
def test_each_method_sharpens_and_matches_the_library(case, tmp_path, method, capsys):
    folder, sharp, kernel = case
    out = tmp_path / "out.png"
    assert run(folder / "blurred.png", "--kernel", folder / "k.npy", "-o", out,
               "--method", method) == 0
    assert f"{method}, 96x96" in capsys.readouterr().out
    result = _load(out)
    blurred = _load(folder / "blurred.png")
    assert result.shape == sharp.shape
    assert _psnr(result, sharp) > _psnr(blurred, sharp) + 1.0
    if method == "wiener":  # the file is the library's result, clipped and quantised
        ref = wiener(blurred.astype(np.float32), kernel)
        np.testing.assert_allclose(result, np.round(np.clip(ref, 0, 1) * 255) / 255, atol=1.5 / 255)


def test_options_reach_the_solver(case, tmp_path):
    folder, sharp, kernel = case
    blurred = _load(folder / "blurred.png").astype(np.float32)
    out = tmp_path / "rl.png"
    assert run(folder / "blurred.png", "-k", folder / "k.npy", "-o", out, "--method", "rl",
               "--iterations", 5, "--boundary", "reflect") == 0
    ref = richardson_lucy(blurred, kernel, iterations=5, boundary="reflect")
    np.testing.assert_allclose(_load(out), np.clip(ref, 0, 1), atol=1 / 255)
    out = tmp_path / "hl.png"
    assert run(folder / "blurred.png", "-k", folder / "k.npy", "-o", out, "--weight", 0.02) == 0
    ref = hyper_laplacian(blurred, kernel, weight=0.02)
    np.testing.assert_allclose(_load(out), np.clip(ref, 0, 1), atol=1 / 255)


def test_sixteen_bit_grey_with_alpha_keeps_depth_and_alpha(case, tmp_path):
    folder, sharp, kernel = case
    grey = _load(folder / "blurred.png").mean(axis=2)
    alpha = np.linspace(0.1, 1.0, grey.size).reshape(grey.shape)
    rgba16 = np.round(np.stack([grey, grey, grey, alpha], axis=2) * 65535).astype(np.uint16)
    from deblurkit.io import write_image                    # Pillow cannot write 16-bit RGBA
    src = tmp_path / "in16.png"
    write_image(src, rgba16 / 65535.0, bit_depth=16)
    out = tmp_path / "out16.png"
    assert run(src, "--kernel", folder / "k.npy", "-o", out, "--method", "wiener") == 0
    from deblurkit.io import read_image
    loaded = read_image(out)
    assert loaded.bit_depth == 16 and loaded.pixels.shape == (96, 96, 4)
    np.testing.assert_array_equal(np.round(loaded.pixels[..., 3] * 65535), rgba16[..., 3])
    assert float(np.abs(loaded.pixels[..., 0] - grey).max()) > 0.01   # colour did change


def test_kernel_as_png_image(case, tmp_path):
    folder, sharp, kernel = case
    Image.fromarray(np.round(kernel / kernel.max() * 255).astype(np.uint8)).save(
        tmp_path / "k.png")
    out = tmp_path / "out.png"
    assert run(folder / "blurred.png", "--kernel", tmp_path / "k.png", "-o", out) == 0
    assert _psnr(_load(out), sharp) > _psnr(_load(folder / "blurred.png"), sharp) + 1.0


@pytest.mark.parametrize("bad, message", [
    (np.array([[0.5, -0.1], [0.3, 0.3]], np.float32), "negative"),
    (np.array([[0.5, np.nan], [0.25, 0.25]], np.float32), "non-finite"),
    (np.zeros((0, 0), np.float32), "empty"),
    (np.full((3, 3), 0.5, np.float32), "sums to"),
    (np.full((128, 1), 1 / 128, np.float32), "larger than"),
])
def test_bad_kernel_is_one_line_and_no_output(case, tmp_path, capsys, bad, message):
    folder, _, _ = case
    np.save(tmp_path / "bad.npy", bad)
    out = tmp_path / "out.png"
    assert run(folder / "blurred.png", "--kernel", tmp_path / "bad.npy", "-o", out) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "bad.npy" in err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.npy"]   # no temporary file left


def test_refuses_to_overwrite_the_input(case, tmp_path, capsys):
    folder, _, _ = case
    src = tmp_path / "in.png"
    src.write_bytes((folder / "blurred.png").read_bytes())
    before = src.read_bytes()
    assert run(src, "--kernel", folder / "k.npy", "-o", tmp_path / "." / "in.png") == 2
    assert "same file as IMAGE" in capsys.readouterr().err
    assert src.read_bytes() == before


@pytest.mark.parametrize("extra, message", [
    (["--method", "rl", "--weight", "0.1"], "--weight: Richardson-Lucy has no weight"),
    (["--method", "wiener", "--iterations", "3"], "--iterations: method wiener"),
    (["--weight", "-1"], "weight: must be a finite number > 0"),
    (["--method", "rl", "--iterations", "0"], "iterations: must be an integer >= 1"),
])
def test_bad_options_are_one_line_errors(case, tmp_path, capsys, extra, message):
    folder, _, _ = case
    out = tmp_path / "out.png"
    assert run(folder / "blurred.png", "--kernel", folder / "k.npy", "-o", out, *extra) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not out.exists()


def test_output_format_that_cannot_hold_the_input(case, tmp_path, capsys):
    folder, _, _ = case
    assert run(folder / "blurred.png", "--kernel", folder / "k.npy", "-o", tmp_path / "o.gif") == 2
    assert "unknown image extension" in capsys.readouterr().err
    rgba = np.concatenate([_load(folder / "blurred.png"), np.ones((96, 96, 1))], axis=2)
    Image.fromarray(_u8(rgba)).save(tmp_path / "rgba.png")
    assert run(tmp_path / "rgba.png", "--kernel", folder / "k.npy", "-o", tmp_path / "o.jpg") == 2
    assert "alpha channel" in capsys.readouterr().err
    assert not (tmp_path / "o.jpg").exists()
