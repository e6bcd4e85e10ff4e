"""Training losses against hand-computed values and independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from deblurkit.errors import ConfigError, ImageError
from deblurkit.train import losses as L


def _pair(seed=0, shape=(2, 3, 8, 10), dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g, dtype=dtype), torch.rand(shape, generator=g, dtype=dtype)


def test_l1_of_a_constructed_pair():
    pred = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[[1.0, -2.0], [0.5, 0.5]]]])
    assert L.l1_loss(pred, target).item() == pytest.approx((1 + 2 + 0.5 + 0.5) / 4)


def test_charbonnier_constructed_and_limits():
    pred = torch.zeros(1, 1, 1, 2, dtype=torch.float64)
    target = torch.tensor([[[[3.0, 0.0]]]], dtype=torch.float64)
    # sqrt(9 + 16) = 5 and sqrt(0 + 16) = 4 with eps = 4
    assert L.charbonnier_loss(pred, target, eps=4.0).item() == pytest.approx(4.5)
    p, t = _pair()
    assert L.charbonnier_loss(p, t, eps=1e-9).item() == pytest.approx(L.l1_loss(p, t).item(), rel=1e-6)


def test_psnr_loss_is_minus_the_mean_psnr_of_skimage():
    p, t = _pair(shape=(3, 3, 16, 16))
    ref = np.mean([peak_signal_noise_ratio(t[i].numpy(), p[i].numpy(), data_range=1.0) for i in range(3)])
    assert L.psnr_loss(p, t, eps=1e-12).item() == pytest.approx(-ref, abs=1e-6)
    ref255 = np.mean([peak_signal_noise_ratio((t[i] * 255).numpy(), (p[i] * 255).numpy(), data_range=255)
                      for i in range(3)])
    assert L.psnr_loss(p * 255, t * 255, data_range=255, eps=1e-12).item() == pytest.approx(-ref255, abs=1e-6)
    # identical images are finite thanks to eps: 10 log10(1e-8) = -80 dB
    assert L.psnr_loss(t, t).item() == pytest.approx(-80.0)


def test_psnr_loss_agrees_with_deblurkit_metrics():
    psnr = pytest.importorskip("deblurkit.metrics.psnr")
    p, t = _pair(shape=(2, 3, 16, 16))
    assert L.psnr_loss(p, t, eps=1e-12).item() == pytest.approx(-psnr.psnr(p, t).mean().item(), abs=1e-6)


@pytest.mark.parametrize("norm", ["ortho", "backward", "forward"])
def test_fft_l1_against_numpy(norm):
    p, t = _pair(shape=(2, 3, 8, 10))
    d = np.fft.rfft2(p.numpy() - t.numpy(), axes=(-2, -1), norm=norm)
    ref = np.abs(d.real).mean() + np.abs(d.imag).mean()
    assert L.fft_l1_loss(p, t, norm=norm).item() == pytest.approx(ref, rel=1e-10)


def test_fft_l1_of_a_constant_offset_is_the_dc_term():
    t = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    p = t + 0.25
    # only the DC coefficient is non-zero: 16 * 0.25 = 4 unnormalised, over 4 * 3 rfft2 entries
    assert L.fft_l1_loss(p, t, norm="backward").item() == pytest.approx(4.0 / 12)


def _block_mean(x: np.ndarray) -> np.ndarray:
    b, c, h, w = x.shape
    return x.reshape(b, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


def test_eq20_two_scales_by_hand():
    # scale 1: 1x1x2x2 output vs target; scale 0: 1x1x4x4. Targets given explicitly.
    o0 = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    t0 = torch.ones(1, 1, 4, 4, dtype=torch.float64)  # ||.||^2 = 16, N = 16 -> 16 / 32 = 0.5
    o1 = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=torch.float64)
    t1 = torch.zeros(1, 1, 2, 2, dtype=torch.float64)  # ||.||^2 = 30, N = 4 -> 30 / 8 = 3.75
    assert L.multiscale_euclidean_loss([o0, o1], [t0, t1]).item() == pytest.approx(0.5 + 3.75)
    assert L.multiscale_euclidean_loss([o0, o1], [t0, t1], weights=[2.0, 0.0]).item() == pytest.approx(1.0)


def test_eq20_with_a_single_target_uses_its_bilinear_pyramid():
    p, t = _pair(shape=(2, 3, 8, 12))
    half = torch.rand(2, 3, 4, 6, dtype=torch.float64)
    t_half = _block_mean(t.numpy())  # bilinear at an exact factor 2 = 2x2 mean
    ref = 0.0
    for o, tg in ((p.numpy(), t.numpy()), (half.numpy(), t_half)):
        n = o[0].size
        ref += np.mean(((o - tg) ** 2).sum(axis=(1, 2, 3)) / (2 * n))
    assert L.multiscale_euclidean_loss([p, half], t).item() == pytest.approx(ref, rel=1e-10)


def test_eq23_by_hand_and_relation_to_eq20():
    o0 = torch.zeros(1, 2, 2, 2, dtype=torch.float64)
    t0 = torch.full((1, 2, 2, 2), 2.0, dtype=torch.float64)  # ||.||^2 = 32, chw = 8 -> 4
    o1 = torch.zeros(1, 2, 1, 1, dtype=torch.float64)
    t1 = torch.tensor([1.0, 3.0], dtype=torch.float64).view(1, 2, 1, 1)  # 10 / 2 = 5
    # 1 / (2K) * (4 + 5), K = 2
    assert L.multiscale_content_loss([o0, o1], [t0, t1]).item() == pytest.approx(9 / 4)
    p, t = _pair()
    # with one scale, eq. 23 = eq. 20 = MSE / 2
    assert L.multiscale_content_loss(p, t).item() == pytest.approx(((p - t) ** 2).mean().item() / 2)
    assert L.multiscale_euclidean_loss(p, t).item() == pytest.approx(((p - t) ** 2).mean().item() / 2)


def test_pyramid_charbonnier_constructed_cases():
    eps = 1e-3
    t = torch.rand(2, 3, 16, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    # a constant offset survives every level of block means: each level gives sqrt(c^2 + eps^2)
    c = 0.2
    assert L.pyramid_charbonnier_loss(t + c, t, levels=3, eps=eps).item() == pytest.approx(math.hypot(c, eps))
    # a +-a checkerboard vanishes in every 2x2 block mean: level 0 sees it, levels 1 and 2 see zero
    a = 0.1
    yy, xx = torch.meshgrid(torch.arange(16), torch.arange(12), indexing="ij")
    checker = a * (1 - 2 * ((yy + xx) % 2)).to(torch.float64)
    got = L.pyramid_charbonnier_loss(t + checker, t, levels=3, eps=eps).item()
    assert got == pytest.approx((math.hypot(a, eps) + 2 * eps) / 3)
    # one level is the plain Charbonnier loss; a 2x2 block mean by hand for level 1
    p = torch.rand_like(t)
    assert L.pyramid_charbonnier_loss(p, t, levels=1, eps=eps).item() == pytest.approx(
        L.charbonnier_loss(p, t, eps=eps).item(), rel=1e-12)
    blocks = lambda x: x.reshape(2, 3, 8, 2, 6, 2).mean(dim=(3, 5))  # noqa: E731
    ref = (L.charbonnier_loss(p, t, eps=eps) + L.charbonnier_loss(blocks(p), blocks(t), eps=eps)) / 2
    assert L.pyramid_charbonnier_loss(p, t, levels=2, eps=eps).item() == pytest.approx(ref.item(), rel=1e-12)
    with pytest.raises(ConfigError, match="levels: expected an integer >= 1, got 0"):
        L.build_loss([{"name": "pyramid_charbonnier", "levels": 0}])
    with pytest.raises(ImageError, match="5 levels need images of at least 16 px, got \\(16, 12\\)"):
        L.pyramid_charbonnier_loss(p, t, levels=5)


def test_modules_equal_the_functions():
    p, t = _pair()
    half = torch.rand(2, 3, 4, 5, dtype=torch.float64)
    cases = [
        (L.L1Loss(), L.l1_loss(p, t)),
        (L.CharbonnierLoss(eps=0.1), L.charbonnier_loss(p, t, eps=0.1)),
        (L.PSNRLoss(data_range=2.0, eps=1e-6), L.psnr_loss(p, t, data_range=2.0, eps=1e-6)),
        (L.FFTL1Loss(norm="backward"), L.fft_l1_loss(p, t, norm="backward")),
        (L.PyramidCharbonnierLoss(levels=2, eps=0.1), L.pyramid_charbonnier_loss(p, t, levels=2, eps=0.1)),
    ]
    for module, ref in cases:
        assert module(p, t).item() == pytest.approx(ref.item(), rel=1e-12)
        assert module([half, p], t).item() == pytest.approx(ref.item(), rel=1e-12)  # finest output
    assert L.MultiScaleEuclideanLoss(weights=[1, 3])([p, half], t).item() == pytest.approx(
        L.multiscale_euclidean_loss([p, half], t, weights=[1, 3]).item(), rel=1e-12)
    assert L.MultiScaleContentLoss()([p, half], t).item() == pytest.approx(
        L.multiscale_content_loss([p, half], t).item(), rel=1e-12)


def test_build_loss_weighted_sum():
    p, t = _pair()
    loss = L.build_loss([{"name": "l1", "weight": 0.5}, {"name": "charbonnier", "eps": 0.01},
                         {"name": "fft_l1", "weight": 0.1, "norm": "ortho"}])
    ref = 0.5 * L.l1_loss(p, t) + L.charbonnier_loss(p, t, eps=0.01) + 0.1 * L.fft_l1_loss(p, t)
    assert loss(p, t).item() == pytest.approx(ref.item(), rel=1e-12)


def test_losses_are_differentiable():
    p, t = _pair(dtype=torch.float32)
    p.requires_grad_(True)
    spec = [{"name": n} for n in L.LOSSES]
    L.build_loss(spec)(p, t).backward()
    assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_build_loss_refuses_bad_specs():
    with pytest.raises(ConfigError) as err:
        L.build_loss([{"name": "l2"}])
    msg = str(err.value)
    assert "'l2'" in msg and all(name in msg for name in L.LOSSES)
    with pytest.raises(ConfigError, match=r"\(charbonnier\): unknown option 'epsilon'; valid keys: name, weight, eps"):
        L.build_loss([{"name": "charbonnier", "epsilon": 1e-3}])
    with pytest.raises(ConfigError, match="weight: expected a number >= 0, got -1"):
        L.build_loss([{"name": "l1", "weight": -1}])
    with pytest.raises(ConfigError, match="missing 'name'"):
        L.build_loss([{"weight": 1}])
    with pytest.raises(ConfigError, match="empty"):
        L.build_loss([])
    with pytest.raises(ConfigError, match="eps: expected a positive number, got 0"):
        L.build_loss([{"name": "charbonnier", "eps": 0}])
    with pytest.raises(ConfigError, match="norm.*'l2'"):
        L.build_loss([{"name": "fft_l1", "norm": "l2"}])


def test_bad_tensors_are_refused():
    p, t = _pair()
    with pytest.raises(ImageError, match=r"pred shape \(2, 3, 8, 10\) differs from target shape \(2, 3, 8, 9\)"):
        L.l1_loss(p, t[..., :9])
    with pytest.raises(ImageError, match="pred: expected a floating dtype"):
        L.l1_loss(torch.zeros(1, 1, 2, 2, dtype=torch.int64), torch.zeros(1, 1, 2, 2))
    with pytest.raises(ImageError, match=r"target: expected \(B, C, H, W\)"):
        L.psnr_loss(p, t[0])
    with pytest.raises(ImageError, match="2 outputs but 1 targets"):
        L.multiscale_euclidean_loss([p, p], [t])
    with pytest.raises(ConfigError, match="3 weights for 2 scales"):
        L.multiscale_euclidean_loss([p, p], t, weights=[1, 1, 1])
    assert math.isfinite(L.multiscale_content_loss([p], [t]).item())
