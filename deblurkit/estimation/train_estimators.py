"""CPU training of the uniform kernel-estimation networks, and their held-out evaluation.

Usage::

    python -m deblurkit.estimation.train_estimators schuler2014 --out runs/schuler2014 --minutes 20 [--resume]
    python -m deblurkit.estimation.train_estimators chakrabarti2016 --out runs/chakrabarti2016 --minutes 20
    python -m deblurkit.estimation.train_estimators evaluate schuler2014 --weights runs/schuler2014/schuler2014.safetensors

Data: grey (BT.601) crops of the sharp photos in ``<data>/train`` (default
``deblurkit.paths.shared_data() / "train"``), blurred on the fly by
:class:`deblurkit.data.synthetic.UniformKernelBlur` (which returns the true kernel). The photos are
split by their sorted position: every tenth photo (``index % 10 == 0``) is *held out* and never
used for training; :func:`evaluate` draws its images from those, with seeds of its own. Data of a
step depends only on ``(seed, step)``, so ``--resume`` continues exactly.

* ``schuler2014`` (:class:`~deblurkit.estimation.schuler2014.Schuler2014Net`): end to end on
  ``crop x crop`` crops; loss = image MSE of every stage's latent estimate at full resolution
  + ``kernel_weight`` x squared error of every stage's kernel at every scale (against the true
  kernel resampled to that scale).
* ``chakrabarti2016`` (:class:`~deblurkit.estimation.chakrabarti2016.ChakrabartiNet`): patch-level
  supervised, as the paper: MSE of the restored central 33 x 33 against the sharp centre. The
  band whitening is fitted first on ``whitening_patches`` blurred patches (paper's ``dec_tfm``),
  items of the training set's stream that no training step reaches.

Kernels: camera shake and linear motion (``"gp"`` kernels cost an eigendecomposition each, 70 ms,
which would make data generation the bottleneck of a CPU run).

Checkpoints (:class:`deblurkit.train.engine.Checkpointer`) go to ``<out>/checkpoints`` every
``--checkpoint-minutes`` and at the end; the log to ``<out>/log.csv``; the final weights to
``<out>/<name>.safetensors`` by :func:`deblurkit.models.weights.save_weights` (safetensors with the
network options and the recipe in the metadata; its sha256 is printed).

Use ``torch.set_num_threads`` via ``--threads`` (default 1: the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, DeblurkitError

__all__ = ["RECIPES", "split_photos", "make_dataset", "batch_of", "schuler_loss", "chakrabarti_loss",
           "train", "evaluate", "main"]

#: Training recipes (the defaults of the command line), recorded in the weights' metadata.
RECIPES: dict[str, dict[str, Any]] = {
    "schuler2014": {
        "size": "small", "crop": 96, "batch": 4, "kernel_size": 31, "kinds": ["shake", "motion"],
        "size_range": [5, 27], "noise_sigma": [0.0, 0.015], "lr": 1e-3, "warmup_steps": 50,
        "kernel_weight": 0.05, "grad_clip": 1.0, "seed": 0,
    },
    "chakrabarti2016": {
        "size": "small", "crop": 65, "batch": 64, "kinds": ["shake", "motion"],
        "size_range": [5, 27], "noise_sigma": [0.0, 0.015], "lr": 3e-4, "warmup_steps": 50,
        "grad_clip": 1.0, "whitening_patches": 4096, "seed": 0,
    },
}


#: Items from this index on are never reached by training steps; the band whitening of
#: chakrabarti2016 is fitted on them.
WHITENING_START = 2**39

# ----------------------------------------------------------------------------- data

def split_photos(root: Path) -> tuple[list[Path], list[Path]]:
    """``(train, held_out)`` photos of ``root`` (sorted): every tenth is held out."""
    from ..data.folders import list_images

    photos = list_images(root)
    if len(photos) < 10:
        raise DeblurkitError(f"{root}: {len(photos)} photos found; need at least 10 (one in ten is held out)")
    return ([p for i, p in enumerate(photos) if i % 10 != 0],
            [p for i, p in enumerate(photos) if i % 10 == 0])


def make_dataset(photos: list[Path], recipe: dict, *, seed: int, crop: int | None = None,
                 noise_sigma=None, kinds=None, size_range=None):
    """A grey :class:`~deblurkit.data.synthetic.SyntheticBlurDataset` of ``photos`` blurred by
    :class:`UniformKernelBlur` with the recipe's kernels and noise (overridable)."""
    from ..data.synthetic import SyntheticBlurDataset, UniformKernelBlur

    gen = UniformKernelBlur(kinds=tuple(kinds or recipe["kinds"]),
                            size_range=tuple(size_range or recipe["size_range"]),
                            noise_sigma=tuple(noise_sigma if noise_sigma is not None else recipe["noise_sigma"]))
    return SyntheticBlurDataset([str(p) for p in photos], crop=crop or recipe["crop"], length=2**40,
                                generator=gen, seed=seed, grey=True, flip=True, cache_mb=2048)


