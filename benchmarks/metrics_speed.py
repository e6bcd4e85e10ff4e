"""Speed of deblurkit's PSNR and SSIM ("skimage" convention) against scikit-image, same results.

One 1280x720 RGB pair: the real GoPro pair ``dev/real_gopro/{blur,sharp}/Istanbul.png`` from
:func:`deblurkit.paths.shared_data` when present, otherwise scikit-image's astronaut tiled to
1280x720 with a blurred, noisy copy. Both libraries get the same float32 ``(H, W, C)`` arrays
(deblurkit converts them to ``(1, C, H, W)`` tensors once, outside the timing: that is how
training-time validation calls it). Runs alternate between the two libraries and the median of
``--runs`` is reported, in one process, with ``torch.set_num_threads(2)``.

    python benchmarks/metrics_speed.py [--runs 7] [--threads 2]

Prints a Markdown table: seconds per call, the speed-up (scikit-image time / deblurkit time) and
the largest absolute difference between the two results.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deblurkit.metrics import psnr, ssim  # noqa: E402
from deblurkit.paths import shared_data  # noqa: E402


def _load_pair() -> tuple[np.ndarray, np.ndarray, str]:
    root = shared_data() / "dev" / "real_gopro"
    blur, sharp = root / "blur" / "Istanbul.png", root / "sharp" / "Istanbul.png"
    if blur.is_file() and sharp.is_file():
        from deblurkit.io import read_image

        a, b = read_image(blur).pixels, read_image(sharp).pixels
        if a.shape == (720, 1280, 3) and b.shape == a.shape:
            return a, b, f"real GoPro pair {blur.name}"
    from scipy import ndimage
    from skimage import data

    astro = data.astronaut().astype(np.float32) / 255.0
    sharp_img = np.tile(astro, (2, 3, 1))[:720, :1280]
    rng = np.random.default_rng(0)
    blurred = ndimage.gaussian_filter(sharp_img, (1.5, 1.5, 0))
    blurred = np.clip(blurred + 0.02 * rng.standard_normal(blurred.shape), 0, 1)
    return blurred.astype(np.float32), np.ascontiguousarray(sharp_img), "synthetic (astronaut)"


def _time(fn, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per function (median)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    pred, target, source = _load_pair()
    p = torch.from_numpy(np.ascontiguousarray(pred.transpose(2, 0, 1)))[None]
    t = torch.from_numpy(np.ascontiguousarray(target.transpose(2, 0, 1)))[None]

    cases = {
        "PSNR": (lambda: float(psnr(p, t)[0]),
                 lambda: float(peak_signal_noise_ratio(target, pred, data_range=1.0))),
        "SSIM (skimage convention)": (
            lambda: float(ssim(p, t, convention="skimage")[0]),
            lambda: float(structural_similarity(pred, target, gaussian_weights=True, sigma=1.5,
                                                use_sample_covariance=False, data_range=1.0,
                                                channel_axis=-1))),
    }
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"input: {source}, {pred.shape[1]}x{pred.shape[0]} RGB float32; "
          f"torch threads {torch.get_num_threads()}; median of {args.runs} runs; "
          f"load average {load:.1f} on {os.cpu_count()} CPUs")
    if torch.get_num_threads() > 1 and load > (os.cpu_count() or 1):
        print("warning: the machine is busy; multi-threaded torch stalls at every parallel "
              "region when its threads are not scheduled, so these timings understate it")
    print()
    print("| metric | deblurkit (s) | scikit-image (s) | speed-up | max abs difference |")
    print("|---|---|---|---|---|")
    for name, (ours, ref) in cases.items():
        ours(), ref()                                  # warm-up (oneDNN primitives, caches)
        ours_t, ref_t = [], []
        value = ref_value = None
        for _ in range(args.runs):                     # alternate so load affects both alike
            dt, value = _time(ours, 1)
            ours_t.append(dt)
            dt, ref_value = _time(ref, 1)
            ref_t.append(dt)
        a, b = statistics.median(ours_t), statistics.median(ref_t)
        print(f"| {name} | {a:.4f} | {b:.4f} | {b / a:.1f}x | {abs(value - ref_value):.2e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
