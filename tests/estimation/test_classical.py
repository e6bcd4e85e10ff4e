"""The classical L0 blind baseline (Pan et al. 2014 / Xu et al. 2013) and its shared helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage, signal

from deblurkit.blur import blur, camera_shake_kernel, linear_motion_kernel
from deblurkit.blur.kernels import validate_kernel
from deblurkit.errors import ConfigError, ImageError, KernelError
from deblurkit.estimation._common import center_kernel, check_image, kernel_similarity, to_grey
from deblurkit.estimation.base import KernelEstimator
from deblurkit.estimation.classical import (
    L0Blind,
    _estimation_window,
    clean_kernel,
    kernel_least_squares,
    is_periodic,
    l0_restore,
    pyramid,
)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    """255 x 255 grey crop of scikit-image's cameraman (the man and the tripod)."""
    from skimage import data

    return np.ascontiguousarray(data.camera()[60:315, 150:405].astype(np.float32) / 255.0)


def _blurred(image: np.ndarray, kernel: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(image.shape).astype(np.float32)
    return np.clip(blur(image, kernel, boundary="reflect") + sigma * noise, 0.0, 1.0)


# ------------------------------------------------------------------------------ helpers

def test_kernel_similarity_matches_a_brute_force_search(rng):
    a = rng.random((7, 5))
    b = rng.random((9, 9))
    best = -np.inf
    for dy in range(-10, 11):                   # every overlap of the two supports
        for dx in range(-10, 11):
            shifted = np.zeros((40, 40))
            shifted[15 + dy:15 + dy + 9, 15 + dx:15 + dx + 9] = b
            canvas = np.zeros((40, 40))
            canvas[15:22, 15:20] = a
            best = max(best, float((canvas * shifted).sum()))
    expected = best / (np.linalg.norm(a) * np.linalg.norm(b))
    assert kernel_similarity(a, b) == pytest.approx(expected, rel=1e-12)
    assert kernel_similarity(b, b) == pytest.approx(1.0)
    shifted = np.roll(np.pad(b, 3), (2, -1), axis=(0, 1))
    assert kernel_similarity(shifted, b) == pytest.approx(1.0)
    with pytest.raises(KernelError, match="truth: is all zero"):
        kernel_similarity(a, np.zeros((3, 3)))
    with pytest.raises(KernelError, match="estimate: must be a non-empty 2-D"):
        kernel_similarity(np.ones(3), b)


def test_center_kernel_moves_the_centre_of_mass_to_the_centre():
    k = np.zeros((9, 9))
    k[1, 2] = 3.0
    k[1, 4] = 1.0                                # centroid (1, 2.5): shift by (3, 1.5 -> 1 or 2)
    out = center_kernel(k)
    assert out.sum() == pytest.approx(1.0)
    rows, cols = np.nonzero(out)
    assert list(rows) == [4, 4] and list(cols) in ([4, 6], [3, 5])
    centroid = ndimage.center_of_mass(out)
    assert abs(centroid[0] - 4) < 1e-9 and abs(centroid[1] - 4) <= 0.5
    sym = camera_shake_kernel(15, 1)             # already centred: unchanged
    assert np.allclose(center_kernel(sym), sym / sym.sum(), atol=1e-7)
    with pytest.raises(KernelError, match="sums to 0"):
        center_kernel(np.zeros((3, 3)))


def test_check_image_and_to_grey(rng):
    rgb = rng.random((8, 9, 3)).astype(np.float32)
    assert check_image(rgb).shape == (8, 9, 3)
    assert check_image(rgb[..., 0]).shape == (8, 9, 1)
    expected = rgb[..., 0] * 0.2126 + rgb[..., 1] * 0.7152 + rgb[..., 2] * 0.0722
    assert np.allclose(to_grey(check_image(rgb)), expected, atol=1e-6)
    grey3 = np.repeat(rgb[..., :1], 3, axis=2)             # grey in RGB form: exactly grey
    assert np.array_equal(to_grey(grey3), rgb[..., 0])
    for bad, match in [
        (rgb.astype(np.uint8), "dtype uint8"),
        (rgb[..., :2], "has 2 channels"),
        (np.full((8, 8), np.nan, np.float32), "64 non-finite"),
        (rgb * 2, "values must lie in \\[0, 1\\]"),
        (rgb.tolist(), "must be a numpy array"),
        (rng.random((2, 2, 2, 2)).astype(np.float32), "shape \\(2, 2, 2, 2\\)"),
    ]:
        with pytest.raises(ImageError, match=match):
            check_image(bad, "image")
    with pytest.raises(ImageError, match="image: 8x9 \\(HxW\\) is too small"):
        check_image(rgb, "image", min_side=10)


# ------------------------------------------------------------------------------ building blocks

def test_kernel_least_squares_recovers_a_known_kernel_noise_free(rng):
    """Circular convolution by scipy.ndimage (mode 'wrap') as the independent reference: the
    exact solution (gamma 0) returns the kernel, in true convolution orientation."""
    kernel = camera_shake_kernel(9, 4).astype(np.float64)
    xs = [rng.standard_normal((48, 52)) for _ in range(2)]
    ys = [ndimage.convolve(x, kernel, mode="wrap") for x in xs]
    est = kernel_least_squares(xs, ys, 9, gamma_rel=0.0)
    assert np.allclose(est, kernel, atol=1e-6)
    flipped = kernel_least_squares(xs, [ndimage.correlate(x, kernel, mode="wrap") for x in xs],
                                   9, gamma_rel=0.0)
    assert np.allclose(flipped, kernel[::-1, ::-1], atol=1e-6)   # orientation is not symmetric
    assert not np.allclose(flipped, kernel, atol=1e-2)
    # Tikhonov shrinks towards 0 but keeps the shape
    shrunk = kernel_least_squares(xs, ys, 9, gamma_rel=0.5)
    assert shrunk.sum() < 0.9 and np.corrcoef(shrunk.ravel(), kernel.ravel())[0, 1] > 0.95


def test_kernel_least_squares_refuses_bad_input(rng):
    x = rng.standard_normal((20, 20))
    with pytest.raises(ImageError, match="too small for a 11x11 kernel"):
        kernel_least_squares([x], [x], 11)
    with pytest.raises(ImageError, match="all zero"):
        kernel_least_squares([np.zeros((20, 20))], [x], 5)
    with pytest.raises(ImageError, match="shape \\(20, 20\\), got \\(20, 19\\)"):
        kernel_least_squares([x], [x[:, :19]], 5)
    with pytest.raises(ConfigError, match="gamma_rel"):
        kernel_least_squares([x], [x], 5, gamma_rel=-1)
    with pytest.raises(ConfigError, match="size: must be an integer >= 1, got 0"):
        kernel_least_squares([x], [x], 0)


def test_clean_kernel_thresholds_prunes_components_and_normalises():
    k = np.zeros((9, 9))
    k[3:6, 4] = [0.5, 1.0, 0.5]                 # main stroke, mass 2.0
    k[0, 0] = 0.3                                # isolated speck: 0.3 / 2.3 < 0.2 -> removed
    k[8, 8] = 0.04                               # below 0.05 * max -> zeroed
    k[4, 7] = -0.5                               # negative -> zeroed
    out = clean_kernel(k, threshold=0.05, min_component=0.2)
    expected = np.zeros((9, 9))
    expected[3:6, 4] = [0.25, 0.5, 0.25]
    assert np.allclose(out, expected)
    validate_kernel(out)
    kept = clean_kernel(k, threshold=0.05, min_component=0.1)     # 0.3 / 2.3 >= 0.1: kept
    assert kept[0, 0] == pytest.approx(0.3 / 2.3, rel=1e-6)
    only = clean_kernel(k, threshold=0.05, min_component=1.0)      # heaviest component only
    assert np.allclose(only, expected)
    with pytest.raises(KernelError, match="no positive entry"):
        clean_kernel(-np.ones((3, 3)))
    with pytest.raises(ConfigError, match="threshold: must be < 1"):
        clean_kernel(k, threshold=1.0)


def test_pyramid_follows_pan_et_al():
    # floor(log(5/31) / log(sqrt(1/2))) = 5 -> 6 levels; sides ceil(31 r^n) made odd
    levels = pyramid(31)
    assert [size for _, size in levels] == [7, 9, 11, 17, 23, 31]
    assert [s for s, _ in levels] == pytest.approx([math.sqrt(0.5) ** n for n in range(5, -1, -1)])
    assert pyramid(5) == [(1.0, 5)]
    with pytest.raises(ConfigError, match="ratio: must be < 1"):
        pyramid(31, ratio=1.0)


def test_l0_restore_recovers_a_piecewise_constant_image(rng):
    """Noise-free blur of a cartoon image: the L0 latent image is much closer to the truth than
    the blurred input and, like the truth, has sparse gradients."""
    sharp = np.full((96, 96), 0.2, np.float32)
    sharp[20:60, 15:50] = 0.8
    sharp[50:85, 45:80] = 0.5
    sharp[10:30, 60:90] = 1.0
    kernel = linear_motion_kernel(9, 30)
    blurred = np.clip(blur(sharp, kernel, boundary="reflect"), 0.0, 1.0)
    latent = l0_restore(blurred, kernel, lambda_grad=2e-3)
    assert latent.shape == sharp.shape and latent.dtype == np.float32
    inner = (slice(8, -8), slice(8, -8))
    assert _psnr(latent[inner], sharp[inner]) > _psnr(blurred[inner], sharp[inner]) + 8

    def edge_share(x: np.ndarray) -> float:
        return float(np.mean(np.hypot(np.diff(x, axis=0)[:, :-1], np.diff(x, axis=1)[:-1]) > 0.02))

    assert edge_share(latent[inner]) < 0.5 * edge_share(blurred[inner])
    with pytest.raises(ImageError, match="blurred: must be one grey channel"):
        l0_restore(np.stack([blurred] * 3, axis=2), kernel)
    with pytest.raises(KernelError, match="kernel:"):
        l0_restore(blurred, -kernel)
    with pytest.raises(ConfigError, match="lambda_grad"):
        l0_restore(blurred, kernel, lambda_grad=0)


def test_is_periodic_tells_circular_blur_from_a_photo_crop(crop):
    kernel = linear_motion_kernel(15, 30)
    assert is_periodic(blur(crop, kernel, boundary="circular"))
    assert not is_periodic(blur(crop, kernel, boundary="reflect"))
    assert not is_periodic(crop)
    assert not is_periodic(np.zeros((20, 20)))                 # flat: nothing to tell
    noisy_flat = 0.5 + 0.01 * np.random.default_rng(0).standard_normal((64, 64))
    assert not is_periodic(noisy_flat)
    periodic = np.tile(crop[:64, :64], (2, 2))[32:96, 32:96]    # wraps around exactly
    assert not is_periodic(crop[:64, :64]) and is_periodic(np.roll(periodic, 5, axis=0))


def test_circular_blur_uses_the_image_as_its_own_canvas(crop):
    """A circularly blurred image (as the Levin et al. set is distributed) is recognised and
    estimated as periodic; forcing the taper canvas on it does worse. Measured when written:
    similarity 0.93 (auto) against 0.69 (taper)."""
    truth = linear_motion_kernel(15, 30)
    blurred = np.clip(blur(crop, truth, boundary="circular"), 0, 1)
    auto = L0Blind(kernel_size=25).estimate_kernel(blurred)
    taper = L0Blind(kernel_size=25, boundary="taper").estimate_kernel(blurred)
    assert kernel_similarity(auto, truth) > 0.85
    assert kernel_similarity(auto, truth) > kernel_similarity(taper, truth)


def test_estimation_window_picks_the_textured_region(rng):
    grey = np.full((300, 500), 0.5, np.float32)
    grey[180:260, 350:470] = rng.random((80, 120)).astype(np.float32)
    window = _estimation_window(grey, 200)
    assert window.shape == (200, 200)
    assert np.count_nonzero(np.diff(window, axis=1)) >= 80 * 119    # holds the whole texture
    assert _estimation_window(grey[:150, :150], 200).shape == (150, 150)


# ------------------------------------------------------------------------------ blind estimation

def test_is_a_uniform_kernel_estimator():
    est = L0Blind()
    assert isinstance(est, KernelEstimator) and est.kind == "uniform"


@pytest.mark.parametrize("seed", [1, 2])
def test_recovers_a_camera_shake_kernel_and_deblurs(crop, seed):
    """1% noise, reflect boundary. Measured when written: similarity 0.945 / 0.924 (the flipped
    estimate 0.874 / 0.877), PSNR 26.0 -> 30.6 / 24.5 -> 28.5 dB on the inner crop."""
    truth = camera_shake_kernel(17, seed)
    blurred = _blurred(crop, truth, 0.01, seed)
    est = L0Blind(kernel_size=25)
    kernel = est.estimate_kernel(blurred)
    assert kernel.shape == (25, 25) and kernel.dtype == np.float32
    validate_kernel(kernel)                                  # non-negative, sums to 1
    assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
    similarity = kernel_similarity(kernel, truth)
    assert similarity > 0.85
    assert similarity > kernel_similarity(kernel[::-1, ::-1].copy(), truth) + 0.03
    centroid = ndimage.center_of_mass(kernel)                # centred like the generators
    assert max(abs(centroid[0] - 12), abs(centroid[1] - 12)) <= 0.5
    out = est.deconvolve(blurred, kernel)
    inner = (slice(16, -16), slice(16, -16))
    assert _psnr(out[inner], crop[inner]) > _psnr(blurred[inner], crop[inner]) + 3.0


def test_recovers_a_linear_motion_kernel(crop):
    """Measured when written: similarity 0.95."""
    truth = linear_motion_kernel(15, 30)
    blurred = _blurred(crop, truth, 0.005, 7)
    kernel = L0Blind(kernel_size=25).estimate_kernel(blurred)
    assert kernel_similarity(kernel, truth) > 0.85


def test_sharp_input_gives_a_compact_kernel_and_is_left_alone(crop):
    """No blur: the kernel is concentrated in a few pixels around the centre (measured: 4 pixels,
    peak 0.54) and deblurring changes the image little."""
    noisy = _blurred(crop, np.ones((1, 1), np.float32), 0.005, 3)
    est = L0Blind(kernel_size=25)
    kernel = est.estimate_kernel(noisy)
    assert np.count_nonzero(kernel) <= 9 and kernel.max() > 0.3
    rows, cols = np.nonzero(kernel)
    assert max(np.abs(rows - 12).max(), np.abs(cols - 12).max()) <= 2
    out = est.deconvolve(noisy, kernel)
    assert _psnr(out, crop) > 28.0


def test_deblur_keeps_shape_dtype_and_range(crop):
    truth = camera_shake_kernel(11, 5)
    rgb = np.stack([crop[:150, :180], crop[50:200, 20:200], crop[100:250, 60:240]], axis=2)
    blurred = np.stack([blur(rgb[..., c], truth, boundary="reflect") for c in range(3)], axis=2)
    est = L0Blind(kernel_size=15)
    out = est.deblur(blurred)
    assert out.shape == blurred.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    # grey (H, W) and (H, W, 1) in: the same shape out; identical RGB channels are solved once
    grey = np.ascontiguousarray(blurred[..., 1])
    flat = est.deblur(grey)
    assert flat.shape == grey.shape
    assert est.deblur(grey[..., None]).shape == grey.shape + (1,)
    kernel = est.estimate_kernel(grey)
    tripled = est.deconvolve(np.repeat(grey[..., None], 3, axis=2), kernel)
    assert np.array_equal(tripled[..., 0], tripled[..., 2])
    assert np.allclose(tripled[..., 0], est.deconvolve(grey, kernel), atol=1e-6)


def test_bad_inputs_are_refused(crop):
    est = L0Blind(kernel_size=15)
    with pytest.raises(ImageError, match="image: 20x200 \\(HxW\\) is too small; both sides must "
                                         "be >= 31"):
        est.estimate_kernel(crop[:20, :200])
    with pytest.raises(ImageError, match="dtype uint8"):
        est.deblur((crop * 255).astype(np.uint8))
    with pytest.raises(ImageError, match="non-finite"):
        est.estimate_kernel(np.where(crop > 0.5, np.nan, crop).astype(np.float32))
    for options, match in [
        ({"kernel_size": 16}, "kernel_size: must be odd, got 16"),
        ({"kernel_size": 1}, "kernel_size: must be an integer >= 3, got 1"),
        ({"kernel_size": True}, "kernel_size: must be an integer >= 3, got True"),
        ({"lambda_grad": -1.0}, "lambda_grad: must be a finite number > 0, got -1.0"),
        ({"lambda_min": 1.0}, "lambda_min: must be a finite number > 0 and <= 0.004"),
        ({"iterations": 0}, "iterations: must be an integer >= 1, got 0"),
        ({"gamma_rel": float("nan")}, "gamma_rel: must be a finite number"),
        ({"kappa": 1.0}, "kappa: must be a finite number > 1"),
        ({"max_side": 40}, "max_side: must be an integer >= 63, got 40"),
        ({"deconv_weight": 0}, "deconv_weight: must be a finite number > 0, got 0"),
        ({"boundary": "wrap"}, "boundary: must be one of auto, taper, circular, got 'wrap'"),
        ({"threshold": 1.0}, "threshold: must be < 1, got 1.0"),
    ]:
        with pytest.raises(ConfigError, match=match):
            L0Blind(**options)


def test_kernel_orientation_matches_scipy_signal_convolve(crop):
    """The estimate re-blurs the sharp image like the true kernel does under
    scipy.signal.convolve (true convolution), and far better than its own flip would."""
    truth = camera_shake_kernel(15, 9)
    sharp = crop.astype(np.float64)
    blurred = signal.convolve(np.pad(sharp, 7, mode="symmetric"), truth, mode="valid")
    kernel = L0Blind(kernel_size=21).estimate_kernel(blurred.astype(np.float32))

    def reblur_error(k: np.ndarray) -> float:
        pad = k.shape[0] // 2
        again = signal.convolve(np.pad(sharp, pad, mode="symmetric"), k, mode="valid")
        return float(np.sqrt(np.mean((again - blurred)[16:-16, 16:-16] ** 2)))

    assert reblur_error(kernel) < 0.6 * reblur_error(kernel[::-1, ::-1])
