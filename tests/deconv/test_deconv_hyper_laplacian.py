"""Hyper-Laplacian deconvolution (Krishnan & Fergus 2009): the per-pixel w-step against a brute
force search, and the whole solver's objective, recovery and batching."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from deblurkit.blur.convolve import blur
from deblurkit.blur.kernels import camera_shake_kernel
from deblurkit.deconv import hyper_laplacian, l2_gradient, shrink, shrink_threshold, wiener
from deblurkit.deconv._boundary import grad_x, grad_y
from deblurkit.errors import ConfigError


def _objective(w, v, beta, alpha):
    return np.abs(w) ** alpha + beta / 2 * (w - v) ** 2


@pytest.mark.parametrize("alpha", [0.5, 2 / 3, 0.8, 1.0])
@pytest.mark.parametrize("beta", [1.0, 2 * math.sqrt(2), 22.6, 181.0, 1e4])
def test_shrink_minimises_the_per_pixel_objective(rng, alpha, beta):
    """Compare with a brute-force search over 40001 candidates between 0 and v (the minimiser
    lies there: moving w towards v lowers both terms outside that interval)."""
    scale = 3 * shrink_threshold(beta, alpha)
    v = np.concatenate([rng.normal(0, scale, 300), rng.uniform(-2, 2, 100)])
    ours = shrink(torch.from_numpy(v), beta, alpha).numpy()
    candidates = v[:, None] * np.linspace(0.0, 1.0, 40001)[None, :]
    values = _objective(candidates, v[:, None], beta, alpha)
    best = values.min(axis=1)
    grid_w = candidates[np.arange(v.size), values.argmin(axis=1)]
    mine = _objective(ours, v, beta, alpha)
    assert np.all(mine <= best + 1e-12), float((mine - best).max())
    # the minimiser itself agrees wherever it is unique (not at a tie between 0 and the root)
    clear = np.abs(_objective(0.0, v, beta, alpha) - best) > 1e-6
    step = np.abs(v) / 40000
    assert np.all(np.abs(ours - grid_w)[clear] <= step[clear] + 1e-9)
    assert np.any(ours == 0) and np.any(ours != 0)


@pytest.mark.parametrize("alpha", [0.5, 2 / 3, 0.8])
def test_shrink_threshold_is_where_zero_and_the_root_tie(alpha):
    beta = 8.0
    tau = shrink_threshold(beta, alpha)
    below = shrink(torch.tensor([tau * (1 - 1e-6)], dtype=torch.float64), beta, alpha)
    above = shrink(torch.tensor([tau * (1 + 1e-6)], dtype=torch.float64), beta, alpha)
    assert float(below) == 0.0 and float(above) > 0.0
    # at the threshold, the non-zero minimiser and 0 have the same objective
    w = float(above)
    assert abs(_objective(w, tau, beta, alpha) - _objective(0.0, tau, beta, alpha)) < 1e-5


def test_shrink_is_odd_and_float32(rng):
    v = torch.from_numpy(rng.normal(0, 0.3, 1000).astype(np.float32))
    w = shrink(v, 8.0, 2 / 3)
    assert w.dtype == torch.float32
    torch.testing.assert_close(shrink(-v, 8.0, 2 / 3), -w)
    ref = shrink(v.double(), 8.0, 2 / 3)
    torch.testing.assert_close(w.double(), ref, atol=1e-6, rtol=0)


@pytest.fixture(scope="module")
def circular_case(camera):
    sharp = camera[128:320, 128:320].astype(np.float64)
    kernel = camera_shake_kernel(15, 4).astype(np.float64)
    kernel /= kernel.sum()
    return sharp, kernel, blur(sharp, kernel, boundary="circular")


def _psnr(a, b):
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def test_noise_free_circular_blur_is_recovered(circular_case):
    sharp, kernel, blurred = circular_case
    assert _psnr(blurred, sharp) < 25
    out = hyper_laplacian(blurred, kernel, weight=1e-5, boundary="circular")
    assert _psnr(out, sharp) > 40


def test_result_has_lower_objective_than_quadratic_solutions(circular_case):
    """The solver's output should score better on its own objective
    1/2 ||K * x - b||^2 + weight sum |grad x|^alpha than the blurred image, the Wiener and the
    gradient-prior solutions, and (being a MAP estimate) than the sharp image itself."""
    sharp, kernel, blurred = circular_case
    noisy = blurred + 0.01 * np.random.default_rng(0).standard_normal(blurred.shape)
    weight, alpha = 1e-3, 2 / 3
    k = torch.from_numpy(kernel)

    def objective(x):
        t = torch.from_numpy(x)[None, None]
        data = 0.5 * float(((blur(t, k, boundary="circular") - torch.from_numpy(noisy)) ** 2).sum())
        prior = float((grad_x(t).abs() ** alpha + grad_y(t).abs() ** alpha).sum())
        return data + weight * prior

    ours = objective(hyper_laplacian(noisy, kernel, weight=weight, alpha=alpha,
                                     boundary="circular"))
    for other in (noisy, sharp, wiener(noisy, kernel, boundary="circular"),
                  l2_gradient(noisy, kernel, boundary="circular")):
        assert ours < objective(other)


def test_beats_wiener_on_noisy_natural_image(astronaut):
    sharp = astronaut[100:292, 100:292].astype(np.float64)
    kernel = camera_shake_kernel(17, 7).astype(np.float64)
    kernel /= kernel.sum()
    blurred = blur(sharp, kernel, boundary="reflect")
    blurred += 0.01 * np.random.default_rng(1).standard_normal(blurred.shape)
    assert _psnr(hyper_laplacian(blurred, kernel), sharp) > _psnr(wiener(blurred, kernel),
                                                                  sharp) + 1.0


@pytest.mark.parametrize("boundary", ["taper", "circular"])
def test_per_sample_kernels_equal_a_loop(rng, boundary):
    images = torch.from_numpy(rng.random((3, 2, 40, 36)))
    kernels = torch.stack([torch.from_numpy(camera_shake_kernel(9, s).astype(np.float64))
                           for s in range(3)])
    kernels = kernels / kernels.sum(dim=(-2, -1), keepdim=True)
    batched = hyper_laplacian(images, kernels, boundary=boundary)
    for i in range(3):
        single = hyper_laplacian(images[i:i + 1], kernels[i], boundary=boundary)
        torch.testing.assert_close(batched[i:i + 1], single, atol=1e-10, rtol=0)


def test_numpy_and_float32(astronaut):
    image = astronaut[:64, :72]
    kernel = camera_shake_kernel(9, 3)
    out = hyper_laplacian(image, kernel)
    assert isinstance(out, np.ndarray) and out.shape == image.shape and out.dtype == np.float32
    ref = hyper_laplacian(image.astype(np.float64), kernel.astype(np.float64))
    # the w-step is discontinuous at its threshold, so float32 rounding can flip a few gradients
    diff = np.abs(out - ref)
    assert diff.mean() < 1e-4 and diff.max() < 1e-2


@pytest.mark.parametrize("kwargs, message", [
    (dict(alpha=1.5), r"alpha: must be in \(0, 1\]"),
    (dict(alpha=0.0), "alpha: must be a finite number > 0"),
    (dict(beta_rate=1.0), "beta_rate: must be > 1"),
    (dict(beta_init=-1.0), "beta_init"),
    (dict(beta_max=float("nan")), "beta_max"),
    (dict(inner_iterations=0), "inner_iterations"),
])
def test_bad_options_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        hyper_laplacian(torch.rand(1, 1, 16, 16), np.full((3, 3), 1 / 9), **kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(rng):
    images = torch.from_numpy(rng.random((2, 3, 48, 40)).astype(np.float32))
    kernel = torch.from_numpy(camera_shake_kernel(11, 0))
    cpu = hyper_laplacian(images, kernel)
    gpu = hyper_laplacian(images.cuda(), kernel.cuda())
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-3, rtol=0)
