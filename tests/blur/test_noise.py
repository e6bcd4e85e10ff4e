"""Noise, JPEG and quantisation: statistics on flat images, seeds, types, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deblurkit.blur.noise import (
    add_gaussian_noise,
    add_poisson_gaussian_noise,
    jpeg_compress,
    quantize,
)
from deblurkit.errors import ConfigError, ImageError


def psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - b) ** 2))


# ------------------------------------------------------------------ Gaussian


@pytest.mark.parametrize("sigma", [0.01, 0.05])
def test_gaussian_noise_statistics(sigma):
    flat = np.full((400, 400), 0.5, dtype=np.float32)
    noisy = add_gaussian_noise(flat, sigma, seed=1)
    assert noisy.dtype == np.float32 and noisy.shape == flat.shape
    diff = noisy.astype(np.float64) - 0.5
    assert abs(diff.std() - sigma) < 0.01 * sigma      # 160000 samples: sd of the sd ~ 0.2 %
    assert abs(diff.mean()) < 5 * sigma / 400
    # neighbouring values are independent
    assert abs(np.corrcoef(diff[:, :-1].ravel(), diff[:, 1:].ravel())[0, 1]) < 0.01


def test_gaussian_noise_seeds_types_and_clip():
    x = np.full((64, 48, 3), 0.5, dtype=np.float32)
    a = add_gaussian_noise(x, 0.1, 3)
    assert np.array_equal(a, add_gaussian_noise(x, 0.1, 3))
    assert np.array_equal(a, add_gaussian_noise(x, 0.1, np.random.default_rng(3)))
    assert not np.array_equal(a, add_gaussian_noise(x, 0.1, 4))
    # torch input: same numbers as numpy for the same seed and shape, on the same dtype
    t = add_gaussian_noise(torch.from_numpy(x), 0.1, 3)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    assert np.array_equal(t.numpy(), a)
    g1 = add_gaussian_noise(torch.from_numpy(x), 0.1, torch.Generator().manual_seed(5))
    g2 = add_gaussian_noise(torch.from_numpy(x), 0.1, torch.Generator().manual_seed(5))
    assert torch.equal(g1, g2)
    assert add_gaussian_noise(x.astype(np.float64), 0.1, 3).dtype == np.float64
    # clip: sensor saturation at 0; unclipped noise keeps its symmetric distribution
    dark = np.zeros((300, 300), dtype=np.float32)
    clipped = add_gaussian_noise(dark, 0.1, 0)
    raw = add_gaussian_noise(dark, 0.1, 0, clip=False)
    assert clipped.min() == 0.0 and raw.min() < -0.2
    assert abs(raw.mean()) < 0.002
    assert abs(clipped.mean() - 0.1 / np.sqrt(2 * np.pi)) < 0.002  # mean of a half normal
    assert np.array_equal(clipped, np.clip(raw, 0, 1))
    assert np.array_equal(add_gaussian_noise(x, 0.0, 0), x)


def test_gaussian_noise_refuses_bad_arguments():
    x = np.zeros((4, 4), dtype=np.float32)
    with pytest.raises(ConfigError, match="sigma: .*-0.1"):
        add_gaussian_noise(x, -0.1, 0)
    with pytest.raises(ConfigError, match="sigma: .*nan"):
        add_gaussian_noise(x, float("nan"), 0)
    with pytest.raises(ConfigError, match="seed: .*-1"):
        add_gaussian_noise(x, 0.1, -1)
    with pytest.raises(ConfigError, match="seed: a torch.Generator needs a torch image"):
        add_gaussian_noise(x, 0.1, torch.Generator())
    with pytest.raises(ImageError, match="image: must be floating point.*uint8"):
        add_gaussian_noise(np.zeros((4, 4), np.uint8), 0.1, 0)


# ------------------------------------------------------------------ Poisson-Gaussian


@pytest.mark.parametrize("level", [0.2, 0.8])
def test_poisson_gaussian_variance_is_signal_over_peak_plus_read_noise(level):
    peak, sigma = 200.0, 0.02
    flat = np.full((400, 400), level, dtype=np.float64)
    noisy = add_poisson_gaussian_noise(flat, peak, sigma, seed=2, clip=False)
    expected = level / peak + sigma**2
    assert abs(noisy.var() - expected) < 0.02 * expected
    assert abs(noisy.mean() - level) < 4 * np.sqrt(expected / flat.size)
    # without read noise the values are whole photon counts
    counts = add_poisson_gaussian_noise(flat, peak, 0.0, seed=2, clip=False) * peak
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)


def test_poisson_gaussian_seeds_torch_and_bad_input():
    x = np.full((50, 40), 0.5, dtype=np.float32)
    a = add_poisson_gaussian_noise(x, 50, 0.01, 9)
    assert a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1
    assert np.array_equal(a, add_poisson_gaussian_noise(x, 50, 0.01, 9))
    assert not np.array_equal(a, add_poisson_gaussian_noise(x, 50, 0.01, 10))
    t = add_poisson_gaussian_noise(torch.from_numpy(x), 50, 0.01, 9)
    assert np.array_equal(t.numpy(), a)
    big = torch.full((1, 1, 300, 300), 0.5, dtype=torch.float64)
    g = add_poisson_gaussian_noise(big, 100, 0.0, torch.Generator().manual_seed(0), clip=False)
    assert abs(float(g.var()) - 0.005) < 0.0003
    with pytest.raises(ConfigError, match="peak: .*> 0, got 0"):
        add_poisson_gaussian_noise(x, 0, 0.01, 0)
    with pytest.raises(ConfigError, match="sigma: .*-1"):
        add_poisson_gaussian_noise(x, 10, -1, 0)
    with pytest.raises(ImageError, match="non-negative values, got min -0.5"):
        add_poisson_gaussian_noise(x - 1.0, 10, 0.0, 0)


# ------------------------------------------------------------------ JPEG and quantisation


def test_jpeg_changes_the_image_but_keeps_it_close(astronaut):
    img = astronaut[:128, :160]
    hi, lo = jpeg_compress(img, 90), jpeg_compress(img, 20)
    assert hi.dtype == np.float32 and hi.shape == img.shape
    assert not np.array_equal(quantize(img, 8), hi)
    assert psnr(hi, img) > 30 and psnr(lo, img) > 24
    assert psnr(hi, img) > psnr(lo, img) + 3
    np.testing.assert_allclose(hi * 255, np.round(hi * 255), atol=1e-4)  # 8-bit values
    assert np.array_equal(jpeg_compress(img, 90), hi)                    # deterministic


def test_jpeg_grey_and_torch_batches(camera, astronaut):
    grey = camera[:64, :80]
    g2 = jpeg_compress(grey, 75)
    assert g2.shape == grey.shape and psnr(g2, grey) > 28
    np.testing.assert_array_equal(jpeg_compress(grey[..., None], 75)[..., 0], g2)
    batch = np.stack([astronaut[:48, :64], astronaut[100:148, 200:264]])
    t = torch.from_numpy(batch).permute(0, 3, 1, 2).double()
    out = jpeg_compress(t, 60)
    assert out.dtype == torch.float64 and out.shape == t.shape
    for i in range(2):
        np.testing.assert_allclose(out[i].permute(1, 2, 0).numpy(),
                                   jpeg_compress(batch[i], 60), atol=1e-7)


def test_jpeg_refuses_bad_input(astronaut):
    img = astronaut[:32, :32]
    with pytest.raises(ConfigError, match="quality: .*got 0"):
        jpeg_compress(img, 0)
    with pytest.raises(ConfigError, match="quality: .*got 101"):
        jpeg_compress(img, 101)
    too_bright = img.copy()
    too_bright[0, 0, 0] = 1.5
    with pytest.raises(ImageError, match=r"values must lie in \[0, 1\].*max 1.5"):
        jpeg_compress(too_bright, 80)
    with pytest.raises(ImageError, match=r"\(H, W, 3\), got shape \(32, 32, 4\)"):
        jpeg_compress(np.concatenate([img, img[..., :1]], axis=2), 80)
    with pytest.raises(ImageError, match="C = 1 or 3"):
        jpeg_compress(torch.rand(1, 2, 8, 8), 80)


def test_quantize_rounds_to_the_grid(rng):
    x = rng.random((50, 60)).astype(np.float32)
    q = quantize(x, 8)
    assert q.dtype == np.float32
    np.testing.assert_allclose(q * 255, np.round(x.astype(np.float64) * 255), atol=1e-4)
    assert np.abs(q - x).max() <= 0.5 / 255 + 1e-7
    assert np.array_equal(quantize(q, 8), q)
    assert set(np.unique(quantize(x, 1))) <= {0.0, 1.0}
    t = quantize(torch.from_numpy(x), 4)
    np.testing.assert_allclose(t.numpy(), np.round(x * 15.0) / 15.0, atol=1e-7)
    with pytest.raises(ConfigError, match="bits: .*got 0"):
        quantize(x, 0)
    with pytest.raises(ConfigError, match="bits: .*got 17"):
        quantize(x, 17)
    x[3, 4] = -0.1
    with pytest.raises(ImageError, match="min -0.1 "):
        quantize(x, 8)
