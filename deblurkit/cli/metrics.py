"""``deblurkit metrics PRED GT``: PSNR / SSIM of predictions against ground truth.

- ``PRED`` and ``GT`` are two image files, or two folders whose images are matched by file stem
  (``out/0001.png`` with ``gt/0001.jpg``; only the folder itself, not sub-folders; hidden files
  skipped; suffixes those :func:`deblurkit.io.read_image` reads). A prediction without ground
  truth, or ground truth without prediction, is an error listing the names, unless
  ``--allow-missing`` (then the matched pairs are scored and the unmatched names are listed on
  stderr). Two files with the same stem in one folder are an error.
- ``--protocol plain`` (default; GoPro): :func:`deblurkit.metrics.plain_score`, with
  ``--crop-border N`` pixels dropped from each side.
- ``--protocol levin``: :func:`deblurkit.metrics.levin_score` (shift search ``--max-shift``,
  default 10; crop ``--border``, default 15; ``--subpixel``). ``--reference R`` (a file, or a
  folder matched by stem like ``GT``) holds the deconvolutions with the true kernels and adds the
  error ratio.
- ``--protocol kohler``: :func:`deblurkit.metrics.kohler_score`. ``GT`` holds one *folder of sharp
  frames per image*: ``GT/<name>/*.png`` (all images in it, sorted by name) for the prediction
  ``PRED/<name>.png``; with a single ``PRED`` file, ``GT`` is that image's folder of frames.
  ``--max-shift`` (default 20), ``--border`` (default: the max shift), ``--fit`` (default gain),
  ``--subpixel``.
- ``--ssim`` names the SSIM convention (:data:`deblurkit.metrics.SSIM_CONVENTIONS`).
- Output: a Markdown table (one row per image and a mean row), or with ``--json`` exactly
  ``{"images": [{"name", "psnr", "ssim", ...}, ...], "mean": {"psnr", "ssim", ...}}``. The mean is
  the mean of the per-image values. JSON has no infinity: a PSNR of +inf (identical images) is
  written as ``null``.
- Images of different sizes or channel counts: one error line naming both files and sizes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from ..errors import ConfigError, ImageError
from ..io.image import IMAGE_EXTENSIONS

HELP = "PSNR / SSIM of predictions against ground truth"

PROTOCOLS = ("plain", "levin", "kohler")
_CONVENTIONS = ("skimage", "matlab", "per-channel", "y")   # = deblurkit.metrics.SSIM_CONVENTIONS
_FITS = ("none", "gain", "affine")
_KOHLER_CHUNK = 8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pred", type=Path, metavar="PRED", help="prediction image or folder")
    parser.add_argument("gt", type=Path, metavar="GT",
                        help="ground-truth image or folder (kohler: folders of sharp frames)")
    parser.add_argument("--ssim", default="skimage", choices=_CONVENTIONS,
                        help="SSIM convention (default: %(default)s)")
    parser.add_argument("--protocol", default="plain", choices=PROTOCOLS,
                        help="evaluation protocol (default: %(default)s)")
    parser.add_argument("--crop-border", type=int, default=None, metavar="N",
                        help="plain: pixels dropped from each side (default 0)")
    parser.add_argument("--max-shift", type=int, default=None, metavar="N",
                        help="levin/kohler: largest shift searched in pixels "
                             "(default 10 for levin, 20 for kohler)")
    parser.add_argument("--border", type=int, default=None, metavar="N",
                        help="levin/kohler: pixels cropped from each side of the ground truth "
                             "(default 15 for levin, the max shift for kohler)")
    parser.add_argument("--subpixel", action="store_true",
                        help="levin/kohler: refine the shift below one pixel (bilinear)")
    parser.add_argument("--fit", default=None, choices=_FITS,
                        help="kohler: intensity correction (default gain)")
    parser.add_argument("--reference", type=Path, default=None, metavar="R",
                        help="levin: deconvolution(s) with the true kernel, for the error ratio")
    parser.add_argument("--allow-missing", action="store_true",
                        help="score the matched pairs and only list unmatched files")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")


def _check_options(args: argparse.Namespace) -> None:
    p = args.protocol
    if args.crop_border is not None and p != "plain":
        raise ConfigError(f"crop-border: --crop-border applies to --protocol plain; "
                          f"use --border with --protocol {p}")
    if args.crop_border is not None and args.crop_border < 0:
        raise ConfigError(f"crop-border: {args.crop_border}; expected an integer >= 0")
    for name in ("max_shift", "border"):
        value = getattr(args, name)
        flag = "--" + name.replace("_", "-")
        if value is not None and p == "plain":
            raise ConfigError(f"{name.replace('_', '-')}: {flag} applies to --protocol levin or "
                              f"kohler, not plain")
        if value is not None and value < 0:
            raise ConfigError(f"{name.replace('_', '-')}: {value}; expected an integer >= 0")
    if args.subpixel and p == "plain":
        raise ConfigError("subpixel: --subpixel applies to --protocol levin or kohler, not plain")
    if args.fit is not None and p != "kohler":
        raise ConfigError(f"fit: --fit applies to --protocol kohler, not {p}")
    if args.reference is not None and p != "levin":
        raise ConfigError(f"reference: --reference applies to --protocol levin, not {p}")


def _is_image(path: Path) -> bool:
    return (path.is_file() and not path.name.startswith(".")
            and path.suffix.lower() in IMAGE_EXTENSIONS)


def _images_by_stem(folder: Path, what: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not _is_image(path):
            continue
        if path.stem in found:
            raise ImageError(f"{what} {folder}: two images with the stem {path.stem!r} "
                             f"({found[path.stem].name}, {path.name}); cannot match by name")
        found[path.stem] = path
    return found


def _frame_folders(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(folder.iterdir())
            if p.is_dir() and not p.name.startswith(".")}


def _frames(folder: Path) -> list[Path]:
    frames = [p for p in sorted(folder.iterdir()) if _is_image(p)]
    if not frames:
        raise ImageError(f"GT {folder}: no image files (sharp frames) in this folder; "
                         f"--protocol kohler needs GT/<name>/ holding the frames of <name>")
    return frames


def _need(path: Path, what: str) -> None:
    if not path.exists():
        raise ImageError(f"{what} {path}: no such file or folder")


def _names(items: list[str], limit: int = 10) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def match(pred: Path, gt: Path, protocol: str, allow_missing: bool
          ) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """Pair predictions with ground truth; returns ``(pairs, notes)``.

    Each pair is ``(name, pred_file, gt_path)`` where ``gt_path`` is a file, or for
    ``protocol="kohler"`` a folder of frames. Raises :class:`ImageError` for missing paths,
    a file/folder mix, duplicate stems and (unless ``allow_missing``) unmatched names.
    """
    _need(pred, "PRED")
    _need(gt, "GT")
    kohler = protocol == "kohler"
    if pred.is_file():
        if kohler:
            if not gt.is_dir():
                raise ImageError(f"GT {gt}: --protocol kohler needs a folder of sharp frames for "
                                 f"the prediction {pred.name}")
            _frames(gt)
            return [(pred.stem, pred, gt)], []
        if not gt.is_file():
            raise ImageError(f"GT {gt}: is a folder but PRED {pred} is a file; give two files "
                             f"or two folders")
        return [(pred.stem, pred, gt)], []
    if not pred.is_dir():
        raise ImageError(f"PRED {pred}: not a regular file or folder")
    if not gt.is_dir():
        raise ImageError(f"GT {gt}: is a file but PRED {pred} is a folder; give two files "
                         f"or two folders")
    preds = _images_by_stem(pred, "PRED")
    gts = _frame_folders(gt) if kohler else _images_by_stem(gt, "GT")
    if not preds:
        raise ImageError(f"PRED {pred}: no image files found in this folder")
    no_gt = sorted(set(preds) - set(gts))
    no_pred = sorted(set(gts) - set(preds))
    notes = []
    if no_gt:
        kind = "frame folder" if kohler else "ground truth"
        notes.append(f"no {kind} in {gt} for {len(no_gt)} prediction(s): {_names(no_gt)}")
    if no_pred:
        notes.append(f"no prediction in {pred} for {len(no_pred)} ground truth(s): "
                     f"{_names(no_pred)}")
    if notes and not allow_missing:
        raise ImageError("; ".join(notes) + " (--allow-missing scores the matched pairs only)")
    pairs = [(name, preds[name], gts[name]) for name in sorted(set(preds) & set(gts))]
    if not pairs:
        raise ImageError(f"PRED {pred} and GT {gt}: no image names in common")
    if kohler:
        for _, _, folder in pairs:
            _frames(folder)         # every frame folder must hold images, checked before work
    return pairs, notes


def _describe(pixels) -> str:
    h, w, c = pixels.shape
    return f"{w}x{h} with {c} channel(s)"


def _same_size(a, a_path: Path, b, b_path: Path, b_what: str) -> None:
    if a.shape != b.shape:
        raise ImageError(f"size mismatch: PRED {a_path} is {_describe(a)} but {b_what} {b_path} "
                         f"is {_describe(b)}")


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _fmt(x: float | None, digits: int) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}f}"


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    _check_options(args)
    pairs, notes = match(args.pred, args.gt, args.protocol, args.allow_missing)
    for note in notes:
        print(f"deblurkit metrics: {note}", file=sys.stderr)
    refs: dict[str, Path] = {}
    if args.reference is not None:
        _need(args.reference, "reference")
        if args.pred.is_file():
            if not args.reference.is_file():
                raise ImageError(f"reference {args.reference}: PRED is a file, so the reference "
                                 f"must be a file too")
            refs = {pairs[0][0]: args.reference}
        else:
            if not args.reference.is_dir():
                raise ImageError(f"reference {args.reference}: PRED is a folder, so the "
                                 f"reference must be a folder too")
            refs = _images_by_stem(args.reference, "reference")
            lacking = [name for name, _, _ in pairs if name not in refs]
            if lacking:
                raise ImageError(f"reference {args.reference}: no image for {len(lacking)} "
                                 f"prediction(s): {_names(lacking)}")

    entries: list[dict] = []
    with torch.inference_mode(), tqdm(total=len(pairs), unit="img", file=sys.stderr,
                                       desc="metrics", dynamic_ncols=True, disable=None) as bar:
        for name, pred_path, gt_path in pairs:
            bar.set_postfix_str(name, refresh=False)
            try:
                entries.append(_score(name, pred_path, gt_path, refs.get(name), args))
            except ImageError as exc:
                text = str(exc)
                if any(str(path) in text for path in (pred_path, gt_path, refs.get(name))
                       if path is not None):
                    raise       # already names its file
                raise ImageError(f"{pred_path} vs {gt_path}: {text}") from exc
            bar.update(1)

    mean = {"psnr": sum(e["psnr"] for e in entries) / len(entries),
            "ssim": sum(e["ssim"] for e in entries) / len(entries)}
    if entries and all("error_ratio" in e for e in entries):
        mean["error_ratio"] = sum(e["error_ratio"] for e in entries) / len(entries)
    if args.json:
        print(json.dumps({"images": [_jsonable(e) for e in entries], "mean": _jsonable(mean)},
                         allow_nan=False))
    else:
        print(_markdown(entries, mean, args))
    return 0


def _score(name: str, pred_path: Path, gt_path: Path, ref_path: Path | None,
           args: argparse.Namespace) -> dict:
    """One output entry: ``name``, ``psnr``, ``ssim`` and the protocol's extra keys."""
    from ..io import read_image, to_tensor
    from ..metrics import levin_score, plain_score

    pred = read_image(pred_path).pixels
    entry: dict = {"name": name}
    if args.protocol == "kohler":
        entry.update(_kohler(pred, pred_path, gt_path, args))
        return entry
    gt = read_image(gt_path).pixels
    _same_size(pred, pred_path, gt, gt_path, "GT")
    p, t = to_tensor(pred), to_tensor(gt)
    if args.protocol == "plain":
        score = plain_score(p, t, ssim_convention=args.ssim, crop_border=args.crop_border or 0)
        entry.update(psnr=float(score.psnr[0]), ssim=float(score.ssim[0]))
        return entry
    ref = None
    if ref_path is not None:
        ref_pixels = read_image(ref_path).pixels
        _same_size(pred, pred_path, ref_pixels, ref_path, "reference")
        ref = to_tensor(ref_pixels)
    score = levin_score(p, t, reference=ref,
                        max_shift=10 if args.max_shift is None else args.max_shift,
                        border=15 if args.border is None else args.border,
                        subpixel=args.subpixel, ssim_convention=args.ssim)
    entry.update(psnr=float(score.psnr[0]), ssim=float(score.ssim[0]), ssd=float(score.ssd[0]),
                 shift=[float(v) for v in score.shift[0]])
    if score.error_ratio is not None:
        entry["error_ratio"] = float(score.error_ratio[0])
    return entry


