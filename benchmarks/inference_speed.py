"""Inference speed of every registered model on one 1280 x 720 RGB photo, per backend.

    python benchmarks/inference_speed.py [--models NAME ...] [--repeats 5] [--limit 20]
                                         [--threads N] [--memory | --no-memory]

For each model of ``deblurkit.models.list_models()`` (random weights: speed does not depend on
them) it reports parameters, MACs of one forward pass at 1280 x 720 (Conv2d / ConvTranspose2d /
Linear, counted by ``deblurkit.infer.profile.count_macs``), and the median wall time of
``deblurkit.infer.deblur`` on a uint8 1280 x 720 x 3 array (conversion, model, clipping and
rounding included; start-up, model loading and ONNX export excluded) for:

- torch eager fp32 (the baseline of the ``time vs torch fp32`` column, same run),
- torch eager fp32 with channels-last memory layout: what ``deblur`` and ``deblurkit deblur`` use
  on the CPU by default (backend ``"auto"``),
- torch eager with bf16 autocast on the CPU,
- onnxruntime (exported with dynamic H/W, checked against torch; graph optimisation ALL).

A configuration whose time, estimated from a 320 x 180 run (x16) or measured by the full-size
warm-up call, exceeds ``--limit`` seconds is reported as ``skipped: > LIMIT s`` with that figure.
With ``--memory`` (default on) the peak resident memory (Linux ``VmHWM``) of deblurring one
4000 x 3000 photo with the first model and deblur's default backend is measured in a fresh
process. Prints a Markdown table. Timings depend on the load of the machine: rerun on an idle one
before quoting them.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deblurkit.infer import count_macs, count_parameters, deblur  # noqa: E402
from deblurkit.infer.backends import OnnxRunner, TorchRunner, export_onnx, finest_output  # noqa: E402

H, W = 720, 1280

VARIANTS = {
    # multi-scale models return a list: time the full-resolution output, as deblur() does
    "torch fp32": lambda m: TorchRunner(finest_output(m)),
    "torch fp32 channels_last (deblur's CPU default)": lambda m: TorchRunner(finest_output(m), channels_last=True),
    "torch bf16 autocast": lambda m: TorchRunner(finest_output(m), autocast_dtype=torch.bfloat16),
    "onnxruntime fp32": lambda m: OnnxRunner(export_onnx(m)),
}


def configurations(selected: list[str] | None) -> dict[str, tuple[str, str | None]]:
    """Label -> (registry name, size preset) for every registered model and size, skipping
    presets whose options equal an entry already listed (e.g. ``nafnet`` size ``w32`` is
    ``nafnet-w32``). ``selected``: only these labels (``NAME`` or ``NAME size=SIZE``)."""
    from deblurkit import models

    out: dict[str, tuple[str, str | None]] = {}
    if selected:
        for label in selected:
            name, _, size = label.partition(" size=")
            models.model_options(name, size=size or None)  # unknown name or size: one-line error
            out[label] = (name, size or None)
        return out
    seen: list[dict] = []
    for name in models.list_models():
        for size in [None, *sorted(models.MODELS[name].sizes)]:
            options = models.model_options(name, size=size)
            if options in seen:
                continue
            seen.append(options)
            label = name if size is None else f"{name} size={size}"
            out[label] = (name, size)
    return out


def create(name: str, size: str | None):
    from deblurkit import models

    return models.create(name, size=size)


def time_variant(runner, image: np.ndarray, repeats: int, limit: float) -> tuple[float | None, str]:
    """Median seconds of ``deblur(image, runner)``; ``None`` and a note when over ``limit``.

    A probe on a quarter-size crop (1/16 of the pixels) first: when 16 times its best of two
    times exceeds
    ``limit``, the full size is not run and the estimate is reported instead.
    """
    probe = np.ascontiguousarray(image[: image.shape[0] // 4, : image.shape[1] // 4])
    deblur(probe, runner)  # warm-up (allocator, lazy init, oneDNN kernels)
    probe_times = []
    for _ in range(2):
        start = time.perf_counter()
        deblur(probe, runner)
        probe_times.append(time.perf_counter() - start)
    estimate = 16 * min(probe_times)
    if estimate > limit:
        size = f"{probe.shape[1]}x{probe.shape[0]}"
        return None, f"skipped: > {limit:g} s (est. {estimate:.0f} s from a {size} run)"
    start = time.perf_counter()
    deblur(image, runner)  # full-size warm-up
    first = time.perf_counter() - start
    if first > limit:
        return None, f"skipped: > {limit:g} s (warm-up took {first:.1f} s)"
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        deblur(image, runner)
        times.append(time.perf_counter() - start)
    return statistics.median(times), ""


def peak_memory_mb(model_name: str, size: str | None, backend: str, h: int = 3000,
                   w: int = 4000) -> tuple[float, float]:
    """(baseline RSS, peak RSS) in MB of a fresh process deblurring one ``h x w`` uint8 photo with
    ``model_name`` (random weights) and ``backend``; baseline = after imports and model creation."""
    code = f"""
