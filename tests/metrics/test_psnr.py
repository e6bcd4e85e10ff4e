"""PSNR (survey eq. 30-31) against scikit-image and constructed cases; refusal of bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from deblurkit.errors import DeblurkitError, ImageError
from deblurkit.metrics import as_batch, psnr, psnr_y, rgb_to_y


def _pair(rng, shape, noise=0.05, dtype=np.float64):
    a = rng.random(shape)
    b = np.clip(a + noise * rng.standard_normal(shape), 0, 1)
    return a.astype(dtype), b.astype(dtype)


def _t(a: np.ndarray) -> torch.Tensor:
    """numpy (H, W, C) / (H, W) -> (1, C, H, W), written independently of as_batch."""
    a = a if a.ndim == 3 else a[..., None]
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]


@pytest.mark.parametrize("shape", [(37, 53, 3), (64, 41), (13, 11, 1), (50, 50, 4)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_skimage(rng, shape, dtype):
    a, b = _pair(rng, shape, dtype=dtype)
    expected = peak_signal_noise_ratio(a, b, data_range=1.0)
    got = psnr(_t(b), _t(a))
    assert got.shape == (1,)
    assert got.dtype == (torch.float64 if dtype == np.float64 else torch.float32)
    assert abs(float(got[0]) - expected) < 1e-4


def test_batch_matches_each_image_and_skimage(rng, astronaut):
    imgs = [astronaut[:97, :131], astronaut[200:297, 50:181], astronaut[300:397, 300:431]]
    noisy = [np.clip(i + s * rng.standard_normal(i.shape), 0, 1).astype(np.float32)
             for i, s in zip(imgs, (0.01, 0.05, 0.2))]
    pred = torch.cat([_t(n) for n in noisy])
    target = torch.cat([_t(i) for i in imgs])
    got = psnr(pred, target)
    expected = [peak_signal_noise_ratio(i, n, data_range=1.0) for i, n in zip(imgs, noisy)]
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-4)
    assert got[0] > got[1] > got[2]          # more noise, lower PSNR


def test_numpy_input_equals_tensor_input(rng):
    a, b = _pair(rng, (20, 30, 3), dtype=np.float32)
    assert torch.equal(psnr(a, b), psnr(_t(a), _t(b)))
    assert as_batch(a[..., 0], "x").shape == (1, 1, 20, 30)
    assert as_batch(np.stack([a, b]), "x").shape == (2, 3, 20, 30)


def test_constant_error_known_value():
    x = torch.full((2, 3, 16, 16), 0.5)
    for d, expected in ((0.1, 20.0), (0.01, 40.0)):
        got = psnr(x + d, x)
        np.testing.assert_allclose(got.numpy(), [expected] * 2, atol=1e-3)
    # data_range scales the peak: 255-scaled images give the same PSNR with data_range=255
    np.testing.assert_allclose(psnr((x + 0.1) * 255, x * 255, data_range=255).numpy(),
                               [20.0] * 2, atol=1e-3)


def test_identical_images_are_infinite():
    x = torch.rand(2, 3, 8, 9)
    got = psnr(x, x.clone())
    assert torch.isinf(got).all() and (got > 0).all()


def test_crop_border_matches_cropped_skimage(rng):
    a, b = _pair(rng, (40, 44, 3))
    b[:4] = 0.0                               # damage only the border
    got = float(psnr(_t(b), _t(a), crop_border=4)[0])
    assert abs(got - peak_signal_noise_ratio(a[4:-4, 4:-4], b[4:-4, 4:-4], data_range=1)) < 1e-6
    assert got > float(psnr(_t(b), _t(a))[0])


def test_psnr_y_matches_independent_luma(rng):
    a, b = _pair(rng, (33, 35, 3))
    ya = 16 / 255 + (65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]) / 255
    yb = 16 / 255 + (65.481 * b[..., 0] + 128.553 * b[..., 1] + 24.966 * b[..., 2]) / 255
    expected = peak_signal_noise_ratio(ya, yb, data_range=1.0)
    assert abs(float(psnr_y(_t(b), _t(a))[0]) - expected) < 1e-6
    np.testing.assert_allclose(rgb_to_y(_t(a))[0, 0].numpy(), ya, atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(rng):  # pragma: no cover - only with a GPU
    a, b = _pair(rng, (64, 70, 3), dtype=np.float32)
    cpu = psnr(_t(a), _t(b))
    gpu = psnr(_t(a).cuda(), _t(b).cuda())
    assert gpu.device.type == "cuda"
    assert abs(float(gpu.cpu()[0]) - float(cpu[0])) < 1e-4


def _refused(match: str, fn, *args, **kwargs):
    with pytest.raises(DeblurkitError, match=match) as info:
        fn(*args, **kwargs)
    assert "\n" not in str(info.value)
    return info.value


def test_bad_inputs_refused():
    x = torch.rand(1, 3, 16, 16)
    _refused(r"pred shape \(1, 3, 16, 16\) != target shape \(1, 3, 16, 17\)",
             psnr, x, torch.rand(1, 3, 16, 17))
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    _refused(r"pred: holds 1 NaN", psnr, bad, x)
    bad[0, 0, 0, 0] = float("inf")
    _refused(r"target: holds 0 NaN and 1 infinite", psnr, x, bad)
    _refused(r"pred: tensor dtype torch.uint8", psnr, (x * 255).to(torch.uint8), x)
    _refused(r"pred: tensor shape \(3, 16, 16\)", psnr, x[0], x[0])
    _refused(r"data_range: 0", psnr, x, x, data_range=0)
    _refused(r"data_range: nan", psnr, x, x, data_range=float("nan"))
    _refused(r"crop_border: 8 leaves nothing of a 16x16 image", psnr, x, x, crop_border=8)
    _refused(r"crop_border: -1", psnr, x, x, crop_border=-1)
    _refused(r"pred: 1 channels; psnr_y needs RGB", psnr_y, x[:, :1], x[:, :1])
    _refused(r"target: list", psnr, x, [1, 2])
    assert isinstance(_refused("numpy dtype uint8", psnr, np.zeros((4, 4), np.uint8), x),
                      ImageError)
    assert math.isfinite(float(psnr(x, x * 0.9)[0]))
