"""Wiener / Tikhonov (survey eq. 4) and the gradient-prior variant against numpy references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deblurkit.blur.convolve import blur
from deblurkit.blur.kernels import camera_shake_kernel, gaussian_kernel
from deblurkit.deconv import l2_gradient, wiener


def _psf2otf(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """numpy psf2otf: kernel centre (kh // 2, kw // 2) moved to the origin, full fft2."""
    kh, kw = kernel.shape
    canvas = np.zeros(shape)
    canvas[:kh, :kw] = kernel
    canvas = np.roll(canvas, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    return np.fft.fft2(canvas)


def _wiener_reference(blurred: np.ndarray, kernel: np.ndarray, weight: float,
                      gradient: bool = False) -> np.ndarray:
    """Survey eq. 4 in numpy, one channel, circular boundary."""
    h, w = blurred.shape
    K = _psf2otf(kernel, (h, w))
    denominator = np.abs(K) ** 2
    if gradient:
        # x[j+1] - x[j] as a convolution (centre index 1): out[j] = sum_m k[m] x[j + 1 - m]
        Dx = _psf2otf(np.array([[1.0, -1.0, 0.0]]), (h, w))
        Dy = _psf2otf(np.array([[1.0], [-1.0], [0.0]]), (h, w))
        denominator = denominator + weight * (np.abs(Dx) ** 2 + np.abs(Dy) ** 2)
    else:
        denominator = denominator + weight
    return np.real(np.fft.ifft2(np.conj(K) * np.fft.fft2(blurred) / denominator))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


@pytest.mark.parametrize("kernel_shape", [(7, 7), (6, 9)])
@pytest.mark.parametrize("gradient", [False, True])
def test_matches_numpy_reference_of_eq4(rng, kernel_shape, gradient):
    image = rng.random((3, 40, 52))                      # C, H, W
    kernel = rng.random(kernel_shape)
    kernel /= kernel.sum()
    fn = l2_gradient if gradient else wiener
    out = fn(torch.from_numpy(image)[None], torch.from_numpy(kernel), weight=3e-3,
             boundary="circular")
    for c in range(3):
        ref = _wiener_reference(image[c], kernel, 3e-3, gradient)
        np.testing.assert_allclose(out[0, c].numpy(), ref, atol=1e-10)


@pytest.mark.parametrize("fn", [wiener, l2_gradient])
def test_noise_free_circular_blur_is_recovered(camera, fn):
    sharp = camera[128:384, 128:384].astype(np.float64)
    kernel = camera_shake_kernel(15, 4).astype(np.float64)
    kernel /= kernel.sum()
    blurred = blur(sharp, kernel, boundary="circular")
    assert _psnr(blurred, sharp) < 25
    out = fn(blurred, kernel, weight=1e-6, boundary="circular")
    assert _psnr(out, sharp) > 40


def test_gradient_prior_keeps_flat_regions_and_tikhonov_darkens_them():
    """l2_gradient does not penalise the mean (|F(dx)|^2 = 0 at DC); Wiener shrinks it by
    1 / (1 + weight)."""
    flat = torch.full((1, 1, 32, 32), 0.6, dtype=torch.float64)
    kernel = torch.from_numpy(gaussian_kernel(1.5, 7).astype(np.float64))
    kernel = kernel / kernel.sum()
    assert torch.allclose(l2_gradient(flat, kernel, weight=0.1), flat, atol=1e-12)
    assert torch.allclose(wiener(flat, kernel, weight=0.1), flat / 1.1, atol=1e-12)


@pytest.mark.parametrize("fn", [wiener, l2_gradient])
@pytest.mark.parametrize("boundary", ["taper", "reflect", "circular"])
def test_per_sample_kernels_equal_a_loop(rng, fn, boundary):
    images = torch.from_numpy(rng.random((3, 2, 30, 34)))
    kernels = torch.stack([torch.from_numpy(camera_shake_kernel(9, s).astype(np.float64))
                           for s in range(3)])
    kernels = kernels / kernels.sum(dim=(-2, -1), keepdim=True)
    batched = fn(images, kernels, boundary=boundary)
    for i in range(3):
        single = fn(images[i:i + 1], kernels[i], boundary=boundary)
        torch.testing.assert_close(batched[i:i + 1], single, atol=1e-12, rtol=0)


@pytest.mark.parametrize("fn", [wiener, l2_gradient])
def test_numpy_in_numpy_out_and_float32(astronaut, fn):
    image = astronaut[:64, :80]
    kernel = camera_shake_kernel(9, 2)
    out = fn(image, kernel)
    assert isinstance(out, np.ndarray) and out.shape == image.shape and out.dtype == np.float32
    grey = fn(image[..., 0], kernel)
    assert grey.shape == (64, 80)
    np.testing.assert_allclose(grey, out[..., 0], atol=1e-5)
    ref64 = fn(image.astype(np.float64), kernel.astype(np.float64))
    np.testing.assert_allclose(out, ref64, atol=2e-4)


def test_tensor_weight_per_sample_and_gradients_flow(rng):
    images = torch.from_numpy(rng.random((2, 1, 12, 12)))
    kernel = torch.from_numpy(gaussian_kernel(1.0, 5).astype(np.float64))
    kernel = (kernel / kernel.sum()).requires_grad_(True)
    weights = torch.tensor([1e-2, 1e-1], dtype=torch.float64, requires_grad=True)
    out = wiener(images, kernel, weight=weights, boundary="circular")
    torch.testing.assert_close(out[1:], wiener(images[1:], kernel, weight=1e-1,
                                               boundary="circular"))
    # gradients agree with finite differences (the solver is usable inside a network)
    assert torch.autograd.gradcheck(
        lambda w: wiener(images, kernel.detach(), weight=w, boundary="taper").sum(), (weights,))
    out.square().sum().backward()
    assert kernel.grad is not None and bool(torch.isfinite(kernel.grad).all())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(rng):
    images = torch.from_numpy(rng.random((2, 3, 48, 40)).astype(np.float32))
    kernel = torch.from_numpy(camera_shake_kernel(11, 0))
    for fn in (wiener, l2_gradient):
        cpu = fn(images, kernel)
        gpu = fn(images.cuda(), kernel.cuda())
        assert gpu.device.type == "cuda"
        torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=0)