def batch_of(dataset, start: int, n: int, kernel_size: int | None = None):
    """Items ``start .. start + n - 1`` as ``(blur (n, 1, h, w), sharp (n, 1, h, w), kernels)``;
    ``kernels`` is ``(n, ks, ks)`` (centre-padded to ``kernel_size``) or a list when ``None``."""
    from .schuler2014 import pad_kernel

    items = [dataset[start + i] for i in range(n)]
    blur = torch.stack([it["blur"] for it in items])
    sharp = torch.stack([it["sharp"] for it in items])
    ks = [it["kernel"].numpy() for it in items]
    if kernel_size is not None:
        ks = torch.from_numpy(np.stack([pad_kernel(k, kernel_size) for k in ks]))
    return blur, sharp, ks


# ----------------------------------------------------------------------------- losses

def schuler_loss(out, sharp: torch.Tensor, kernel: torch.Tensor, kernel_weight: float
                 ) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of a :class:`Schuler2014Net` output (see the module docstring). ``sharp`` ``(B, 1, H,
    W)``, ``kernel`` ``(B, ks, ks)`` true kernels at full resolution. The image MSE skips a border
    of half a kernel."""
    from .schuler2014 import resample_kernels

    n_scales = len(out)
    ks = kernel.shape[-1]
    m = ks // 2
    img = sum(F.mse_loss(x[..., m:-m, m:-m], sharp[..., m:-m, m:-m]) for _, x in out[-1]) / len(out[-1])
    kl = 0.0
    for level, stages in enumerate(out):
        s = n_scales - 1 - level
        size = stages[0][0].shape[-1]
        target = kernel if s == 0 else resample_kernels(kernel, size, 2.0 ** s)
        kl = kl + sum(((k - target) ** 2).sum(dim=(-2, -1)).mean() for k, _ in stages) / len(stages)
    kl = kl / n_scales
    return img + kernel_weight * kl, {"image_mse": float(img.detach()), "kernel_sse": float(kl.detach())}


def chakrabarti_loss(net, blur: torch.Tensor, sharp: torch.Tensor) -> torch.Tensor:
    """MSE of the restored central 33 x 33 of ``(B, 1, 65, 65)`` patches (the paper's loss)."""
    from .chakrabarti2016 import CENTRE, PATCH

    c = (PATCH - CENTRE) // 2
    pred = net.restore(blur[:, 0])
    return F.mse_loss(pred, sharp[:, 0, c:c + CENTRE, c:c + CENTRE])


# ----------------------------------------------------------------------------- training

def _build(name: str, size: str):
    if name == "schuler2014":
        from .schuler2014 import DEFAULT_OPTIONS, SIZES, Schuler2014Net as Net
    else:
        from .chakrabarti2016 import DEFAULT_OPTIONS, SIZES, ChakrabartiNet as Net
    if size not in SIZES:
        raise ConfigError(f"--size: {name} sizes are {', '.join(SIZES)}, got {size!r}")
    options = {**DEFAULT_OPTIONS, **SIZES[size]}
    return Net(**options), options


def train(name: str, out: Path, *, minutes: float | None = None, steps: int | None = None,
          resume: bool = False, data: Path | None = None, recipe: dict | None = None,
          checkpoint_minutes: float = 2.0, log_every: int = 10, progress=print) -> dict:
    """Train ``name`` into the run folder ``out`` until ``minutes`` of wall time or ``steps`` total
    steps, whichever comes first; return ``{"step", "weights", "sha256", "seconds"}``."""
    from .. import paths
    from ..models.weights import save_weights
    from ..train.engine import Checkpointer, CsvLog

    if name not in RECIPES:
        raise ConfigError(f"model: must be one of {', '.join(RECIPES)}, got {name!r}")
    if minutes is None and steps is None:
        raise ConfigError("give --minutes or --steps (or both)")
    rec = {**RECIPES[name], **(recipe or {})}
    out = Path(out)
    ckpt = Checkpointer(out, keep=2)
    if ckpt.latest() is not None and not resume:
        raise DeblurkitError(f"run folder {out}: has checkpoints; pass --resume to continue it or choose another --out")
    data = Path(data) if data is not None else paths.shared_data() / "train"
    train_photos, _ = split_photos(data)
    torch.manual_seed(rec["seed"])
    net, options = _build(name, rec["size"])
    dataset = make_dataset(train_photos, rec, seed=rec["seed"])
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=rec["lr"], weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / rec["warmup_steps"]))
    step = 0
    latest = ckpt.latest() if resume else None
    if latest is not None:
        step = Checkpointer.load(latest, net, opt, sched, None, "cpu")
        progress(f"resumed {out} at step {step}")
    elif name == "chakrabarti2016":
        blur, _, _ = batch_of(dataset, WHITENING_START, rec["whitening_patches"])
        net.fit_whitening(blur[:, 0])
        progress(f"fitted band whitening on {blur.shape[0]} patches")
    log = CsvLog(out / "log.csv", step if latest is not None else None)
    with open(out / "recipe.json", "w") as fh:
        json.dump({"model": name, "options": options, "recipe": rec}, fh, indent=1)
    t0 = last_ckpt = time.time()
    deadline = t0 + 60 * minutes if minutes is not None else math.inf
    run_loss, run_n = 0.0, 0
    while (steps is None or step < steps) and time.time() < deadline:
        net.train()
        opt.zero_grad(set_to_none=True)
        if name == "schuler2014":
            blur, sharp, kernels = batch_of(dataset, step * rec["batch"], rec["batch"], rec["kernel_size"])
            out_ = net(blur, rec["kernel_size"])
            loss, parts = schuler_loss(out_, sharp, kernels, rec["kernel_weight"])
        else:
            blur, sharp, _ = batch_of(dataset, step * rec["batch"], rec["batch"])
            loss = chakrabarti_loss(net, blur, sharp)
            parts = {}
        if not torch.isfinite(loss):
            raise DeblurkitError(f"{name} step {step}: loss became {float(loss)} (not finite); lower the lr")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, rec["grad_clip"])
        opt.step()
        sched.step()
        step += 1
        run_loss += float(loss.detach())
        run_n += 1
        if step % log_every == 0:
            log.write(step=step, loss=run_loss / run_n, lr=sched.get_last_lr()[0], seconds=time.time() - t0)
            extra = " ".join(f"{k} {v:.3e}" for k, v in parts.items())
            progress(f"step {step} loss {run_loss / run_n:.4e} {extra} ({time.time() - t0:.0f} s)")
            run_loss, run_n = 0.0, 0
        if time.time() - last_ckpt > 60 * checkpoint_minutes:
            ckpt.save(step, net, opt, sched, None)
            last_ckpt = time.time()
    ckpt.save(step, net, opt, sched, None)
    weights = out / f"{name}.safetensors"
    meta = {"model": name, "options": options, "recipe": rec, "step": step,
            "data": "grey crops of shared/data/train (photos with sorted index % 10 != 0)"}
    digest = save_weights(net, weights, metadata=meta)
    progress(f"saved {weights} (sha256 {digest}) after {step} steps")
    return {"step": step, "weights": str(weights), "sha256": digest, "seconds": time.time() - t0}


