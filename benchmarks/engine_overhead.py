"""Engine overhead: seconds per training step of ``deblurkit.train.engine.train`` against a bare
PyTorch loop (same model, same data, same optimizer, loss and clipping) in the same process.

Target (issue "main job"): the engine adds < 10 % per step.

    python benchmarks/engine_overhead.py [--steps 30] [--model nafnet] [--size tiny] [--batch 8] [--crop 128]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from deblurkit.models import create
from deblurkit.train import engine as E
from deblurkit.train.config import config_from_dict
from deblurkit.train.losses import build_loss


class Fixed(torch.utils.data.Dataset):
    def __init__(self, n, crop):
        g = torch.Generator().manual_seed(0)
        self.sharp = torch.rand(n, 3, crop, crop, generator=g)
        self.blur = torch.nn.functional.avg_pool2d(self.sharp, 5, 1, 2, count_include_pad=False)

    def __len__(self):
        return 10**9

    def __getitem__(self, i):
        i = i % len(self.sharp)
        return {"blur": self.blur[i], "sharp": self.sharp[i]}


def bare_loop(model_name, size, steps, batch, crop, data):
    torch.manual_seed(0)
    model = create(model_name, size=size)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.9))
    loss_fn = build_loss([{"name": "psnr", "weight": 1.0}])
    times = []
    for s in range(steps):
        t = time.perf_counter()
        idx = [(s * batch + j) for j in range(batch)]
        items = [data[i] for i in idx]
        blur = torch.stack([it["blur"] for it in items])
        sharp = torch.stack([it["sharp"] for it in items])
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(blur), sharp)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        times.append(time.perf_counter() - t)
    return times


def engine_loop(model_name, size, steps, batch, crop, data):
    with tempfile.TemporaryDirectory() as d:
        from deblurkit.models import model_options

        cfg = config_from_dict({
            "name": "bench", "model": {"name": model_name, "options": model_options(model_name, size=size)},
            "data": {"batch_size": batch, "crop": crop}, "steps": steps,
            "optim": {"lr": 1e-4, "schedule": "constant", "clip_grad_norm": 1.0},
            "loss": [{"name": "psnr"}], "log_every": 10, "checkpoint_every": 10**6,
            "checkpoint_minutes": 1e6, "tensorboard": True, "out_dir": d, "ema": 0.999,
        })
        t0 = time.perf_counter()
        E.train(cfg, dataset=data, progress=False)
        return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--model", default="nafnet")
    ap.add_argument("--size", default="default")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(2)
    data = Fixed(64, args.crop)
    bare, eng = [], []
    for _ in range(args.repeats):  # interleaved, so load changes hit both alike
        b = bare_loop(args.model, args.size, args.steps, args.batch, args.crop, data)
        bare.append(float(np.sum(b)) / args.steps)
        eng.append(engine_loop(args.model, args.size, args.steps, args.batch, args.crop, data) / args.steps)
    mb, me = float(np.median(bare)), float(np.median(eng))
    print(f"| loop ({args.model} {args.size}, batch {args.batch}x{args.crop}^2, {args.steps} steps, "
          f"median of {args.repeats}) | s/step | ratio |")
    print("|---|---|---|")
    print(f"| bare PyTorch loop (batch assembly + step, no EMA/logs) | {mb:.4f} | 1.00 |")
    print(f"| deblurkit engine (whole run: data, EMA, logs, TensorBoard, start-up) | {me:.4f} | {me / mb:.3f} |")
    print(f"\nengine overhead: {100 * (me / mb - 1):+.1f} % per step (target < 10 %)")


if __name__ == "__main__":
    main()
