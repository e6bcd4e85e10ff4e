"""Schuler et al. 2014/2016 (survey eq. 2-4): the Fourier solvers against constructed cases and a
numpy reference, gradients, kernel helpers, the pipeline end to end, and refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from deblurkit.blur.convolve import blur
from deblurkit.blur.kernels import camera_shake_kernel, gaussian_kernel, validate_kernel
from deblurkit.errors import ConfigError, DeblurkitError, ImageError, KernelError, WeightsError
from deblurkit.estimation.schuler2014 import (
    DEFAULT_OPTIONS,
    SIZES,
    Schuler2014Estimator,
    Schuler2014Net,
    delta_kernel,
    image_estimate,
    kernel_estimate,
    pad_kernel,
    project_kernel,
    resample_kernels,
    scale_kernel_sizes,
)
from deblurkit.estimation.schuler2014 import MIN_SIDE
from deblurkit.models.weights import save_weights


def _circular(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Independent reference: circular convolution, kernel centre (kh//2, kw//2) (scipy.ndimage)."""
    return ndi.convolve(x, k, mode="grid-wrap")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


@pytest.fixture(scope="module")
def crop(camera) -> np.ndarray:
    return camera[200:264, 220:284].astype(np.float64)


# ------------------------------------------------------------------------------------ eq. 3

def test_eq3_recovers_known_kernels_exactly(crop):
    """x_i = sharp features, y_i = their circular blur: eq. 3 with a tiny beta returns the kernel."""
    # (the intensity carries the DC term, which derivative features alone leave undetermined)
    feats = np.stack([crop, np.roll(crop, -1, 0) - crop])                               # (2, H, W)
    kernels = [camera_shake_kernel(9, seed=4).astype(np.float64), gaussian_kernel(1.3, 7).astype(np.float64)]
    x = torch.from_numpy(np.stack([feats, feats]))
    y = torch.from_numpy(np.stack([[_circular(f, kernels[0]) for f in feats],
                                   [_circular(f, pad_kernel(kernels[1], 9)) for f in feats]]))
    k = kernel_estimate(x, y, 1e-12, 9)
    assert k.shape == (2, 9, 9) and k.dtype == torch.float64
    np.testing.assert_allclose(k[0].numpy(), kernels[0], atol=1e-8)
    np.testing.assert_allclose(k[1].numpy(), pad_kernel(kernels[1], 9), atol=1e-8)


def test_eq3_matches_numpy_reference_with_noise_and_beta(crop, rng):
    """Noisy features, a real regulariser: the numpy form of eq. 3 (full FFT, explicit crop)."""
    x = rng.normal(size=(1, 3, 32, 40))
    y = rng.normal(size=(1, 3, 32, 40))
    beta = 7.5
    X, Y = np.fft.fft2(x), np.fft.fft2(y)
    full = np.real(np.fft.ifft2((np.conj(X) * Y).sum(1) / ((np.abs(X) ** 2).sum(1) + beta)))[0]
    kh, kw = 5, 7
    ref = np.empty((kh, kw))
    for a in range(kh):
        for b in range(kw):
            ref[a, b] = full[(a - kh // 2) % 32, (b - kw // 2) % 40]
    out = kernel_estimate(torch.from_numpy(x), torch.from_numpy(y), beta, (kh, kw))
    np.testing.assert_allclose(out[0].numpy(), ref, atol=1e-12)
    # a larger regulariser shrinks the kernel
    big = kernel_estimate(torch.from_numpy(x), torch.from_numpy(y), 100 * beta, (kh, kw))
    assert float(big.norm()) < float(out.norm())


def test_eq3_gradcheck():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 2, 6, 7, dtype=torch.float64, generator=g, requires_grad=True)
    y = torch.randn(1, 2, 6, 7, dtype=torch.float64, generator=g, requires_grad=True)
    beta = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, c: kernel_estimate(a, b, c, 3), (x, y, beta))


def test_eq3_refuses_bad_arguments():
    x = torch.zeros(1, 2, 8, 8)
    with pytest.raises(ImageError, match="x_feats, y_feats"):
        kernel_estimate(x, torch.zeros(1, 3, 8, 8), 1.0, 3)
    with pytest.raises(ConfigError, match="beta"):
        kernel_estimate(x, x, 0.0, 3)
    with pytest.raises(ConfigError, match="beta"):
        kernel_estimate(x, x, torch.tensor([-1.0]), 3)
    with pytest.raises(KernelError, match="kernel_size"):
        kernel_estimate(x, x, 1.0, 9)


# ------------------------------------------------------------------------------------ eq. 4

def test_eq4_recovers_known_image_circular(crop):
    k = gaussian_kernel(1.0, 9).astype(np.float64)
    blurred = _circular(crop, k)
    out = image_estimate(torch.from_numpy(blurred)[None, None], torch.from_numpy(k), 1e-9, boundary="circular")
    assert _psnr(out[0, 0].numpy(), crop) > 40
    assert _psnr(blurred, crop) < 30          # the case is not trivial