def _kohler(pred, pred_path: Path, folder: Path, args: argparse.Namespace) -> dict:
    """Score one prediction against its folder of frames, reading the frames in chunks."""
    import torch

    from ..io import read_image, to_tensor
    from ..metrics import kohler_score

    frames = _frames(folder)
    max_shift = 20 if args.max_shift is None else args.max_shift
    p = to_tensor(pred)
    best: dict = {"psnr": -math.inf, "ssim": -math.inf}
    for start in range(0, len(frames), _KOHLER_CHUNK):
        chunk = frames[start:start + _KOHLER_CHUNK]
        tensors = []
        for path in chunk:
            pixels = read_image(path).pixels
            _same_size(pred, pred_path, pixels, path, "GT frame")
            tensors.append(to_tensor(pixels))
        score = kohler_score(p, torch.cat(tensors), max_shift=max_shift, border=args.border,
                             fit=args.fit or "gain", subpixel=args.subpixel,
                             ssim_convention=args.ssim)
        if score.psnr > best["psnr"]:
            best["psnr"], best["psnr_frame"] = score.psnr, chunk[score.psnr_frame].name
        if score.ssim > best["ssim"]:
            best["ssim"], best["ssim_frame"] = score.ssim, chunk[score.ssim_frame].name
    best["frames"] = len(frames)
    return best


