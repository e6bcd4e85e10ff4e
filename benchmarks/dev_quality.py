"""Dev-set quality of a deblurring model: PSNR, SSIM and gain over the blurred input, every pair listed.

Runs on each paired set in ``../shared/data/dev/`` (synthetic_camera_motion, real_gopro,
gopro_frameavg, levin) and writes a before/after contact sheet of ``dev/lai_real`` (real blurry
photos with no ground truth). The reference in the same run is the blurred input itself: the gain is
``PSNR(output) - PSNR(input)``. PSNR is ``10 log10(1 / MSE)`` on [0, 1] RGB; SSIM uses the named
convention (default ``skimage``: Gaussian sigma 1.5, per channel, mean). Each pair also reports its
*static part* (:func:`static_mask`: pixels where the blurred input already equals the sharp image,
e.g. the still background of frame-averaged video) and the PSNR there before and after: a model
that "sharpens" what is already sharp loses PSNR there.

    python benchmarks/dev_quality.py                              # the shipped default model
    python benchmarks/dev_quality.py --run runs/nafnet-default    # latest checkpoint of a run (EMA)
    python benchmarks/dev_quality.py --weights W.safetensors --arch nafnet --json out.json --sheet lai.png
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from deblurkit.data import LevinDataset, PairedFolder
from deblurkit.infer import deblur
from deblurkit.io import read_image, write_image
from deblurkit.metrics import psnr, ssim
from deblurkit.paths import shared_data

SETS = ("synthetic_camera_motion", "real_gopro", "gopro_frameavg", "levin")


def model_from_run(run: Path) -> torch.nn.Module:
    """The model of a training run at its latest checkpoint (EMA weights when present)."""
    from safetensors.torch import load_file

    from deblurkit.models import create
    from deblurkit.train.config import config_from_dict
    from deblurkit.train.engine import Checkpointer

    import yaml

    cfg = config_from_dict(yaml.safe_load((run / "config.yaml").read_text()), source=str(run / "config.yaml"))
    ck = Checkpointer(run).latest()
    if ck is None:
        sys.exit(f"{run}: no checkpoint")
    f = ck / "ema.safetensors" if (ck / "ema.safetensors").exists() else ck / "model.safetensors"
    model = create(cfg.model.name, **cfg.model.options)
    model.load_state_dict(load_file(str(f)))
    print(f"model: {cfg.model.name} {cfg.model.options} from {f}")
    return model.eval()


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None]


def static_mask(blurred: np.ndarray, sharp: np.ndarray, threshold: float = 0.05, grow: int = 8) -> np.ndarray:
    """``(H, W)`` bool: pixels where the blurred input already equals the sharp image (mean
    absolute RGB difference <= ``threshold``, and no such difference within ``grow`` px). On
    frame-averaged video these are the static parts of the scene; a deblurring model should leave
    them as they are."""
    from scipy import ndimage

    moving = np.abs(blurred.astype(np.float64) - sharp).mean(axis=2) > threshold
    if grow:
        moving = ndimage.binary_dilation(moving, structure=np.ones((3, 3), bool), iterations=grow)
    return ~moving


def masked_psnr(x: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (peak 1) over the pixels of ``mask`` (all channels); NaN when the mask is empty."""
    if not mask.any():
        return float("nan")
    mse = float(np.mean((x.astype(np.float64) - ref)[mask] ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


def evaluate_set(model, root: Path, convention: str, limit: int | None) -> list[dict]:
    ds = LevinDataset(root) if root.name == "levin" else PairedFolder(root)
    rows = []
    for i, (bp, sp) in enumerate(ds.pairs):
        if limit is not None and i >= limit:
            break
        b = read_image(bp).pixels[:, :, :3]
        s = read_image(sp).pixels[:, :, :3]
        t0 = time.perf_counter()
        out = deblur(b, model=model)
        sec = time.perf_counter() - t0
        tb, ts, to = _t(b), _t(s), _t(out)
        p_in, p_out = float(psnr(tb, ts)[0]), float(psnr(to, ts)[0])
        still = static_mask(b, s)
        rows.append({"name": Path(bp).stem, "psnr_in": p_in, "psnr": p_out, "gain": p_out - p_in,
                     "static_fraction": float(still.mean()), "static_psnr_in": masked_psnr(b, s, still),
                     "static_psnr": masked_psnr(out, s, still),
                     "ssim_in": float(ssim(tb, ts, convention=convention)[0]),
                     "ssim": float(ssim(to, ts, convention=convention)[0]), "seconds": sec,
                     "size": f"{b.shape[1]}x{b.shape[0]}"})
    return rows


def contact_sheet(model, root: Path, out: Path, count: int, thumb: int = 320) -> None:
    from PIL import Image

    files = sorted(p for p in root.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:count]
    tiles = []
    for p in files:
        img = read_image(p).pixels[:, :, :3]
        scale = thumb / max(img.shape[:2])
        if scale < 1:  # deblur at a size where the blur is still visible, then show both side by side
            pil = Image.fromarray(np.round(img * 255).astype(np.uint8))
            pil = pil.resize((max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale))), Image.LANCZOS)
            img = np.asarray(pil, dtype=np.float32) / 255
        res = deblur(img, model=model)
        pair = np.ones((thumb, 2 * thumb + 4, 3), np.float32)
        pair[: img.shape[0], : img.shape[1]] = img
        pair[: res.shape[0], thumb + 4: thumb + 4 + res.shape[1]] = res
        tiles.append(pair)
    cols = 3
    rows = [np.concatenate(tiles[i:i + cols] + [np.ones_like(tiles[0])] * (cols - len(tiles[i:i + cols])), axis=1)
            for i in range(0, len(tiles), cols)]
    write_image(out, np.concatenate(rows, axis=0))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--model", default="default", help="registry / weights name (default: the shipped default)")
    g.add_argument("--run", type=Path, help="a training run folder: its latest checkpoint")
    g.add_argument("--weights", type=Path, help="a .safetensors file (with --arch)")
    ap.add_argument("--arch", default=None)
    ap.add_argument("--sets", nargs="*", default=list(SETS))
    ap.add_argument("--limit", type=int, default=None, help="at most this many pairs per set")
    ap.add_argument("--ssim", default="skimage")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--sheet", type=Path, default=None, help="write a dev/lai_real before/after sheet here")
    ap.add_argument("--sheet-count", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.run is not None:
        model = model_from_run(args.run)
    elif args.weights is not None:
        from deblurkit.infer.api import load_model

        model = load_model(args.weights, arch=args.arch)
    else:
        model = args.model
    dev = shared_data() / "dev"
    report = {}
    for name in args.sets:
        rows = evaluate_set(model, dev / name, args.ssim, args.limit)
        report[name] = rows
        print(f"\n### {name} ({len(rows)} pairs; SSIM convention '{args.ssim}')\n")
        print("| pair | size | input PSNR | output PSNR | gain dB | input SSIM | output SSIM | "
              "static part: share, PSNR in -> out | s |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['name']} | {r['size']} | {r['psnr_in']:.2f} | {r['psnr']:.2f} | {r['gain']:+.2f} | "
                  f"{r['ssim_in']:.4f} | {r['ssim']:.4f} | {r['static_fraction']:.0%}, "
                  f"{r['static_psnr_in']:.2f} -> {r['static_psnr']:.2f} | {r['seconds']:.2f} |")
        m = {k: float(np.mean([r[k] for r in rows])) for k in ("psnr_in", "psnr", "gain", "ssim_in", "ssim")}
        worst = min(r["gain"] for r in rows)
        print(f"| **mean** | | {m['psnr_in']:.2f} | {m['psnr']:.2f} | **{m['gain']:+.2f}** | {m['ssim_in']:.4f} | "
              f"{m['ssim']:.4f} | median {np.median([r['seconds'] for r in rows]):.2f} |")
        print(f"\nworst pair gain {worst:+.2f} dB; pairs made worse: {sum(r['gain'] < 0 for r in rows)}/{len(rows)}")
    print("\n### summary: mean gain over the blurred input (dB)\n")
    print("| set | mean gain | worst pair | static part (share): mean PSNR in -> out |")
    print("|---|---|---|---|")
    for name, rows in report.items():
        still = [r for r in rows if r["static_fraction"] > 0]
        static = (f"{np.mean([r['static_fraction'] for r in rows]):.0%}: "
                  f"{np.mean([r['static_psnr_in'] for r in still]):.2f} -> "
                  f"{np.mean([r['static_psnr'] for r in still]):.2f}") if still else "none"
        print(f"| {name} | {np.mean([r['gain'] for r in rows]):+.2f} | {min(r['gain'] for r in rows):+.2f} | {static} |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    if args.sheet:
        contact_sheet(model, dev / "lai_real", args.sheet, args.sheet_count)
        print(f"\ncontact sheet: {args.sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