# ----------------------------------------------------------------------------- evaluation

def evaluate(name: str, weights: str | None, *, images: int = 8, seed: int = 20_240_917,
             data: Path | None = None, crop: int = 255, noise: float = 0.01,
             size_range: tuple[int, int] = (13, 27), kernel_size: int = 31, progress=print,
             **estimator_options) -> dict[str, float]:
    """Held-out check: grey ``crop x crop`` crops of held-out photos (never trained on) blurred by
    camera-shake kernels of ``size_range`` px with ``noise`` Gaussian noise, drawn from ``seed``
    (not a training seed). Per image and on average: PSNR (Levin protocol: best shift within 10
    px, 15 px border) of the blurred input and of hyper-Laplacian deconvolution with the
    estimated, the true and a delta kernel; Levin error ratios against the true kernel's
    deconvolution; squared kernel errors and kernel similarity (max normalised cross-correlation
    over shifts) of the estimate and of the delta; seconds per ``estimate_kernel``.
    ``estimator_options`` go to the estimator."""
    from .. import paths
    from ..deconv import hyper_laplacian
    from ..metrics.protocols import levin_score
    from ._common import kernel_similarity
    from .schuler2014 import delta_kernel, pad_kernel

    if name == "schuler2014":
        from .schuler2014 import Schuler2014Estimator as Est
    elif name == "chakrabarti2016":
        from .chakrabarti2016 import Chakrabarti2016Estimator as Est
    else:
        raise ConfigError(f"model: must be schuler2014 or chakrabarti2016, got {name!r}")
    est = Est(weights, kernel_size=kernel_size, **estimator_options)
    data = Path(data) if data is not None else paths.shared_data() / "train"
    _, held = split_photos(data)
    rec = {"kinds": ["shake"], "size_range": list(size_range), "noise_sigma": [noise, noise], "crop": crop}
    ds = make_dataset(held, rec, seed=seed)
    rows = []
    for i in range(images):
        blur, sharp, ks = batch_of(ds, i, 1)
        b = blur[0, 0].numpy()
        s = sharp[0, 0].numpy()
        t = time.time()
        k_est = est.estimate_kernel(b)
        secs = time.time() - t
        k_true = pad_kernel(ks[0], kernel_size)
        outs = {"est": hyper_laplacian(b, k_est), "true": hyper_laplacian(b, k_true),
                "delta": hyper_laplacian(b, delta_kernel(kernel_size))}
        ref = torch.from_numpy(np.clip(outs["true"], 0, 1))[None, None]
        tgt = torch.from_numpy(s)[None, None]
        row = {"seconds": secs, "psnr_blur": float(levin_score(torch.from_numpy(b)[None, None], tgt).psnr[0])}
        for key in ("est", "true", "delta"):
            sc = levin_score(torch.from_numpy(np.clip(outs[key], 0, 1))[None, None], tgt, reference=ref)
            row[f"psnr_{key}"] = float(sc.psnr[0])
            row[f"ratio_{key}"] = float(sc.error_ratio[0])
        row["kernel_sse"] = float(((k_est - k_true) ** 2).sum())
        row["kernel_sse_delta"] = float(((delta_kernel(kernel_size) - k_true) ** 2).sum())
        row["similarity_est"] = kernel_similarity(k_est, k_true)
        row["similarity_delta"] = kernel_similarity(delta_kernel(kernel_size), k_true)
        rows.append(row)
        progress(" ".join(f"{k} {v:.3f}" for k, v in row.items()))
    summary = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    summary["images"] = images
    summary["ratio_est_le_3"] = float(np.mean([r["ratio_est"] <= 3 for r in rows]))
    return summary


