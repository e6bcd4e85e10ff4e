"""SSIM (survey eq. 32) under each convention against independent references.

* ``skimage``: scikit-image's own ``structural_similarity`` with the Wang et al. settings.
* ``matlab`` / ``per-channel``: a direct numpy/scipy re-statement of MathWorks' ``ssim.m``
  (3-D or 2-D Gaussian of sigma 1.5 and size 2*ceil(3*1.5)+1 = 11, ``imfilter(..., 'replicate')``
  = ``scipy.ndimage.correlate(mode='nearest')``, mean of the whole map), written here from the
  formula, not from deblurkit's code.
* ``y``: scikit-image on a BT.601 luma computed here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.metrics import structural_similarity

from deblurkit.errors import DeblurkitError
from deblurkit.metrics import SSIM_CONVENTIONS, ssim


def _t(a: np.ndarray) -> torch.Tensor:
    a = a if a.ndim == 3 else a[..., None]
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]


def _pair(rng, shape, noise=0.08, dtype=np.float64):
    a = rng.random(shape)
    a = ndimage.uniform_filter(a, 3)          # some structure, not just white noise
    b = np.clip(a + noise * rng.standard_normal(shape), 0, 1)
    return a.astype(dtype), b.astype(dtype)


def _skimage(a, b, data_range=1.0):
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=data_range,
                                 channel_axis=-1 if a.ndim == 3 else None)


def _matlab_reference(a: np.ndarray, b: np.ndarray, volume: bool, L: float = 1.0) -> float:
    """MATLAB ``ssim(A, ref)`` restated in numpy/scipy (float64)."""
    k = np.arange(-5, 6)
    g = np.exp(-(k * k) / (2 * 1.5 ** 2))
    if volume:                      # 3-D Gaussian over (H, W, C)
        win = g[:, None, None] * g[None, :, None] * g[None, None, :]
    else:                           # 2-D Gaussian
        win = g[:, None] * g[None, :]
    win = win / win.sum()

    def filt(z):
        return ndimage.correlate(z, win, mode="nearest")

    mx, my = filt(a), filt(b)
    vx, vy, vxy = filt(a * a) - mx ** 2, filt(b * b) - my ** 2, filt(a * b) - mx * my
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    s = (2 * mx * my + c1) * (2 * vxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return float(s.mean())


SKIMAGE_SHAPES = [(37, 53, 3), (64, 41), (11, 11, 3), (30, 29, 1), (23, 40, 4)]


@pytest.mark.parametrize("shape", SKIMAGE_SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_skimage_convention_matches_skimage(rng, shape, dtype):
    a, b = _pair(rng, shape, dtype=dtype)
    expected = _skimage(a.astype(np.float64), b.astype(np.float64))
    got = ssim(_t(a), _t(b), convention="skimage")
    assert got.dtype == (torch.float64 if dtype == np.float64 else torch.float32)
    assert abs(float(got[0]) - expected) < (1e-10 if dtype == np.float64 else 1e-5)


def test_skimage_convention_on_photos_batch_and_range(rng, astronaut, camera):
    crops = [astronaut[:101, :77], astronaut[250:351, 300:377], astronaut[400:501, 10:87]]
    noisy = [np.clip(c + s * rng.standard_normal(c.shape), 0, 1).astype(np.float32)
             for c, s in zip(crops, (0.02, 0.08, 0.3))]
    got = ssim(torch.cat([_t(n) for n in noisy]), torch.cat([_t(c) for c in crops]))
    expected = [_skimage(n, c) for n, c in zip(noisy, crops)]
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-4)
    assert got[0] > got[1] > got[2]
    # each item of the batch alone gives the same value
    for i, (n, c) in enumerate(zip(noisy, crops)):
        assert abs(float(ssim(_t(n), _t(c))[0]) - float(got[i])) < 1e-6
    # a grey photo in [0, 255] with data_range=255
    cam = camera[100:227, 50:201].astype(np.float64) * 255
    blurred = ndimage.gaussian_filter(cam, 1.0)
    expected = _skimage(blurred, cam, data_range=255)
    assert abs(float(ssim(_t(blurred), _t(cam), data_range=255)[0]) - expected) < 1e-8


def test_numpy_inputs_accepted(rng):
    a, b = _pair(rng, (25, 26, 3), dtype=np.float32)
    assert torch.equal(ssim(a, b), ssim(_t(a), _t(b)))


@pytest.mark.parametrize("convention", SSIM_CONVENTIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_identity_and_symmetry(rng, convention, dtype):
    a, b = _pair(rng, (2, 31, 33, 3), dtype=dtype)
    x = torch.from_numpy(a.transpose(0, 3, 1, 2).copy())
    y = torch.from_numpy(b.transpose(0, 3, 1, 2).copy())
    assert torch.equal(ssim(x, x.clone(), convention=convention), torch.ones(2, dtype=x.dtype))
    s_xy = ssim(x, y, convention=convention)
    assert torch.allclose(s_xy, ssim(y, x, convention=convention), atol=1e-6)
    assert (s_xy < 0.99).all() and (s_xy > 0).all()


@pytest.mark.parametrize("shape", [(30, 41, 3), (20, 17, 1), (8, 9, 3), (19, 25, 4), (16, 15)])
def test_matlab_convention_matches_volume_reference(rng, shape):
    a, b = _pair(rng, shape)
    volume = len(shape) == 3 and shape[2] > 1
    ra, rb = (a, b) if volume else (a.reshape(shape[:2]), b.reshape(shape[:2]))
    expected = _matlab_reference(rb, ra, volume=volume)
    assert abs(float(ssim(_t(b), _t(a), convention="matlab")[0]) - expected) < 1e-10
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    assert abs(float(ssim(_t(b32), _t(a32), convention="matlab")[0]) - expected) < 1e-5


def test_matlab_grey_is_2d_and_per_channel_matches_reference(rng):
    a, b = _pair(rng, (28, 35, 3))
    per_channel = np.mean([_matlab_reference(b[..., c], a[..., c], volume=False)
                           for c in range(3)])
    got = float(ssim(_t(b), _t(a), convention="per-channel")[0])
    assert abs(got - per_channel) < 1e-10
    # the 3-D volume filter mixes channels: a different number on colour images ...
    volume = float(ssim(_t(b), _t(a), convention="matlab")[0])
    assert abs(volume - got) > 1e-4
    # ... but the same on grey images, where MATLAB's filter is 2-D
    g = ssim(_t(b[..., :1]), _t(a[..., :1]), convention="matlab")
    assert torch.allclose(g, ssim(_t(b[..., :1]), _t(a[..., :1]), convention="per-channel"))


def test_y_convention_is_skimage_on_luma(rng, astronaut):
    a = astronaut[100:190, 200:283].astype(np.float64)
    b = np.clip(a + 0.05 * rng.standard_normal(a.shape), 0, 1)

    def luma(x):
        return 16 / 255 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255

    expected = _skimage(luma(b), luma(a))
    assert abs(float(ssim(_t(b), _t(a), convention="y")[0]) - expected) < 1e-10


def test_ssim_falls_with_blur(camera):
    x = camera[:128, :160].astype(np.float64)
    values = [float(ssim(_t(ndimage.gaussian_filter(x, s)), _t(x))[0]) for s in (0.5, 1, 2, 4)]
    assert all(v1 > v2 for v1, v2 in zip(values, values[1:]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("convention", SSIM_CONVENTIONS)
def test_cuda_matches_cpu(rng, convention):  # pragma: no cover - only with a GPU
    a, b = _pair(rng, (2, 64, 70, 3), dtype=np.float32)
    x = torch.from_numpy(a.transpose(0, 3, 1, 2).copy())
    y = torch.from_numpy(b.transpose(0, 3, 1, 2).copy())
    cpu = ssim(x, y, convention=convention)
    gpu = ssim(x.cuda(), y.cuda(), convention=convention)
    assert gpu.device.type == "cuda"
    assert torch.allclose(gpu.cpu(), cpu, atol=1e-5)


def _refused(match: str, *args, **kwargs):
    with pytest.raises(DeblurkitError, match=match) as info:
        ssim(*args, **kwargs)
    assert "\n" not in str(info.value)


def test_bad_inputs_refused():
    x = torch.rand(1, 3, 16, 16)
    _refused(r"convention: 'gopro'; choose one of 'skimage', 'matlab', 'per-channel', 'y'",
             x, x, convention="gopro")
    _refused(r"pred shape \(1, 3, 16, 16\) != target shape \(1, 1, 16, 16\)", x, x[:, :1])
    bad = x.clone()
    bad[0, 1, 2, 3] = float("nan")
    _refused(r"target: holds 1 NaN", x, bad)
    _refused(r"10x16 image; SSIM convention 'skimage' needs at least 11x11", x[..., :10, :],
             x[..., :10, :])
    _refused(r"pred: 1 channel\(s\); SSIM convention 'y' needs RGB", x[:, :1], x[:, :1],
             convention="y")
    _refused(r"data_range: -1", x, x, data_range=-1)
    # MATLAB's conventions pad, so small images are fine there
    assert float(ssim(x[..., :5, :6], x[..., :5, :6], convention="matlab")[0]) == 1.0