import sys, json, numpy as np, torch

def hwm_mb():  # peak resident set of this process (VmHWM; ru_maxrss would include the parent's)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from deblurkit import models
from deblurkit.infer import deblur, make_runner
m = models.create({model_name!r}, size={size!r}).eval()
torch.set_num_threads({torch.get_num_threads()})
runner = make_runner(m, "cpu", {backend!r}, name={model_name!r})
deblur(np.zeros((64, 64, 3), np.uint8), runner)
base = hwm_mb()
img = np.random.default_rng(0).integers(0, 256, ({h}, {w}, 3), dtype=np.uint8)
out = deblur(img, runner)
peak = hwm_mb()
print(json.dumps([base, peak]))
"""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, DEBLURKIT_CACHE=cache)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                              check=True)
    base, peak = json.loads(done.stdout.strip().splitlines()[-1])
    return base, peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=None,
                        help="registry names or labels such as 'nafnet size=tiny' (default: all)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per configuration")
    parser.add_argument("--limit", type=float, default=20.0,
                        help="skip a configuration whose warm-up call takes longer (seconds)")
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True,
                        help="measure peak memory on a 4000 x 3000 photo (first listed model)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch (and onnxruntime intra-op) threads; default: torch's own "
                             "choice. On a loaded machine 1 thread gives steadier figures: "
                             "spinning OpenMP threads that lose their core slow every op")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    configs = configurations(args.models)
    names = list(configs)
    image = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    rows = []
    best: dict[str, tuple[float, str]] = {}
    for name, (model_name, size) in configs.items():
        torch.manual_seed(0)
        model = create(model_name, size).eval()
        params = count_parameters(model)
        macs = count_macs(copy.deepcopy(model).to("meta"), (1, 3, H, W))  # from shapes only
        baseline = None
        for variant, build in VARIANTS.items():
            runner = build(copy.deepcopy(model))  # a runner may change layout in place
            seconds, note = time_variant(runner, image, args.repeats, args.limit)
            if variant == "torch fp32":
                baseline = seconds
            ratio = (f"{seconds / baseline:.2f}x" if seconds is not None and baseline is not None
                     else "")
            rows.append((name, params, macs, variant, seconds, note, ratio))
            if seconds is not None and (name not in best or seconds < best[name][0]):
                best[name] = (seconds, variant)
            print(f"  {name:<24} {variant:<48} {note or f'{seconds:.3f} s'}", file=sys.stderr)

    print(f"\nInference on one {W}x{H} RGB uint8 photo via deblurkit.infer.deblur; median of "
          f"{args.repeats} after one warm-up. {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} logical CPUs, torch {torch.__version__} with "
          f"{torch.get_num_threads()} threads.\n")
    print("| model | params (M) | GMACs | backend | median s / photo | time vs torch fp32 |")
    print("|---|---:|---:|---|---:|---:|")
    for name, params, macs, variant, seconds, note, ratio in rows:
        shown = note if seconds is None else f"{seconds:.3f}"
        print(f"| {name} | {params / 1e6:.2f} | {macs / 1e9:.1f} | {variant} | {shown} | {ratio} |")
    if best:
        print("\nFastest per model: " + "; ".join(f"{n}: {v} ({s:.3f} s)" for n, (s, v) in best.items()))

    if args.memory and names:
        name = names[0]
        backend = "auto"  # what deblur() uses by default
        base, peak = peak_memory_mb(*configs[name], backend)
        print(f"\nPeak resident memory deblurring one 4000x3000 photo with {name} ({backend}, "
              f"automatic tiling): {peak:.0f} MB (process after start-up: {base:.0f} MB; "
              f"ratio {peak / base:.2f}x).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
