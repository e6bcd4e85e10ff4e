"""``deblurkit deblur INPUT... -o OUT_DIR``: deblur photos (files or folders) with a trained model.

- Inputs are files or folders; folders are searched recursively for images (suffixes in
  :data:`IMAGE_SUFFIXES`; hidden files are skipped, and so is ``OUT_DIR`` when it lies inside an
  input folder, so results of an earlier run are not deblurred again). A file named
  on the command line is always tried, whatever its suffix.
- Output paths: ``OUT_DIR/<stem><suffix>.<ext>`` for a file argument and
  ``OUT_DIR/<path relative to the folder>/<stem><suffix>.<ext>`` for files found in a folder.
  ``<ext>`` is ``--format`` or else the input's own (lower-cased). 16-bit inputs stay 16-bit in
  PNG/TIFF (JPEG is 8-bit); the alpha channel and ICC profile are kept; EXIF orientation is applied
  when reading. Writes are atomic.
- Before any work the command refuses (exit 2) a run in which an output path resolves to an input
  file, or two inputs would be written to the same output.
- A file that cannot be read or written is reported on one line (path and problem) and the others
  go on; the exit status is then 2 and the failures are listed at the end. (An RGBA photo written
  as ``--format jpg`` is such a failure: JPEG has no alpha channel.)
- ``--model`` takes a registry name (default: ``default``, the shipped model) or the path of a
  ``.safetensors`` weights file; its architecture comes from the file's ``arch`` metadata (with
  options from ``options``) or from ``--arch NAME`` (see :func:`deblurkit.infer.load_model`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, DeblurkitError
from ..io.image import IMAGE_EXTENSIONS

HELP = "deblur photos (files or folders) with a trained model"

#: Suffixes picked up when searching a folder (case-insensitive): those deblurkit.io reads.
IMAGE_SUFFIXES = frozenset(IMAGE_EXTENSIONS)

def image_files(folder: Path) -> list[Path]:
    """The image files under ``folder`` (recursive, sorted; hidden files and folders skipped)."""
    return [path for path in sorted(folder.rglob("*"))
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
            and not any(part.startswith(".") for part in path.relative_to(folder).parts)]


#: Output formats and whether they hold 16 bits per channel.
FORMATS = {"png": True, "jpg": False, "tif": True}
_SIXTEEN_BIT_SUFFIXES = frozenset({".png", ".tif", ".tiff"})


@dataclass(frozen=True)
class Job:
    """One input file and the output path it is written to."""

    source: Path
    target: Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", type=Path,
                        help="image files and/or folders (searched recursively)")
    parser.add_argument("-o", "--output-dir", required=True, type=Path, metavar="OUT_DIR",
                        help="folder for the results (created if missing)")
    parser.add_argument("--model", default="default",
                        help="registry name, or path of a .safetensors file or of an .onnx file "
                             "from 'deblurkit export' (default: %(default)s)")
    parser.add_argument("--arch", default=None, metavar="NAME",
                        help="architecture of a .safetensors --model without 'arch' metadata")
    parser.add_argument("--tile", type=int, default=None, metavar="N",
                        help="tile side in pixels (default: automatic above 1.5 megapixels)")
    parser.add_argument("--overlap", type=int, default=None, metavar="M",
                        help="overlap of neighbouring tiles in pixels (default 48, or N/4 if smaller)")
    parser.add_argument("--ensemble", action="store_true",
                        help="x8 self-ensemble over flips and transposes (8x slower)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="where the model runs (default: %(default)s); no fallback")
    parser.add_argument("--backend", default="auto", choices=["auto", "torch", "torch-bf16", "onnxruntime"],
                        help="inference engine (default: auto = torch, channels-last on the CPU; "
                             "torch-bf16 = bf16 autocast, faster on CPUs with native bf16; "
                             "onnxruntime exports once and caches)")
    parser.add_argument("--format", default=None, choices=sorted(FORMATS),
                        help="output format (default: the input's)")
    parser.add_argument("--suffix", default="", metavar="S",
                        help="appended to each output file's stem, e.g. _sharp")
    parser.add_argument("--quality", type=int, default=95, metavar="Q",
                        help="JPEG quality 1-100 (default: %(default)s)")


def _output_name(source: Path, fmt: str | None, suffix: str) -> str:
    ext = f".{fmt}" if fmt else source.suffix.lower()
    return f"{source.stem}{suffix}{ext}"


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def collect_jobs(inputs: list[Path], out_dir: Path, fmt: str | None,
                 suffix: str) -> tuple[list[Job], list[tuple[Path, str]]]:
    """Expand ``inputs`` into jobs; return them and ``(input, problem line)`` per unusable input.

    Raises :class:`ConfigError` (before anything is written) when an output would overwrite an
    input file or two inputs map to the same output.
    """
    out_root = out_dir.resolve()
    jobs: list[Job] = []
    problems: list[tuple[Path, str]] = []
    for item in inputs:
        if item.is_dir():
            folder = item.resolve()
            skip_out = out_root != folder and _is_within(out_root, folder)
            found = []
            for path in image_files(item):
                if skip_out and _is_within(path.resolve(), out_root):
                    continue  # results of an earlier run inside the input folder
                rel = path.relative_to(item)
                found.append(Job(path, out_dir / rel.parent / _output_name(path, fmt, suffix)))
            if not found:
                problems.append((item, f"{item}: no image files found in this folder"))
            jobs.extend(found)
        elif item.is_file():
            jobs.append(Job(item, out_dir / _output_name(item, fmt, suffix)))
        elif item.exists():
            problems.append((item, f"{item}: not a regular file or folder"))
        else:
            problems.append((item, f"{item}: no such file or folder"))

    sources = {job.source.resolve(): job.source for job in jobs}
    seen: dict[Path, Path] = {}
    done_sources: set[Path] = set()
    unique: list[Job] = []
    for job in jobs:
        src = job.source.resolve()
        if src in done_sources:
            continue  # the same file named twice (e.g. a file and its folder)
        done_sources.add(src)
        dst = job.target.resolve()
        if dst in sources:
            raise ConfigError(
                f"refusing to overwrite input {sources[dst]}: it is the output path for "
                f"{job.source}; choose another -o OUT_DIR or add --suffix")
        if dst in seen:
            raise ConfigError(
                f"output {job.target}: would be written from both {seen[dst]} and {job.source}; "
                "use --suffix or separate runs")
        seen[dst] = job.source
        unique.append(job)
    return unique, problems


def _show_progress_notes() -> None:
    """Show deblurkit.infer's INFO notes (e.g. the one-time ONNX export) on stderr."""
    logger = logging.getLogger("deblurkit.infer")
    if not any(getattr(h, "_deblurkit_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("deblurkit deblur: %(message)s"))
        handler._deblurkit_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _one_line(source: Path, exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if text.startswith(str(source)) else f"{source}: {text}"


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from ..infer import get_runner
    from ..infer.api import deblur
    from ..infer.backends import resolve_device
    from ..infer.tiling import DEFAULT_OVERLAP, validate_tiling
    from ..io import read_image, write_image

    resolve_device(args.device)
    if args.tile is not None:
        validate_tiling(args.tile, args.overlap if args.overlap is not None
                        else min(DEFAULT_OVERLAP, args.tile // 4))
    elif args.overlap is not None:
        raise ConfigError(f"overlap: --overlap {args.overlap} needs --tile N")
    from ..estimation import is_estimator

    if is_estimator(args.model) and args.tile is not None:  # an option error, not a file's: refuse up front
        raise ConfigError(f"tile: --model {args.model} is a kernel estimator, which estimates one blur from "
                          f"the whole image and is never tiled (got --tile {args.tile}); drop --tile/--overlap")
    if not 1 <= args.quality <= 100:
        raise ConfigError(f"quality: expected 1-100, got {args.quality}")
    if os.sep in args.suffix or (os.altsep and os.altsep in args.suffix):
        raise ConfigError(f"suffix: {args.suffix!r} must not contain a path separator")
    if args.output_dir.exists() and not args.output_dir.is_dir():
        raise ConfigError(f"output-dir: {args.output_dir} exists and is not a folder")

    jobs, problems = collect_jobs(list(args.inputs), args.output_dir, args.format, args.suffix)
    for _, line in problems:
        print(line, file=sys.stderr)
    failed_paths = [str(path) for path, _ in problems]

    written = 0
    if jobs:
        _show_progress_notes()
        runner = get_runner(args.model, device=args.device, backend=args.backend, arch=args.arch)
        with tqdm(total=len(jobs), unit="img", file=sys.stderr, desc="deblur",
                  dynamic_ncols=True) as bar:
            for job in jobs:
                bar.set_postfix_str(job.source.name, refresh=False)
                try:
                    loaded = read_image(job.source)
                    result = deblur(loaded.pixels, runner, device=args.device,
                                    backend=args.backend, tile=args.tile,
                                    overlap=args.overlap, ensemble=args.ensemble)
                    sixteen = job.target.suffix.lower() in _SIXTEEN_BIT_SUFFIXES
                    write_image(job.target, result,
                                bit_depth=loaded.bit_depth if sixteen else 8,
                                quality=args.quality, icc_profile=loaded.icc_profile)
                    written += 1
                except (DeblurkitError, OSError, MemoryError, torch.OutOfMemoryError) as exc:
                    line = _one_line(job.source, exc)
                    tqdm.write(line, file=sys.stderr)
                    failed_paths.append(str(job.source))
                bar.update(1)

    print(f"wrote {written} image(s) to {args.output_dir}")
    if failed_paths:
        print(f"deblurkit deblur: {len(failed_paths)} input(s) failed: {', '.join(failed_paths)}",
              file=sys.stderr)
        return 2
    return 0
