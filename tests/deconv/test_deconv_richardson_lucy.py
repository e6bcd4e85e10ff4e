"""Richardson-Lucy against scikit-image, and its properties on the padded canvas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import convolve
from skimage.restoration import richardson_lucy as sk_richardson_lucy

from deblurkit.blur.convolve import blur
from deblurkit.blur.kernels import camera_shake_kernel
from deblurkit.deconv import richardson_lucy
from deblurkit.errors import ConfigError, ImageError


@pytest.fixture(scope="module")
def scene(astronaut):
    """RGB crop, 72 x 88, float64."""
    return astronaut[40:112, 180:268].astype(np.float64)


def _kernel(shape, seed):
    k = np.random.default_rng(seed).random(shape) ** 3
    return k / k.sum()


@pytest.mark.parametrize("kernel_shape", [(5, 5), (4, 6), (9, 7), (15, 15)])
@pytest.mark.parametrize("method", ["fft", "direct"])
def test_matches_skimage_float64(scene, kernel_shape, method):
    kernel = _kernel(kernel_shape, 1)
    blurred = np.stack([convolve(scene[..., c], kernel, mode="same") for c in range(3)], -1)
    ours = richardson_lucy(blurred, kernel, iterations=12, boundary="skimage", method=method)
    for c in range(3):
        ref = sk_richardson_lucy(blurred[..., c], kernel, num_iter=12, clip=False)
        np.testing.assert_allclose(ours[..., c], ref, atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("eps", [None, 1e-3, 0.2])
def test_matches_skimage_float32_with_filter_epsilon(scene, eps):
    kernel = camera_shake_kernel(13, 5)
    grey = scene.mean(axis=2).astype(np.float32)
    blurred = convolve(grey, kernel, mode="same").astype(np.float32)
    ours = richardson_lucy(blurred, kernel, iterations=30, eps=eps, boundary="skimage")
    ref = sk_richardson_lucy(blurred, kernel, num_iter=30, clip=False, filter_epsilon=eps)
    assert ours.dtype == ref.dtype == np.float32
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=0)
    if eps == 0.2:  # the filter is active: its zeroed ratios change the result
        plain = richardson_lucy(blurred, kernel, iterations=30, boundary="skimage")
        assert np.abs(plain - ours).max() > 1e-3


@pytest.mark.parametrize("boundary", ["skimage", "taper", "reflect", "circular"])
def test_per_sample_kernels_equal_a_loop(scene, boundary):
    images = torch.from_numpy(np.stack([scene, scene[::-1], scene[:, ::-1]]).copy())
    images = images.permute(0, 3, 1, 2).contiguous()
    kernels = torch.stack([torch.from_numpy(_kernel((7, 7), s)) for s in range(3)])
    batched = richardson_lucy(images, kernels, iterations=5, boundary=boundary)
    for i in range(3):
        single = richardson_lucy(images[i:i + 1], kernels[i], iterations=5, boundary=boundary)
        torch.testing.assert_close(batched[i:i + 1], single, atol=1e-12, rtol=0)


@pytest.mark.parametrize("boundary", ["taper", "circular"])
def test_fft_and_direct_agree(scene, boundary):
    kernel = _kernel((6, 5), 3)
    a = richardson_lucy(scene, kernel, iterations=6, boundary=boundary, method="fft")
    b = richardson_lucy(scene, kernel, iterations=6, boundary=boundary, method="direct")
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_likelihood_increases_each_iteration_on_circular_blur(camera):
    """RL is an EM algorithm for the Poisson likelihood: the I-divergence
    sum(b log(b / Kx) - b + Kx) cannot increase from one iteration to the next."""
    sharp = camera[200:264, 200:264].astype(np.float64) * 0.9 + 0.05
    kernel = camera_shake_kernel(9, 2).astype(np.float64)
    kernel /= kernel.sum()
    blurred = blur(sharp, kernel, boundary="circular")
    divergences = []
    for n in range(1, 9):
        x = richardson_lucy(blurred, kernel, iterations=n, boundary="circular")
        kx = blur(x, kernel, boundary="circular")
        divergences.append(float(np.sum(blurred * np.log(blurred / kx) - blurred + kx)))
    assert all(b <= a + 1e-12 for a, b in zip(divergences, divergences[1:])), divergences
    assert divergences[-1] < 0.2 * divergences[0]
    err_blurred = np.abs(blurred - sharp).mean()
    assert np.abs(x - sharp).mean() < 0.8 * err_blurred


def test_negative_data_refused_except_in_skimage_mode():
    image = torch.rand(1, 1, 20, 20, dtype=torch.float64) - 0.1
    kernel = np.full((3, 3), 1 / 9)
    with pytest.raises(ImageError, match=r"blurred: has \d+ negative values"):
        richardson_lucy(image, kernel)
    out = richardson_lucy(image, kernel, boundary="skimage", iterations=2)
    ref = sk_richardson_lucy(image[0, 0].numpy(), kernel, num_iter=2, clip=False)
    np.testing.assert_allclose(out[0, 0].numpy(), ref, atol=1e-12)


@pytest.mark.parametrize("kwargs, message", [
    (dict(iterations=0), "iterations: must be an integer >= 1, got 0"),
    (dict(iterations=2.5), "iterations"),
    (dict(eps=-1.0), "eps: must be a finite number > 0"),
    (dict(method="magic"), "method: must be one of"),
    (dict(boundary="zeros"), "boundary: must be one of skimage, taper"),
])
def test_bad_options_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        richardson_lucy(torch.rand(1, 1, 16, 16), np.full((3, 3), 1 / 9), **kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_skimage(scene):
    kernel = camera_shake_kernel(13, 5)
    grey = scene.mean(axis=2).astype(np.float32)
    blurred = convolve(grey, kernel, mode="same").astype(np.float32)
    ref = sk_richardson_lucy(blurred, kernel, num_iter=30, clip=False)
    x = torch.from_numpy(blurred)[None, None].cuda()
    ours = richardson_lucy(x, torch.from_numpy(kernel).cuda(), iterations=30, boundary="skimage")
    np.testing.assert_allclose(ours[0, 0].cpu().numpy(), ref, atol=1e-4, rtol=0)