# ----------------------------------------------------------------------------- command line

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m deblurkit.estimation.train_estimators",
                                description="Train / evaluate the uniform kernel-estimation networks.")
    sub = p.add_subparsers(dest="command", required=True)
    for name in RECIPES:
        t = sub.add_parser(name, help=f"train {name}")
        t.add_argument("--out", required=True, type=Path, help="run folder")
        t.add_argument("--minutes", type=float, help="wall-time budget of this call")
        t.add_argument("--steps", type=int, help="stop at this total step")
        t.add_argument("--resume", action="store_true", help="continue the run folder's latest checkpoint")
        t.add_argument("--data", type=Path, help="folder holding train/ (default: shared data)")
        t.add_argument("--size", help="network size preset (default small)")
        t.add_argument("--lr", type=float)
        t.add_argument("--batch", type=int)
        t.add_argument("--seed", type=int)
        if name == "schuler2014":
            t.add_argument("--kernel-weight", type=float, help="weight of the kernel loss")
        t.add_argument("--checkpoint-minutes", type=float, default=2.0)
        t.add_argument("--threads", type=int, default=1)
    e = sub.add_parser("evaluate", help="held-out evaluation of trained weights")
    e.add_argument("model", choices=sorted(RECIPES))
    e.add_argument("--weights", help="safetensors path, 'shipped', or 'none' (untrained)", default="shipped")
    e.add_argument("--images", type=int, default=8)
    e.add_argument("--data", type=Path)
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--edge-fraction", type=float, help="chakrabarti2016 only: eq. 8 edge mask (0 = none)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    try:
        if args.command == "evaluate":
            opts = {}
            if args.edge_fraction is not None:
                if args.model != "chakrabarti2016":
                    raise ConfigError("--edge-fraction: only for chakrabarti2016")
                opts["edge_fraction"] = None if args.edge_fraction == 0 else args.edge_fraction
            weights = None if args.weights == "none" else args.weights
            summary = evaluate(args.model, weights, images=args.images, data=args.data, **opts)
            print(json.dumps(summary, indent=1))
            return 0
        recipe = {k: v for k, v in (("size", args.size), ("lr", args.lr), ("batch", args.batch),
                                    ("seed", args.seed), ("kernel_weight", getattr(args, "kernel_weight", None)))
                  if v is not None}
        result = train(args.command, args.out, minutes=args.minutes, steps=args.steps, resume=args.resume,
                       data=args.data, recipe=recipe, checkpoint_minutes=args.checkpoint_minutes)
        print(json.dumps(result, indent=1))
        return 0
    except DeblurkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
