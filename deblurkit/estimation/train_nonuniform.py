"""Training of the non-uniform motion-blur estimators ``sun2015`` and ``gong2017`` on synthetic
blur (CPU-sized; any device).

    python -m deblurkit.estimation.train_nonuniform sun2015 --out runs/sun2015 --minutes 10 [--resume]
    python -m deblurkit.estimation.train_nonuniform gong2017 --out runs/gong2017 --minutes 10
    python -m deblurkit.estimation.train_nonuniform eval sun2015 --weights W.safetensors

Data (only ``shared_data()/train``; never the dev sets): sharp photos, converted to grey and kept in
memory as uint8. Every image whose index in the sorted file list is a multiple of ``holdout``
(default 10) is *held out*: never trained on, used by :func:`evaluate_heldout`.

- ``sun2015`` (:func:`sun_batch`): a random crop is blurred with a constant motion field
  (:func:`deblurkit.blur.blur_motion_field`, the model the deconvolution inverts) of one of the 73
  classes of :data:`~deblurkit.estimation.sun2015.BASE_KERNELS`, jittered within its bin (length
  +-1 px, orientation +-3 degrees); with probability ``rotate`` the blur is turned by
  ``theta`` in {6, 12, 18, 24} degrees and the patch is read rotated by ``-theta`` (the rotation
  trick of inference, so the network sees its interpolation); Gaussian noise ``sigma`` in
  [0, 0.01]; random flips and quarter turns of the sharp crop; 4 non-overlapping patches per
  blurred crop. Loss: cross-entropy.
- ``gong2017`` (:func:`gong_batch`): a random crop is blurred with a random motion field
  (:func:`deblurkit.blur.random_motion_field`, every kind alike by default, longest vector
  uniform in ``[min_length, min(u_max, v_max)]``, default ``min_length`` 0), computed on a larger
  window so the crop has no border effect (weighting near-uniform kinds 3:1 with
  ``min_length`` 2 px was tried in a 10-minute run and scored worse on held-out images);
  labels by :func:`~deblurkit.estimation.gong2017.motion_to_labels` (eq. 17). Loss: the sum of
  the per-pixel cross-entropies of the two heads.

Runs write ``OUT/checkpoint.safetensors`` (model), ``OUT/optimizer.safetensors`` (Adam state, as
tensors: never pickle) and ``OUT/state.json`` every ``--checkpoint-minutes`` and at the end, all
atomically; ``--resume`` continues from them. The final weights go to ``OUT/<model>.safetensors``
(and ``--export PATH``) through :func:`deblurkit.models.weights.save_weights`, with metadata
``{"model", "options", "recipe", "steps"}``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from ..blur.nonuniform import FIELD_KINDS, blur_motion_field, random_motion_field
from ..errors import ConfigError, DeblurkitError
from ..io.atomic import atomic_path
from . import gong2017, sun2015

__all__ = ["load_pool", "sun_batch", "gong_batch", "train",
           "evaluate_heldout", "main"]

MODELS = ("sun2015", "gong2017")


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------

def load_pool(folder: str | Path, *, split: str = "train", holdout: int = 10,
              min_side: int = 128, limit: int | None = None) -> list[np.ndarray]:
    """Grey uint8 ``(H, W)`` images of ``folder`` (sorted by path). ``split="train"`` keeps those
    whose index is not a multiple of ``holdout``, ``"heldout"`` the others; images with a side
    under ``min_side`` are skipped; ``limit`` keeps the first ``limit``."""
    from ..data.folders import list_images
    from ..io.image import read_array

    if split not in ("train", "heldout"):
        raise ConfigError(f"split={split!r}: expected 'train' or 'heldout'")
    files = list_images(folder)
    if not files:
        raise DeblurkitError(f"{folder}: no images found")
    keep = [f for i, f in enumerate(files) if (i % holdout == 0) == (split == "heldout")]
    pool = []
    for f in keep[:limit] if limit else keep:
        g = sun2015.grey(read_array(f), name=str(f))
        if min(g.shape) >= min_side:
            pool.append(np.clip(np.rint(g * 255.0), 0, 255).astype(np.uint8))
    if not pool:
        raise DeblurkitError(f"{folder}: no {split} images of at least {min_side} px")
    return pool


def _crops(pool: list[np.ndarray], rng: np.random.Generator, n: int, size: int,
           flip: bool = True) -> torch.Tensor:
    """``n`` random ``size x size`` crops (random image, position, flip/quarter turn):
    float32 ``(n, 1, size, size)`` in [0, 1]."""
    out = np.empty((n, size, size), dtype=np.float32)
    for i in range(n):
        img = pool[int(rng.integers(len(pool)))]
        while min(img.shape) < size:
            img = pool[int(rng.integers(len(pool)))]
        y = int(rng.integers(img.shape[0] - size + 1))
        x = int(rng.integers(img.shape[1] - size + 1))
        c = img[y:y + size, x:x + size]
        if flip:
            c = np.rot90(c, int(rng.integers(4)))
            if rng.random() < 0.5:
                c = c[:, ::-1]
        out[i] = c / np.float32(255.0)
    return torch.from_numpy(out)[:, None]


def sun_batch(pool: list[np.ndarray], rng: np.random.Generator, batch: int, *,
              rotate: float = 0.5, jitter: bool = True, noise: float = 0.01,
              per_crop: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """One training batch for :class:`~deblurkit.estimation.sun2015.Sun2015Net` (see the module
    docstring): ``(patches (batch, 1, 30, 30) locally normalised, labels (batch,) int64 in
    [0, 73))``.

    To save blurring, each blurred crop gives ``per_crop`` (1 or 4) patches of the same class:
    4 patches at ``(+-15, +-15)`` px from its centre, which do not overlap."""
    if per_crop not in (1, 4):
        raise ConfigError(f"per_crop={per_crop!r}: expected 1 or 4")
    if batch % per_crop:
        raise ConfigError(f"batch={batch}: must be a multiple of per_crop={per_crop}")
    p = sun2015.PATCH_SIZE
    canvas = 2 * p                                   # context for the local normalisation
    reach = (sun2015.LENGTHS[-1] + 1) // 2 + 1        # half the longest streak, +1
    spread = p // 2 if per_crop == 4 else 0
    offsets = [(-spread, -spread), (-spread, spread), (spread, -spread), (spread, spread)][:per_crop]
    n = batch // per_crop
    labels = rng.integers(len(sun2015.BASE_KERNELS), size=n)
    u = np.empty(n)
    v = np.empty(n)
    theta = np.zeros(n)
    for i, c in enumerate(labels):
        length, o = sun2015.BASE_KERNELS[c]
        if jitter:
            length = max(1.0, length + rng.uniform(-1.0, 1.0))
            o = o + rng.uniform(-3.0, 3.0)
        if rng.random() < rotate:
            theta[i] = float(rng.choice(sun2015.ROTATIONS[1:]))
        a = math.radians(o + theta[i])
        u[i] = (length - 1.0) * math.cos(a)
        v[i] = -(length - 1.0) * math.sin(a)
    patches = torch.empty(n, per_crop, 1, p, p)
    for rotated in (False, True):
        sel = np.nonzero((theta != 0) == rotated)[0]
        if sel.size == 0:
            continue
        radius = int(math.ceil(canvas / 2 * math.sqrt(2))) if rotated else canvas // 2
        size = 2 * (radius + reach + spread) + 1
        sharp = _crops(pool, rng, sel.size, size)
        ut = torch.from_numpy(u[sel]).float()[:, None, None].expand(sel.size, size, size)
        vt = torch.from_numpy(v[sel]).float()[:, None, None].expand(sel.size, size, size)
        blurred = blur_motion_field(sharp, ut, vt)
        if noise > 0:
            sig = torch.from_numpy(rng.uniform(0, noise, sel.size)).float()[:, None, None, None]
            blurred = blurred + sig * torch.from_numpy(
                rng.standard_normal(blurred.shape).astype(np.float32))
        c = size // 2
        cy = np.array([[c + dy for dy, _ in offsets]] * sel.size, dtype=np.float64).ravel()
        cx = np.array([[c + dx for _, dx in offsets]] * sel.size, dtype=np.float64).ravel()
        x, y = sun2015.patch_grid(cy, cx, np.repeat(-theta[sel], per_crop), size=canvas)
        view = sun2015.sample_patches(blurred, x, y, which=np.repeat(np.arange(sel.size), per_crop))
        view = sun2015.local_normalise(view)
        q = canvas // 2 - p // 2
        patches[torch.from_numpy(sel)] = view[:, :, q:q + p, q:q + p].reshape(
            sel.size, per_crop, 1, p, p)
    return (patches.reshape(batch, 1, p, p).contiguous(),
            torch.from_numpy(np.repeat(labels, per_crop).astype(np.int64)))


def gong_batch(pool: list[np.ndarray], rng: np.random.Generator, batch: int, crop: int, *,
               u_max: int, v_max: int, noise: float = 0.01, min_length: float = 0.0,
               kind_weights: dict[str, float] | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One training batch for :class:`~deblurkit.estimation.gong2017.MotionFlowFCN`:
    ``(blurred (batch, 1, crop, crop) in ~[0, 1], iu, iv (batch, crop, crop) int64 labels)``.

    Each field's longest vector is ``U(min_length, min(u_max, v_max))`` px; its kind is drawn
    with ``kind_weights`` (default: all of ``FIELD_KINDS`` alike)."""
    longest = float(min(u_max, v_max))
    if not 0 <= min_length <= longest:
        raise ConfigError(f"min_length={min_length!r}: expected a number in [0, {longest:g}]")
    weights = kind_weights or {k: 1.0 for k in FIELD_KINDS}
    unknown = sorted(set(weights) - set(FIELD_KINDS))
    if unknown:
        raise ConfigError(f"kind_weights: unknown kinds {unknown}; "
                          f"choose from {', '.join(FIELD_KINDS)}")
    names = list(weights)
    prob = np.asarray([weights[k] for k in names], dtype=np.float64)
    prob = prob / prob.sum()
    pad = int(math.ceil(longest / 2)) + 2
    size = crop + 2 * pad
    sharp = _crops(pool, rng, batch, size)
    us, vs = [], []
    for _ in range(batch):
        kind = names[int(rng.choice(len(names), p=prob))]
        f = random_motion_field(size, size, int(rng.integers(2**31 - 1)),
                                max_length=float(rng.uniform(min_length, longest)), kind=kind)
        us.append(f[0])
        vs.append(f[1])
    ut = torch.from_numpy(np.stack(us))
    vt = torch.from_numpy(np.stack(vs))
    blurred = blur_motion_field(sharp, ut, vt)
    if noise > 0:
        sig = torch.from_numpy(rng.uniform(0, noise, batch)).float()[:, None, None, None]
        blurred = blurred + sig * torch.from_numpy(
            rng.standard_normal(blurred.shape).astype(np.float32))
    s = slice(pad, pad + crop)
    iu, iv = gong2017.motion_to_labels(ut[:, s, s].numpy(), vt[:, s, s].numpy(), u_max, v_max)
    return (blurred[:, :, s, s].contiguous(), torch.from_numpy(iu), torch.from_numpy(iv))