def test_eq4_gradcheck():
    g = torch.Generator().manual_seed(1)
    img = torch.rand(1, 1, 6, 6, dtype=torch.float64, generator=g, requires_grad=True)
    k = torch.rand(3, 3, dtype=torch.float64, generator=g) + 0.1
    k = (k / k.sum()).requires_grad_(True)
    beta = torch.tensor(0.05, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, c: image_estimate(a, b, c, boundary="circular"), (img, k, beta))


# ------------------------------------------------------------------------------------ kernel helpers

def test_project_kernel_properties():
    k = torch.tensor([[[0.5, -0.2, 0.1], [0.0, 0.3, -0.1], [0.2, 0.0, 0.0]],
                      [[-1.0, -1.0, -1.0], [-1.0, -2.0, -1.0], [-1.0, -1.0, -1.0]]], dtype=torch.float64)
    p = project_kernel(k)
    assert bool((p >= 0).all())
    np.testing.assert_allclose(p.sum(dim=(-2, -1)).numpy(), [1.0, 1.0], atol=1e-12)
    pos = np.maximum(k[0].numpy(), 0)
    np.testing.assert_allclose(p[0].numpy(), pos / pos.sum(), atol=1e-5)
    np.testing.assert_allclose(p[1].numpy(), delta_kernel(3, np.float64), atol=1e-12)  # no mass -> delta


@pytest.mark.parametrize("size", [4, 5])
def test_pad_kernel_keeps_the_blur(camera, size):
    k = camera_shake_kernel(size, seed=2)
    img = camera[:40, :40]
    np.testing.assert_allclose(blur(img, k), blur(img, pad_kernel(k, 11)), atol=1e-6)
    with pytest.raises(KernelError):
        pad_kernel(k, size - 1)


def test_resample_kernels_keeps_centre_and_scales_offsets():
    d = torch.from_numpy(delta_kernel(15, np.float64))[None]
    np.testing.assert_allclose(resample_kernels(d, 7, 2.0)[0].numpy(), delta_kernel(7, np.float64), atol=1e-12)
    # a coarse delta (blur under one coarse pixel) doubles to the bilinear tent, centred
    tent = np.outer([0.5, 1, 0.5], [0.5, 1, 0.5]) / 4
    up = resample_kernels(d, 15, 0.5)[0].numpy()
    np.testing.assert_allclose(up[6:9, 6:9], tent, atol=1e-5)        # project_kernel adds 1e-6 delta
    assert abs(up.sum() - 1) < 1e-12
    # a blob off the centre by (+4, -2): its centroid moves to (+2, -1) at half resolution
    k = np.zeros((15, 15))
    k[7 + 4 - 1:7 + 4 + 2, 7 - 2 - 1:7 - 2 + 2] = 1
    k /= k.sum()
    r = resample_kernels(torch.from_numpy(k)[None], 7, 2.0)[0].numpy()
    yy, xx = np.mgrid[:7, :7] - 3
    assert abs(r.sum() - 1) < 1e-12 and r.min() >= 0
    assert abs((r * yy).sum() - 2) < 0.05 and abs((r * xx).sum() + 1) < 0.05


def test_scale_kernel_sizes():
    assert scale_kernel_sizes(31, 7, 255, 255) == [31, 15, 7]
    assert scale_kernel_sizes(27, 7, 255, 255) == [27, 13, 7]
    assert scale_kernel_sizes(31, 7, 64, 64) == [31, 15, 7]    # 16 px at scale 2 >= 2 * 7
    assert scale_kernel_sizes(31, 7, 64, 56) == [31]           # 28 px at scale 1 < 2 * 15
    assert scale_kernel_sizes(31, 31, 255, 255) == [31]


# ------------------------------------------------------------------------------------ network + pipeline

def test_net_outputs_every_scale_and_stage():
    torch.manual_seed(0)
    net = Schuler2014Net(**{**DEFAULT_OPTIONS, **SIZES["tiny"], "stages": 2})
    out = net(torch.rand(2, 1, 64, 72), 15)
    assert [len(level) for level in out] == [2, 2]
    (k0, x0), (k1, x1) = out[0][-1], out[-1][-1]
    assert k0.shape == (2, 7, 7) and x0.shape == (2, 1, 32, 36)
    assert k1.shape == (2, 15, 15) and x1.shape == (2, 1, 64, 72)
    np.testing.assert_allclose(k1.sum(dim=(-2, -1)).detach().numpy(), [1, 1], atol=1e-5)
    # gradients reach every parameter through eq. 3 and eq. 4
    (x1.mean() + (k1 ** 2).sum()).backward()
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in net.parameters())


