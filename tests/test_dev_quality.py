"""benchmarks/dev_quality.py: the static-part mask and its PSNR on a constructed pair."""

from __future__ import annotations

import numpy as np
from benchmark_loader import load_benchmark
from skimage.metrics import peak_signal_noise_ratio


def test_static_mask_covers_what_did_not_move_and_masked_psnr_matches_skimage():
    dq = load_benchmark("dev_quality")
    rng = np.random.default_rng(0)
    sharp = rng.random((40, 60, 3))
    blurred = sharp + rng.normal(0, 0.005, sharp.shape)  # static part: tiny differences only
    blurred[10:20, 30:40] = 0.5  # a "moving object": a large difference
    mask = dq.static_mask(blurred, sharp, threshold=0.05, grow=3)
    assert not mask[7:23, 27:43].any()  # the object and 3 px around it are not static
    assert mask[:5].all() and mask[:, :20].all()
    assert mask.sum() == 40 * 60 - 16 * 16
    out = sharp + rng.normal(0, 0.02, sharp.shape)
    got = dq.masked_psnr(out, sharp, mask)
    ref = peak_signal_noise_ratio(sharp[mask], out[mask], data_range=1.0)
    assert abs(got - ref) < 1e-9
    assert np.isnan(dq.masked_psnr(out, sharp, np.zeros(mask.shape, bool)))
    assert dq.masked_psnr(sharp, sharp, mask) == float("inf")