# --------------------------------------------------------------------------------------------
# checkpoints (safetensors only)
# --------------------------------------------------------------------------------------------

def _save_optimizer(opt: torch.optim.Optimizer, path: Path) -> None:
    tensors = {}
    for i, state in opt.state_dict()["state"].items():
        for k, val in state.items():
            t = val if isinstance(val, torch.Tensor) else torch.tensor(float(val))
            tensors[f"{i}.{k}"] = t.detach().cpu().contiguous().clone()
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))


def _load_optimizer(opt: torch.optim.Optimizer, path: Path) -> None:
    tensors = load_file(str(path))
    sd = opt.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, t in tensors.items():
        i, k = key.split(".", 1)
        state.setdefault(int(i), {})[k] = t
    sd["state"] = state
    opt.load_state_dict(sd)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------

def _network(model: str, size: str) -> tuple[torch.nn.Module, dict[str, Any]]:
    if model == "sun2015":
        options = dict(sun2015.SIZES[size])
        return sun2015.Sun2015Net(**options), options
    options = dict(gong2017.SIZES[size])
    return gong2017.MotionFlowFCN(**options), options


def train(model: str, out: str | Path, *, minutes: float = 10.0, resume: bool = False,
          size: str = "cpu", batch: int | None = None, crop: int = 64, lr: float | None = None,
          seed: int = 0, data: str | Path | None = None, holdout: int = 10,
          checkpoint_minutes: float = 1.0, export: str | Path | None = None,
          min_length: float = 0.0, kind_weights: dict[str, float] | None = None,
          log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train ``model`` ("sun2015" or "gong2017") for ``minutes`` of wall time (the current run;
    a resumed run adds to the earlier steps). Returns the final state dict written to
    ``OUT/state.json`` (steps, seconds, losses, the sha256 of the final weights)."""
    from ..models.weights import load_weights, save_weights
    from ..paths import shared_data

    if model not in MODELS:
        raise ConfigError(f"model={model!r}: choose one of {', '.join(MODELS)}")
    sizes = sun2015.SIZES if model == "sun2015" else gong2017.SIZES
    if size not in sizes:
        raise ConfigError(f"size={size!r}: choose one of {', '.join(sizes)}")
    kind_weights = dict(kind_weights or {k: 1.0 for k in FIELD_KINDS})
    if not (isinstance(minutes, (int, float)) and math.isfinite(minutes) and minutes > 0):
        raise ConfigError(f"minutes={minutes!r}: expected a number > 0")
    batch = batch or (64 if model == "sun2015" else 8)
    lr = lr or (1e-3 if model == "sun2015" else 2e-3)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    folder = Path(data) if data else shared_data() / "train"
    t0 = time.time()
    pool = load_pool(folder, split="train", holdout=holdout)
    log(f"{model}: {len(pool)} training images from {folder} ({time.time() - t0:.1f} s)")

    net, options = _network(model, size)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    state: dict[str, Any] = {"model": model, "size": size, "options": options, "steps": 0,
                             "seconds": 0.0, "losses": [], "seed": seed, "batch": batch,
                             "crop": crop, "lr": lr, "holdout": holdout,
                             "min_length": min_length, "kind_weights": dict(kind_weights)}
    ckpt, opt_path, state_path = (out / "checkpoint.safetensors", out / "optimizer.safetensors",
                                  out / "state.json")
    if resume:
        if not (ckpt.exists() and state_path.exists()):
            raise ConfigError(f"--resume: {out} has no checkpoint.safetensors/state.json")
        state = json.loads(state_path.read_text(encoding="utf-8"))
        if state.get("model") != model:
            raise ConfigError(f"--resume: {out} holds a {state.get('model')!r} run, not {model}")
        net, options = _network(model, state["size"])
        load_weights(net, ckpt)
        opt = torch.optim.Adam(net.parameters(), lr=state["lr"])
        if opt_path.exists():
            _load_optimizer(opt, opt_path)
        log(f"{model}: resumed at step {state['steps']}")

    recipe = {"data": "shared/data/train (grey; every %d-th image held out)" % holdout,
              "synthesis": ("constant linear motion per patch, 73 classes jittered, rotation "
                            "trick p=0.5, noise sigma<=0.01, 4 patches per blurred crop"
                            if model == "sun2015" else
                            "random_motion_field, kinds weighted %s, longest vector U(%g, "
                            "min(u_max, v_max)), noise sigma<=0.01"
                            % (json.dumps(state.get("kind_weights"), sort_keys=True),
                               state.get("min_length", 0.0))),
              "optimizer": "Adam", "lr": state["lr"], "batch": state["batch"],
              "crop": None if model == "sun2015" else state["crop"],
              "device": "cpu", "threads": torch.get_num_threads(), "seed": state["seed"]}

    def checkpoint() -> None:
        save_weights(net, ckpt, metadata={"model": model, "options": options,
                                          "steps": state["steps"]})
        _save_optimizer(opt, opt_path)
        _write_json(state_path, state)

    net.train()
    start = time.time()
    last = start
    window: list[float] = []
    while time.time() - start < minutes * 60:
        rng = np.random.default_rng([state["seed"], state["steps"]])
        if model == "sun2015":
            x, y = sun_batch(pool, rng, state["batch"],
                             per_crop=4 if state["batch"] % 4 == 0 else 1)
            loss = F.cross_entropy(net.classify(x), y)
        else:
            x, iu, iv = gong_batch(pool, rng, state["batch"], state["crop"],
                                   u_max=options["u_max"], v_max=options["v_max"],
                                   min_length=state.get("min_length", 0.0),
                                   kind_weights=state.get("kind_weights"))
            lu, lv = net(x)
            loss = F.cross_entropy(lu, iu) + F.cross_entropy(lv, iv)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        state["steps"] += 1
        window.append(loss.detach().item())
        now = time.time()
        if now - last >= checkpoint_minutes * 60:
            state["seconds"] += now - last
            state["losses"].append([state["steps"], float(np.mean(window))])
            log(f"{model}: step {state['steps']} loss {np.mean(window):.4f}")
            window = []
            last = now
            checkpoint()
    state["seconds"] += time.time() - last
    if window:
        state["losses"].append([state["steps"], float(np.mean(window))])
    checkpoint()
    meta = {"model": model, "options": options, "recipe": recipe, "steps": state["steps"],
            "seconds": round(state["seconds"], 1)}
    net.eval()
    final = out / f"{model}.safetensors"
    state["sha256"] = save_weights(net, final, metadata=meta)
    if export:
        state["export"] = str(export)
        state["export_sha256"] = save_weights(net, export, metadata=meta)
    state["recipe"] = recipe
    _write_json(state_path, state)
    log(f"{model}: {state['steps']} steps, {state['seconds']:.0f} s; weights {final} "
        f"sha256 {state['sha256']}")
    return state


# --------------------------------------------------------------------------------------------
# held-out evaluation
# --------------------------------------------------------------------------------------------

def _epe(u: np.ndarray, v: np.ndarray, tu: np.ndarray, tv: np.ndarray) -> float:
    """Mean sign-invariant end-point error: ``min(|m - t|, |m + t|)`` in pixels."""
    return float(np.minimum(np.hypot(u - tu, v - tv), np.hypot(u + tu, v + tv)).mean())


def evaluate_heldout(estimator: Any, *, count: int = 6, size: int = 160, seed: int = 1000,
                     max_length: float = 20.0, noise: float = 0.005,
                     data: str | Path | None = None, holdout: int = 10,
                     oracle: bool = True) -> dict[str, Any]:
    """Score a non-uniform estimator on ``count`` held-out synthetic images: grey
    ``size x size`` crops of the held-out images (seeds ``seed + i``, not used in training),
    blurred by a random motion field (kind "mixed"/"smooth"/"rotation" in turn, longest vector
    ``U(max_length / 2, max_length)``) plus Gaussian noise.

    Returns per-image and mean figures: ``epe`` of the estimate and ``epe_zero`` of the zero
    field (the trivial baseline), PSNR (8-px border excluded) of the blurred input, of
    ``estimator.deblur`` and (``oracle``) of the same deconvolution with the true field."""
    from ..paths import shared_data
    from .sun2015 import _deconvolve

    folder = Path(data) if data else shared_data() / "train"
    pool = load_pool(folder, split="heldout", holdout=holdout, min_side=size + 40)
    rows = []
    kinds = ("mixed", "smooth", "rotation")
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        pad = int(max_length) // 2 + 4
        sharp_big = _crops(pool, rng, 1, size + 2 * pad, flip=False)
        length = float(rng.uniform(max_length / 2, max_length))
        tu, tv = random_motion_field(size + 2 * pad, size + 2 * pad, seed + i,
                                     max_length=length, kind=kinds[i % len(kinds)])
        blurred = blur_motion_field(sharp_big, torch.from_numpy(tu), torch.from_numpy(tv))
        blurred = blurred + noise * torch.from_numpy(
            rng.standard_normal(blurred.shape).astype(np.float32))
        s = slice(pad, pad + size)
        b = np.clip(blurred[0, 0, s, s].numpy(), 0, 1)
        sharp = sharp_big[0, 0, s, s].numpy()
        tu, tv = tu[s, s], tv[s, s]
        t = time.time()
        u, v = estimator.estimate_motion_field(b)
        restored = _deconvolve(b, u, v, estimator.deconv_weight, estimator.deconv_iterations)
        seconds = time.time() - t
        row = {"image": i, "length": round(length, 2), "epe": _epe(u, v, tu, tv),
               "epe_zero": _epe(np.zeros_like(tu), np.zeros_like(tv), tu, tv),
               "psnr_blurred": _psnr(b, sharp), "psnr_deblurred": _psnr(restored, sharp),
               "seconds": round(seconds, 2)}
        if oracle:
            ref = _deconvolve(b, tu, tv, estimator.deconv_weight, estimator.deconv_iterations)
            row["psnr_true_field"] = _psnr(ref, sharp)
        rows.append(row)
    keys = [k for k in rows[0] if k not in ("image",)]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    return {"images": rows, "mean": mean}


def _psnr(x: np.ndarray, ref: np.ndarray, border: int = 8) -> float:
    s = slice(border, -border)
    mse = float(np.mean((x[s, s].astype(np.float64) - ref[s, s]) ** 2))
    return 10.0 * math.log10(1.0 / max(mse, 1e-12))


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deblurkit.estimation.train_nonuniform",
        description="train (or evaluate) the sun2015 / gong2017 motion-field estimators")
    parser.add_argument("model", choices=[*MODELS, "eval"],
                        help="network to train, or 'eval' followed by the model name")
    parser.add_argument("eval_model", nargs="?", choices=MODELS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help="run folder (checkpoints, state.json)")
    parser.add_argument("--minutes", type=float, default=10.0, help="training wall time")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--size", default="cpu", help="network size: cpu or paper")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--crop", type=int, default=64, help="gong2017 crop side (default 64)")
    parser.add_argument("--lr", type=float, default=None,
                        help="Adam learning rate (default 1e-3 for sun2015, 2e-3 for gong2017)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--export", type=Path, default=None,
                        help="also write the final weights here (e.g. deblurkit/weights/sun2015.safetensors)")
    parser.add_argument("--weights", type=Path, default=None, help="eval: weights file")
    parser.add_argument("--count", type=int, default=6, help="eval: held-out images")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    try:
        if args.model == "eval":
            if args.eval_model is None or args.weights is None:
                raise ConfigError("eval: usage: eval MODEL --weights FILE")
            cls = sun2015.Sun2015Estimator if args.eval_model == "sun2015" else \
                gong2017.Gong2017Estimator
            est = cls.from_file(args.weights)
            print(json.dumps(evaluate_heldout(est, count=args.count), indent=2))
            return 0
        if args.out is None:
            raise ConfigError("--out: a run folder is required for training")
        train(args.model, args.out, minutes=args.minutes, resume=args.resume, size=args.size,
              batch=args.batch, crop=args.crop, lr=args.lr, seed=args.seed, export=args.export)
        return 0
    except DeblurkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
