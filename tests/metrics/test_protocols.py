"""Levin (2009) and Köhler (2012) protocols: constructed cases with known answers, a brute-force
re-computation of the shift/intensity search, and refusal of bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from deblurkit.errors import DeblurkitError
from deblurkit.metrics import (align, kohler_score, levin_score, plain_score, psnr, ssim)


def _t(a: np.ndarray) -> torch.Tensor:
    a = a if a.ndim == 3 else a[..., None]
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]


@pytest.fixture(scope="module")
def grey(camera) -> np.ndarray:
    return camera[150:250, 200:290].astype(np.float64)          # 100 x 90


@pytest.fixture(scope="module")
def rgb(astronaut) -> np.ndarray:
    return astronaut[40:120, 180:270].astype(np.float64)        # 80 x 90 x 3


def test_plain_is_psnr_and_ssim(rgb, rng):
    noisy = np.clip(rgb + 0.05 * rng.standard_normal(rgb.shape), 0, 1)
    s = plain_score(_t(noisy), _t(rgb), ssim_convention="matlab", crop_border=3)
    c = slice(3, -3)
    assert torch.equal(s.psnr, psnr(_t(noisy[c, c]), _t(rgb[c, c])))
    assert torch.equal(s.ssim, ssim(_t(noisy[c, c]), _t(rgb[c, c]), convention="matlab"))


def test_levin_shifted_copy_scores_like_the_original(grey, rgb):
    for img in (grey, rgb):
        shifted = np.roll(img, (3, -4), axis=(0, 1))
        s = levin_score(_t(shifted), _t(img))
        assert s.shift.tolist() == [[3.0, -4.0]]
        assert float(s.ssd[0]) == 0.0
        assert math.isinf(float(s.psnr[0])) and float(s.ssim[0]) == pytest.approx(1.0, abs=1e-12)
        # without alignment the same copy scores badly
        assert float(psnr(_t(shifted), _t(img))[0]) < 25


def test_levin_batch_has_one_shift_per_image(grey):
    shifts = [(0, 0), (-10, 10), (7, 2)]
    pred = torch.cat([_t(np.roll(grey, s, axis=(0, 1))) for s in shifts])
    target = torch.cat([_t(grey)] * 3)
    s = levin_score(pred, target, max_shift=10, border=15)
    assert s.shift.tolist() == [list(map(float, v)) for v in shifts]
    assert torch.isinf(s.psnr).all()


def test_levin_error_ratio_by_hand(grey):
    # pred = gt + 0.1 and reference = gt + 0.05 (itself shifted by (-2, 1)) on the crop:
    # SSD(pred) = n * 0.01, SSD(ref) = n * 0.0025, ratio = 4; PSNR(pred) = 20 dB.
    gt = grey * 0.8
    pred = gt + 0.1
    ref = np.roll(gt + 0.05, (-2, 1), axis=(0, 1))
    s = levin_score(_t(pred), _t(gt), reference=_t(ref), max_shift=5, border=15)
    n = (100 - 30) * (90 - 30)
    assert s.shift.tolist() == [[0.0, 0.0]]
    assert float(s.ssd[0]) == pytest.approx(n * 0.01, rel=1e-9)
    assert float(s.reference_ssd[0]) == pytest.approx(n * 0.0025, rel=1e-9)
    assert float(s.error_ratio[0]) == pytest.approx(4.0, rel=1e-9)
    assert float(s.psnr[0]) == pytest.approx(20.0, abs=1e-9)
    # a perfect reference and a perfect estimate: ratio 1; imperfect estimate: +inf
    perfect = levin_score(_t(gt), _t(gt), reference=_t(gt))
    assert float(perfect.error_ratio[0]) == 1.0
    assert math.isinf(float(levin_score(_t(pred), _t(gt), reference=_t(gt)).error_ratio[0]))


def test_levin_subpixel_refinement(camera):
    smooth = ndimage.gaussian_filter(camera[100:200, 100:200].astype(np.float64), 2.0)
    half = 0.5 * (smooth + np.roll(smooth, 1, axis=0))       # shifted by half a pixel down
    integer = levin_score(_t(half), _t(smooth), max_shift=4, border=10)
    refined = levin_score(_t(half), _t(smooth), max_shift=4, border=10, subpixel=True)
    assert integer.shift[0, 0] in (0.0, 1.0)
    assert abs(float(refined.shift[0, 0]) - 0.5) < 0.15 and abs(float(refined.shift[0, 1])) < 0.15
    assert float(refined.ssd[0]) < 0.2 * float(integer.ssd[0])


def _brute_force(p: np.ndarray, t: np.ndarray, m: int, b: int, fit: str):
    """Try every shift directly; returns (best shift, ssd, gain, offset)."""
    h, w = t.shape[0] - 2 * b, t.shape[1] - 2 * b
    tc = t[b:b + h, b:b + w]
    best = None
    for dy in range(-m, m + 1):
        for dx in range(-m, m + 1):
            win = p[b + dy:b + dy + h, b + dx:b + dx + w]
            if fit == "none":
                a, c = 1.0, 0.0
            elif fit == "gain":
                a, c = (win * tc).sum() / (win * win).sum(), 0.0
            else:
                design = np.stack([win.ravel(), np.ones(win.size)], 1)
                (a, c), *_ = np.linalg.lstsq(design, tc.ravel(), rcond=None)
            ssd = ((a * win + c - tc) ** 2).sum()
            if best is None or ssd < best[1]:
                best = ((dy, dx), ssd, a, c)
    return best


@pytest.mark.parametrize("fit", ["none", "gain", "affine"])
def test_alignment_matches_brute_force(rng, rgb, fit):
    gt = rgb[:40, :50]
    pred = 0.7 * np.roll(gt, (2, -1), axis=(0, 1)) + 0.05 + 0.03 * rng.standard_normal(gt.shape)
    al = align(_t(pred), _t(gt), max_shift=3, border=4, fit=fit)
    (dy, dx), ssd, a, c = _brute_force(pred, gt, 3, 4, fit)
    assert al.shift.tolist() == [[float(dy), float(dx)]]
    assert float(al.ssd[0]) == pytest.approx(ssd, rel=1e-9)
    assert float(al.gain[0]) == pytest.approx(a, rel=1e-9)
    assert float(al.offset[0]) == pytest.approx(c, abs=1e-9)
    assert torch.allclose(al.pred[0], _t(a * pred[4 + dy:36 + dy, 4 + dx:46 + dx] + c)[0])


def _frames(astronaut) -> torch.Tensor:
    """Four distinct "sharp frames": crops more than max_shift apart, (4, 3, 70, 80)."""
    corners = ((50, 200), (50, 212), (300, 30), (62, 200))
    crops = [astronaut[y:y + 70, x:x + 80] for y, x in corners]
    return torch.cat([_t(c.astype(np.float64)) for c in crops])


def test_kohler_scaled_copy_is_perfect_and_best_frame_chosen(astronaut):
    frames = _frames(astronaut)
    for k in range(4):
        pred = 0.8 * frames[k]
        s = kohler_score(pred, frames, max_shift=5)
        assert s.psnr_frame == k and s.ssim_frame == k
        assert s.psnr > 100 and s.ssim == pytest.approx(1.0, abs=1e-9)
        assert float(s.gain[k]) == pytest.approx(1.25, rel=1e-9)
        assert float(s.frame_psnr[k]) == s.psnr and s.frame_psnr.shape == (4,)
    # without the intensity fit the same estimate scores far lower
    plain = kohler_score(0.8 * frames[2], frames, max_shift=5, fit="none")
    assert plain.psnr < 30


def test_kohler_translated_scaled_copy(astronaut):
    frames = _frames(astronaut)
    pred = 0.8 * torch.roll(frames[1], (2, -3), dims=(1, 2))
    s = kohler_score(pred[None], frames, max_shift=6, border=8)
    assert s.psnr_frame == 1 and s.psnr > 100
    assert s.shift[1].tolist() == [2.0, -3.0]
    # an exposure offset needs the affine fit
    off = pred + 0.1
    assert kohler_score(off, frames, max_shift=6, fit="affine").psnr > 100
    assert kohler_score(off, frames, max_shift=6, fit="gain").psnr < 60


def test_kohler_numpy_frames(astronaut):
    frames = _frames(astronaut)
    arr = frames.permute(0, 2, 3, 1).numpy()                # (N, H, W, C)
    s = kohler_score(arr[3] * 0.9, arr, max_shift=3)
    assert s.psnr_frame == 3 and s.psnr > 100


def _refused(match, fn, *args, **kwargs):
    with pytest.raises(DeblurkitError, match=match) as info:
        fn(*args, **kwargs)
    assert "\n" not in str(info.value)


def test_bad_inputs_refused(grey, astronaut):
    x = _t(grey)
    _refused(r"border: 5 < max_shift 10", levin_score, x, x, border=5)
    _refused(r"border: 45 leaves nothing of a 100x90 image", levin_score, x, x, max_shift=2,
             border=45)
    _refused(r"pred shape .* != target shape", levin_score, x, x[..., :80])
    _refused(r"reference shape \(1, 1, 100, 80\) != target shape", levin_score, x, x,
             reference=x[..., :80])
    bad = x.clone()
    bad[..., 5, 5] = float("nan")
    _refused(r"pred: holds 1 NaN", levin_score, bad, x)
    _refused(r"max_shift: -1", levin_score, x, x, max_shift=-1)
    _refused(r"ssim_convention: 'wrong'", levin_score, x, x, ssim_convention="wrong")
    frames = _frames(astronaut)
    _refused(r"targets: frames of shape \(3, 70, 79\) != pred shape \(3, 70, 80\)",
             kohler_score, frames[0], frames[..., :79])
    _refused(r"pred: batch of 2 images", kohler_score, frames[:2], frames)
    _refused(r"fit: 'scale'; choose one of 'none', 'gain', 'affine'", kohler_score, frames[0],
             frames, fit="scale")
    bad = frames.clone()
    bad[2, 0, 0, 0] = float("inf")
    _refused(r"targets: holds 0 NaN and 1 infinite", kohler_score, frames[0], bad)