def test_net_refuses_bad_options_and_inputs():
    with pytest.raises(ConfigError, match="filter_size"):
        Schuler2014Net(filter_size=4)
    with pytest.raises(ConfigError, match="stages"):
        Schuler2014Net(stages=0)
    net = Schuler2014Net(**{**DEFAULT_OPTIONS, **SIZES["tiny"]})
    with pytest.raises(ImageError, match="grey batch"):
        net(torch.rand(1, 3, 64, 64), 15)
    with pytest.raises(ImageError, match="too small"):
        net(torch.rand(1, 1, 20, 64), 15)
    with pytest.raises(ConfigError, match="kernel_size"):
        net(torch.rand(1, 1, 64, 64), 14)


@pytest.fixture(scope="module")
def blurred_pair(camera):
    k = camera_shake_kernel(11, seed=7)
    sharp = camera[150:246, 180:276]
    return np.clip(blur(sharp, k), 0, 1).astype(np.float32), k


def test_pipeline_end_to_end_untrained(blurred_pair):
    b, _ = blurred_pair
    est = Schuler2014Estimator(weights=None, kernel_size=15, options=SIZES["tiny"])
    assert est.kind == "uniform"
    k = est.estimate_kernel(b)
    assert k.shape == (15, 15) and k.dtype == np.float32
    validate_kernel(k)                                             # non-negative, finite, sums to 1
    out = est.deblur(b)
    assert out.shape == b.shape and out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
    rgb = np.repeat(b[:, :, None], 3, axis=2)
    out3 = est.deblur(rgb)
    assert out3.shape == rgb.shape
    # a grey image given as RGB gives the same kernel as the grey image
    np.testing.assert_allclose(est.estimate_kernel(rgb), k, atol=1e-5)


def test_weights_round_trip_and_refusals(tmp_path, blurred_pair, monkeypatch):
    b, _ = blurred_pair
    est = Schuler2014Estimator(weights=None, kernel_size=15, options=SIZES["tiny"], seed=3)
    path = tmp_path / "s.safetensors"
    save_weights(est.net, path, metadata={"model": "schuler2014", "options": est.net.options})
    again = Schuler2014Estimator(weights=path, kernel_size=15)
    np.testing.assert_array_equal(again.estimate_kernel(b), est.estimate_kernel(b))
    other = tmp_path / "o.safetensors"
    save_weights(est.net, other, metadata={"model": "nafnet", "options": est.net.options})
    with pytest.raises(WeightsError, match="not 'schuler2014'"):
        Schuler2014Estimator(weights=other)
    with pytest.raises(WeightsError, match="not found"):
        Schuler2014Estimator(weights=tmp_path / "missing.safetensors")
    # shipped weights: a registry without the entry is refused with the training command
    from deblurkit import paths
    (tmp_path / "registry.json").write_text(json.dumps({}))
    monkeypatch.setattr(paths, "weights_dir", lambda: tmp_path)
    with pytest.raises(WeightsError, match="train_estimators schuler2014"):
        Schuler2014Estimator()
    # ... and an entry with a wrong sha256 too
    (tmp_path / "registry.json").write_text(json.dumps(
        {"schuler2014": {"model": "schuler2014", "file": "s.safetensors", "sha256": "0" * 64,
                         "options": est.net.options}}))
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        Schuler2014Estimator()


@pytest.mark.parametrize("bad, match", [
    (np.zeros((64, 64), np.uint8), "dtype uint8"),
    (np.full((64, 64), np.nan, np.float32), "non-finite"),
    (np.zeros((64, 64, 2), np.float32), "2 channels"),
    (np.full((64, 64), 1.5, np.float32), r"\[0, 1\]"),
    (np.zeros((8, 64), np.float32), f">= {MIN_SIDE}"),
    ([[0.0]], "numpy array"),
])
def test_bad_images_refused(bad, match):
    est = Schuler2014Estimator(weights=None, kernel_size=3, options=SIZES["tiny"])
    with pytest.raises(ImageError, match=match):
        est.estimate_kernel(bad)
    with pytest.raises(ImageError, match=match):
        est.deblur(bad)


def test_bad_estimator_options_refused(blurred_pair):
    with pytest.raises(ConfigError, match="kernel_size"):
        Schuler2014Estimator(weights=None, kernel_size=16)
    with pytest.raises(ConfigError, match="max_side"):
        Schuler2014Estimator(weights=None, kernel_size=31, max_side=40)
    with pytest.raises(ConfigError, match="deconv_weight"):
        Schuler2014Estimator(weights=None, deconv_weight=-1.0)
    with pytest.raises(ConfigError, match="unknown"):
        Schuler2014Estimator(weights=None, options={"layers": 3})
    est = Schuler2014Estimator(weights=None, kernel_size=31, options=SIZES["tiny"])
    with pytest.raises(ImageError, match="too small"):
        est.estimate_kernel(np.zeros((40, 96), np.float32))
    assert isinstance(ImageError("x"), DeblurkitError)