def _jsonable(entry: dict) -> dict:
    return {k: (_finite(v) if isinstance(v, float) else v) for k, v in entry.items()}


def _markdown(entries: list[dict], mean: dict, args: argparse.Namespace) -> str:
    extra = [("error_ratio", "error ratio", 3)] if "error_ratio" in mean else []
    if args.protocol == "levin":
        extra.insert(0, ("shift", "shift (dy, dx)", None))
    if args.protocol == "kohler":
        extra = [("psnr_frame", "best PSNR frame", None), ("ssim_frame", "best SSIM frame", None)]
    head = ["image", "PSNR (dB)", f"SSIM ({args.ssim})"] + [title for _, title, _ in extra]
    lines = [f"protocol: {args.protocol}, SSIM convention: {args.ssim}, {len(entries)} image(s)",
             "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cell(value, digits):
        if digits is None:
            if isinstance(value, list):
                return "(" + ", ".join(f"{v:g}" for v in value) + ")"
            return "" if value is None else str(value)
        return _fmt(value, digits)

    for e in entries:
        row = [e["name"], _fmt(e["psnr"], 3), _fmt(e["ssim"], 4)]
        row += [cell(e.get(key), digits) for key, _, digits in extra]
        lines.append("| " + " | ".join(row) + " |")
    row = ["**mean**", _fmt(mean["psnr"], 3), _fmt(mean["ssim"], 4)]
    row += [(_fmt(mean[key], digits) if key in mean else "") for key, _, digits in extra]
    lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
