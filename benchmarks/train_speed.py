"""Training speed of the engine on this CPU: seconds per step of ``deblurkit train`` for fp32,
channels-last, bf16 autocast (``amp: bf16``) and both, against fp32 in the same run (a ratio).

Issue 8 asks for bf16 in the recipe study: a faster step buys more steps in the same CPU-hours,
worth having only if the dev figures per hour do not drop (that half is the learning-curve arm
``g1`` in docs/training.md). Fixed in-memory pairs, so only the step itself is timed.

    python benchmarks/train_speed.py [--threads 1] [--steps 30] [--repeats 3] [--batch 8] [--crop 96]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark scripts

from engine_overhead import Fixed  # noqa: E402  (n random sharp crops and their box blur)

from deblurkit.errors import ConfigError  # noqa: E402
from deblurkit.models import model_options  # noqa: E402
from deblurkit.train import engine as E  # noqa: E402
from deblurkit.train.config import config_from_dict  # noqa: E402

VARIANTS = {  # name -> (amp, channels_last)
    "fp32 (reference)": ("none", False),
    "fp32 channels-last": ("none", True),
    "bf16 autocast": ("bf16", False),
    "bf16 autocast + channels-last": ("bf16", True),
}


def run_once(amp: str, channels_last: bool, *, model: str, size: str, steps: int, warmup: int,
             batch: int, crop: int, threads: int, data) -> tuple[float, float]:
    """Seconds per step over ``steps`` steps after ``warmup`` untimed ones, and the last loss."""
    with tempfile.TemporaryDirectory() as d:
        cfg = config_from_dict({
            "name": "train-speed", "model": {"name": model, "options": model_options(model, size=size)},
            "data": {"batch_size": batch, "crop": crop}, "steps": warmup + steps,
            "optim": {"lr": 1e-4, "schedule": "constant", "clip_grad_norm": 1.0},
            "loss": [{"name": "charbonnier"}, {"name": "fft_l1", "weight": 0.05}],
            "log_every": 1, "checkpoint_every": 10**6, "checkpoint_minutes": 1e6, "tensorboard": False,
            "out_dir": d, "ema": 0.999, "amp": amp, "channels_last": channels_last, "threads": threads,
        })
        E.train(cfg, dataset=data, progress=False)
        log = E.read_log(f"{d}/log.csv")
    t = np.array([r["seconds"] for r in log])
    loss = log[-1]["loss"]
    span = t[-1] - t[warmup - 1]
    if span < 2.0:  # the engine logs seconds to 0.1 s: a shorter span cannot be timed to 5 %
        raise ConfigError(f"--steps {steps}: the timed steps took {span:.1f} s by the log (< 2 s); "
                          "give more steps")
    per_step = span / steps
    return per_step, loss


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="nafnet")
    ap.add_argument("--size", default="default")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the CPU arms use 1)")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=96)
    args = ap.parse_args()
    data = Fixed(64, args.crop)
    times = {k: [] for k in VARIANTS}
    for _ in range(args.repeats):  # interleaved, so load changes hit every variant alike
        for name, (amp, cl) in VARIANTS.items():
            s, _ = run_once(amp, cl, model=args.model, size=args.size, steps=args.steps,
                               warmup=args.warmup, batch=args.batch, crop=args.crop,
                               threads=args.threads, data=data)
            times[name].append(s)
    ref = float(np.median(times["fp32 (reference)"]))
    print(f"| training step ({args.model} {args.size}, batch {args.batch}x{args.crop}^2, "
          f"{args.threads} thread(s), median of {args.repeats}x{args.steps} steps) | s/step | x fp32 |")
    print("|---|---|---|")
    for name in VARIANTS:
        m = float(np.median(times[name]))
        print(f"| {name} | {m:.3f} | {ref / m:.2f}x |")


if __name__ == "__main__":
    try:
        main()
    except ConfigError as exc:
        print(f"train_speed: {exc}", file=sys.stderr)
        sys.exit(2)
