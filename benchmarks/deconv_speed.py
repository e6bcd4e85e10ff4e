"""Speed of the non-blind deconvolution solvers on one 1280 x 720 RGB photo (2 CPU threads).

    python benchmarks/deconv_speed.py [--repeats 3] [--iterations 30] [--kernel-size 25]
                                      [--threads 2] [--device cpu]

Measured in one run, medians of ``--repeats`` calls (after one warm-up call each):

- ``richardson_lucy(..., boundary="skimage")`` against the reference
  ``skimage.restoration.richardson_lucy(channel, psf, num_iter, clip=False)`` run on each of the
  three channels, same float32 data and iterations; ratio = reference / ours (target >= 3) and the
  largest absolute difference of the results (target <= 1e-4);
- ``hyper_laplacian`` with its defaults (target <= 2 s on this 2-core CPU);
- ``wiener``, ``l2_gradient`` and ``richardson_lucy`` with the default ``"taper"`` boundary.

As a yardstick of the machine's momentary speed the table also times one ``rfft2`` + ``irfft2``
pair (the solvers' own FFT helper) of a 3 x 800 x 1350 float32 canvas (the hyper-Laplacian
solver needs about 9 such pairs' worth of FFTs) and prints the load average: the 2 cores are
shared, so rerun on an idle machine before quoting absolute seconds (under contention two torch
threads can be slower than one: try ``--threads 1``). The photo is the first training image
(``shared_data()/train``) cropped/resized to 1280 x 720, or scikit-image's astronaut if the data
folder is absent; the kernel is ``camera_shake_kernel(kernel_size, seed=0)``; the blur has a
reflect boundary and 1% Gaussian noise, clipped to [0, 1].
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

from deblurkit.blur.convolve import blur  # noqa: E402
from deblurkit.blur.kernels import camera_shake_kernel  # noqa: E402
from deblurkit.deconv import _fft as fft  # noqa: E402
from deblurkit.deconv import hyper_laplacian, l2_gradient, richardson_lucy, wiener  # noqa: E402
from deblurkit.paths import shared_data  # noqa: E402

H, W = 720, 1280


def photo() -> tuple[np.ndarray, str]:
    """A 720 x 1280 x 3 float32 photo in [0, 1] and where it came from."""
    from PIL import Image

    train = shared_data() / "train"
    files = sorted(p for p in train.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")) \
        if train.is_dir() else []
    if files:
        im, source = Image.open(files[0]).convert("RGB"), str(files[0].name)
    else:
        from skimage import data

        im, source = Image.fromarray(data.astronaut()), "skimage astronaut"
    scale = max(W / im.width, H / im.height)
    im = im.resize((max(W, round(im.width * scale)), max(H, round(im.height * scale))),
                   Image.Resampling.BICUBIC)
    left, top = (im.width - W) // 2, (im.height - H) // 2
    arr = np.asarray(im.crop((left, top, left + W, top + H)), dtype=np.float32) / 255.0
    return arr, source


def median_time(fn, repeats: int, device: torch.device) -> tuple[float, object]:
    result = fn()                                                   # warm-up
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--kernel-size", type=int, default=25)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--skip-reference", action="store_true",
                        help="do not run scikit-image (no RL ratio)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    sharp, source = photo()
    kernel = camera_shake_kernel(args.kernel_size, 0)
    rng = np.random.default_rng(0)
    blurred = blur(sharp, kernel, boundary="reflect")
    blurred = np.clip(blurred + 0.01 * rng.standard_normal(blurred.shape), 0, 1).astype(np.float32)
    x = torch.from_numpy(blurred.transpose(2, 0, 1).copy())[None].to(device)
    k = torch.from_numpy(kernel).to(device)

    rows = []
    canvas = torch.rand(1, 3, 800, 1350, device=device)
    t_fft, _ = median_time(lambda: fft.irfft2(fft.rfft2(canvas), s=(800, 1350), overwrite=True),
                           max(args.repeats, 5), device)
    rows.append(("yardstick: rfft2 + irfft2, 3 x 800 x 1350", t_fft, None, None, "", ""))

    n = args.iterations
    t_rl, ours = median_time(
        lambda: richardson_lucy(x, k, iterations=n, boundary="skimage"), args.repeats, device)
    if args.skip_reference:
        rows.append((f"richardson_lucy skimage boundary, {n} it", t_rl, None, None, "", ""))
    else:
        from skimage.restoration import richardson_lucy as sk_rl

        def reference():
            return np.stack([sk_rl(blurred[..., c], kernel, num_iter=n, clip=False)
                             for c in range(3)], axis=2)

        t_ref, ref = median_time(reference, args.repeats, torch.device("cpu"))
        diff = float(np.abs(ours[0].permute(1, 2, 0).cpu().numpy() - ref).max())
        rows.append((f"richardson_lucy vs skimage, {n} it", t_rl, t_ref, t_ref / t_rl,
                     ">= 3x", f"{diff:.2e} (<= 1e-4)"))

    t_hl, _ = median_time(lambda: hyper_laplacian(x, k), args.repeats, device)
    rows.append(("hyper_laplacian (defaults)", t_hl, None, None, "<= 2 s", ""))
    for name, fn in (("wiener", lambda: wiener(x, k)), ("l2_gradient", lambda: l2_gradient(x, k)),
                     (f"richardson_lucy taper, {n} it",
                      lambda: richardson_lucy(x, k, iterations=n))):
        t, _ = median_time(fn, args.repeats, device)
        rows.append((name, t, None, None, "", ""))

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"Deconvolution speed, 1280x720 RGB float32, {args.kernel_size}x{args.kernel_size} "
          f"camera-shake kernel, {device.type}, torch threads {args.threads}, photo {source}, "
          f"medians of {args.repeats}, load average {load}\n")
    print("| operation | ours (s) | reference (s) | reference / ours | target | max abs diff |")
    print("|---|---:|---:|---:|---|---|")
    for name, t, ref_t, ratio, target, diff in rows:
        ref_s = f"{ref_t:.3f}" if ref_t is not None else ""
        ratio_s = f"{ratio:.1f}x" if ratio is not None else ""
        print(f"| {name} | {t:.3f} | {ref_s} | {ratio_s} | {target} | {diff} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
