"""``deblurkit synth SHARP_DIR -o OUT_DIR``: make a paired blurred/sharp dataset from sharp photos.

Kernel mode (default): each sharp photo (files in SHARP_DIR with an image extension, not hidden,
not in sub-folders; sorted by name) is blurred with a random kernel, ``B = K * I + N`` (survey
eq. 1, Sahu, Lenka, Sa, arXiv 1907.10128), and written as::

    OUT_DIR/blur/<name>.png      the blurred photo (8-bit PNG)
    OUT_DIR/sharp/<name>.png     the sharp photo (cropped like the blur, 8-bit PNG)
    OUT_DIR/kernels/<name>.npy   the exact float32 kernel, plus <name>.png (16-bit grey, readable
                                 by deblurkit.io.read_kernel) and <name>_view.png (enlarged)

``<name>`` is the photo's stem; with ``--count`` larger than the number of photos the photos are
used in turn and ``<name>`` is ``<stem>_<round>``.

Frames mode (``--frames``): SHARP_DIR holds one sub-folder per video clip of consecutive frames
(sorted by name). Each run of ``--frames-per-blur`` consecutive frames (non-overlapping windows)
is averaged in linear light, GoPro style (Nah et al. 2017, survey §III-C), with the middle frame
as the sharp image (:func:`deblurkit.blur.frames.average_frames`); ``<name>`` is
``<clip>_<first frame stem>``. No kernels are written.

Both modes: ``--crop WxH`` takes a random WxH window (for kernels, the blur is computed from a
window enlarged by the kernel, so the crop has no boundary effects; elsewhere the photo is
extended by mirroring, ``boundary="reflect"``); ``--grey`` converts to grey (Rec. 709 luma of the
encoded values, as ``skimage.color.rgb2gray``); an alpha channel is ignored; ``--noise`` adds
Gaussian noise clipped to [0, 1] (sensor saturation); ``--jpeg Q`` JPEG-compresses the blurred
image. Pair ``i`` uses the random generator seeded with ``(--seed, i)``, so a run is reproducible
file for file and pairs do not depend on each other. Every file is written atomically, and the
files of a pair that fails half way are removed, so OUT_DIR holds only complete pairs.

Refused before anything is written (exit 2): OUT_DIR equal to, inside or containing SHARP_DIR,
no usable photos or clips, two photos with the same stem, bad option values. A photo that cannot be
read stops the run with one line naming it and the pairs already written.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DeblurkitError, ImageError

HELP = "make a paired blurred/sharp dataset from sharp photos"

KINDS = ("motion", "shake", "gp", "gaussian", "disk")
_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)  # Rec. 709, as skimage.rgb2gray


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sharp_dir", metavar="SHARP_DIR", type=Path,
                        help="folder of sharp photos (or, with --frames, of clip sub-folders)")
    parser.add_argument("-o", "--output-dir", dest="out_dir", metavar="OUT_DIR", type=Path,
                        required=True, help="folder for blur/, sharp/ and kernels/ (created)")
    parser.add_argument("--kind", choices=KINDS + ("mixed",), default=None,
                        help="kernel family; mixed draws one per pair (default: mixed)")
    parser.add_argument("--kernel-size", default=None, metavar="A:B",
                        help="kernel side drawn from A..B, odd sizes where the range has them, "
                             "or a single N (default: 11:31)")
    parser.add_argument("--noise", type=float, default=0.0, metavar="SIGMA",
                        help="Gaussian noise std on the [0, 1] scale (default: 0)")
    parser.add_argument("--jpeg", type=int, default=None, metavar="Q",
                        help="JPEG-compress the blurred image at quality Q (1-100)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--count", type=int, default=None, metavar="N",
                        help="number of pairs (default: one per photo / frame window)")
    parser.add_argument("--crop", default=None, metavar="WxH",
                        help="random crop of this size from each photo")
    parser.add_argument("--grey", action="store_true", help="write grey images")
    parser.add_argument("--gamma", type=float, default=None,
                        help="blur in linear light x**GAMMA (default: 1 = the encoded values for "
                             "kernels, 2.2 for --frames)")
    parser.add_argument("--frames", action="store_true",
                        help="SHARP_DIR holds sub-folders of consecutive video frames")
    parser.add_argument("--frames-per-blur", type=int, default=7, metavar="N",
                        help="odd number of frames averaged per blurred image (default: 7)")


# --------------------------------------------------------------------------------------------
# options
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Options:
    kind: str
    sizes: tuple[int, ...]
    noise: float
    jpeg: int | None
    seed: int
    count: int | None
    crop: tuple[int, int] | None  # (w, h)
    grey: bool
    gamma: float
    frames: bool
    per_blur: int


def _parse_sizes(text: str) -> tuple[int, ...]:
    parts = text.split(":")
    try:
        lo, hi = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else (0, -1)
    except ValueError:
        lo, hi = 0, -1
    if lo < 1 or hi < lo:
        raise ConfigError(f"--kernel-size: expected N or A:B with 1 <= A <= B, got {text!r}")
    odd = tuple(s for s in range(lo, hi + 1) if s % 2 == 1)
    return odd or tuple(range(lo, hi + 1))


def _parse_crop(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    try:
        w, h = (int(parts[0]), int(parts[1])) if len(parts) == 2 else (0, 0)
    except ValueError:
        w, h = 0, 0
    if w < 1 or h < 1:
        raise ConfigError(f"--crop: expected WxH with positive integers, e.g. 256x256, got "
                          f"{text!r}")
    return w, h


def _options(args: argparse.Namespace) -> Options:
    if args.frames and (args.kind is not None or args.kernel_size is not None):
        raise ConfigError("--frames: blur comes from averaging frames; --kind and --kernel-size "
                          "do not apply")
    if not math.isfinite(args.noise) or args.noise < 0:
        raise ConfigError(f"--noise: must be a finite number >= 0, got {args.noise}")
    if args.jpeg is not None and not 1 <= args.jpeg <= 100:
        raise ConfigError(f"--jpeg: quality must be from 1 to 100, got {args.jpeg}")
    if args.seed < 0:
        raise ConfigError(f"--seed: must be >= 0, got {args.seed}")
    if args.count is not None and args.count < 1:
        raise ConfigError(f"--count: must be >= 1, got {args.count}")
    if args.frames_per_blur < 1 or args.frames_per_blur % 2 == 0:
        raise ConfigError(f"--frames-per-blur: must be odd and >= 1 (the middle frame is the "
                          f"sharp one), got {args.frames_per_blur}")
    gamma = args.gamma if args.gamma is not None else (2.2 if args.frames else 1.0)
    if not math.isfinite(gamma) or gamma <= 0:
        raise ConfigError(f"--gamma: must be a finite number > 0, got {gamma}")
    return Options(
        kind=args.kind or "mixed",
        sizes=_parse_sizes(args.kernel_size if args.kernel_size is not None else "11:31"),
        noise=float(args.noise), jpeg=args.jpeg, seed=int(args.seed), count=args.count,
        crop=_parse_crop(args.crop) if args.crop is not None else None,
        grey=bool(args.grey), gamma=float(gamma), frames=bool(args.frames),
        per_blur=int(args.frames_per_blur),
    )


def _check_folders(sharp_dir: Path, out_dir: Path) -> None:
    if not sharp_dir.is_dir():
        what = "does not exist" if not sharp_dir.exists() else "is not a folder"
        raise ConfigError(f"SHARP_DIR {sharp_dir}: {what}")
    src, out = sharp_dir.resolve(), out_dir.resolve()
    if out == src or src in out.parents:
        where = "SHARP_DIR itself" if out == src else "inside SHARP_DIR"
        raise ConfigError(f"OUT_DIR {out_dir}: is {where} ({sharp_dir}); choose a folder "
                          "outside the input folder")
    if out in src.parents:
        raise ConfigError(f"OUT_DIR {out_dir}: contains SHARP_DIR {sharp_dir}; outputs could "
                          "overwrite inputs, choose another folder")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"OUT_DIR {out_dir}: exists and is not a folder")


def _image_files(folder: Path) -> list[Path]:
    from ..io.image import IMAGE_EXTENSIONS

    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in IMAGE_EXTENSIONS)


# --------------------------------------------------------------------------------------------
# jobs: what each pair is made from
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Job:
    name: str
    sources: tuple[Path, ...]  # one photo, or the frames of one window


def _photo_jobs(sharp_dir: Path, count: int | None) -> list[Job]:
    files = _image_files(sharp_dir)
    if not files:
        subs = [p for p in sharp_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
        hint = f" (it has {len(subs)} sub-folders: use --frames for video frames)" if subs else ""
        raise ImageError(f"SHARP_DIR {sharp_dir}: no image files found{hint}")
    seen: dict[str, Path] = {}
    for f in files:
        if f.stem in seen:
            raise ImageError(f"SHARP_DIR {sharp_dir}: {seen[f.stem].name} and {f.name} have the "
                             "same name stem; outputs would collide, rename one")
        seen[f.stem] = f
    return _cycle([Job(f.stem, (f,)) for f in files], count)


def _frame_jobs(sharp_dir: Path, per_blur: int, count: int | None) -> list[Job]:
    clips = sorted(p for p in sharp_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not clips:
        raise ImageError(f"SHARP_DIR {sharp_dir}: no sub-folders of video frames (--frames)")
    jobs, short = [], []
    for clip in clips:
        frames = _image_files(clip)
        for start in range(0, len(frames) - per_blur + 1, per_blur):
            window = tuple(frames[start:start + per_blur])
            jobs.append(Job(f"{clip.name}_{window[0].stem}", window))
        if len(frames) < per_blur:
            short.append(f"{clip.name} ({len(frames)})")
    if not jobs:
        raise ImageError(f"SHARP_DIR {sharp_dir}: no clip has {per_blur} frames "
                         f"(--frames-per-blur); frames found: {', '.join(short)}")
    return _cycle(jobs, count)


def _cycle(jobs: list[Job], count: int | None) -> list[Job]:
    if count is None or count <= len(jobs):
        return jobs[:count]
    return [Job(f"{jobs[i % len(jobs)].name}_{i // len(jobs)}", jobs[i % len(jobs)].sources)
            for i in range(count)]


# --------------------------------------------------------------------------------------------
# making one pair
# --------------------------------------------------------------------------------------------

def _read(path: Path, grey: bool) -> np.ndarray:
    from ..io.image import read_image

    pixels = read_image(path).pixels
    if pixels.shape[2] == 4:
        pixels = pixels[..., :3]
    if grey and pixels.shape[2] == 3:
        pixels = (pixels @ _LUMA)[..., None].astype(np.float32)
    return np.ascontiguousarray(pixels, dtype=np.float32)


def make_kernel(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random kernel of the given family and side, drawn from ``rng``.

    ``motion``: length ``U(2, size - 1)``, angle ``U(0, 180)``; ``shake``: Boracchi & Foi
    trajectory; ``gp``: Gaussian-process trajectory; ``gaussian``: sigma ``U(0.25, 1) *
    max((size - 1) / 6, 0.5)``; ``disk``: radius ``U(0.25, 1) * (size - 1) / 2``.
    Returns float32 ``(size, size)`` summing to 1.
    """
    from ..blur import kernels as K

    if kind == "motion":
        length = rng.uniform(2.0, max(size - 1.0, 2.0))
        angle = rng.uniform(0.0, 180.0)
        return K.linear_motion_kernel(length if size > 2 else 1.0, angle, size=size)
    if kind == "shake":
        return K.camera_shake_kernel(size, rng)
    if kind == "gp":
        return K.gp_trajectory_kernel(size, rng)
    if kind == "gaussian":
        return K.gaussian_kernel(rng.uniform(0.25, 1.0) * max((size - 1) / 6.0, 0.5), size=size)
    if kind == "disk":
        return K.disk_kernel(rng.uniform(0.25, 1.0) * (size - 1) / 2.0, size=size)
    raise ConfigError(f"--kind: unknown kernel kind {kind!r}")  # pragma: no cover


def _crop_origin(shape: tuple[int, int], need: tuple[int, int], rng: np.random.Generator,
                 path: Path, why: str) -> tuple[int, int]:
    (h, w), (nh, nw) = shape, need
    if h < nh or w < nw:
        raise ImageError(f"{path}: {w}x{h} is smaller than the {nw}x{nh} {why}")
    return int(rng.integers(0, h - nh + 1)), int(rng.integers(0, w - nw + 1))


def _to_linear(x: np.ndarray, gamma: float) -> np.ndarray:
    return x if gamma == 1.0 else np.power(x, gamma, dtype=np.float32)


def _from_linear(x: np.ndarray, gamma: float) -> np.ndarray:
    # a blur kernel is a convex combination, so values outside [0, 1] are rounding error only
    x = np.clip(x, 0.0, 1.0)
    return x if gamma == 1.0 else np.power(x, 1.0 / gamma, dtype=np.float32)


def _kernel_pair(job: Job, opts: Options, rng: np.random.Generator):
    from ..blur.convolve import blur

    kind = opts.kind if opts.kind != "mixed" else KINDS[int(rng.integers(len(KINDS)))]
    size = int(rng.choice(opts.sizes))
    kernel = make_kernel(kind, size, rng)
    path = job.sources[0]
    photo = _read(path, opts.grey)
    if opts.crop is None:
        sharp = photo
        blurred = blur(_to_linear(photo, opts.gamma), kernel, boundary="reflect")
    else:
        w, h = opts.crop
        need = (h + size - 1, w + size - 1)
        y, x = _crop_origin(photo.shape[:2], need, rng, path,
                            f"crop enlarged by the {size}x{size} kernel")
        region = photo[y:y + need[0], x:x + need[1]]
        top, left = size - 1 - size // 2, size - 1 - size // 2
        sharp = np.ascontiguousarray(region[top:top + h, left:left + w])
        blurred = blur(_to_linear(region, opts.gamma), kernel, boundary="valid")
    return sharp, _from_linear(blurred, opts.gamma), kernel


def _frames_pair(job: Job, opts: Options, rng: np.random.Generator):
    from ..blur.frames import average_frames

    frames = [_read(p, opts.grey) for p in job.sources]
    for p, f in zip(job.sources[1:], frames[1:]):
        if f.shape != frames[0].shape:
            raise ImageError(f"{p}: frame is {f.shape[1]}x{f.shape[0]}x{f.shape[2]} but "
                             f"{job.sources[0].name} is {frames[0].shape[1]}x{frames[0].shape[0]}"
                             f"x{frames[0].shape[2]}; frames of a clip must match")
    stack = np.stack(frames)
    if opts.crop is not None:
        w, h = opts.crop
        y, x = _crop_origin(stack.shape[1:3], (h, w), rng, job.sources[0], "crop")
        stack = np.ascontiguousarray(stack[:, y:y + h, x:x + w])
    blurred, sharp = average_frames(stack, gamma=opts.gamma)
    return sharp, np.clip(blurred, 0.0, 1.0), None


def _degrade(blurred: np.ndarray, opts: Options, rng: np.random.Generator) -> np.ndarray:
    from ..blur.noise import add_gaussian_noise, jpeg_compress

    if opts.noise > 0:
        blurred = add_gaussian_noise(blurred, opts.noise, rng, clip=True)
    if opts.jpeg is not None:
        blurred = jpeg_compress(blurred, opts.jpeg)
    return blurred


# --------------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..io.image import write_image
    from ..io.kernel import write_kernel

    opts = _options(args)
    sharp_dir, out_dir = Path(args.sharp_dir), Path(args.out_dir)
    _check_folders(sharp_dir, out_dir)
    jobs = (_frame_jobs(sharp_dir, opts.per_blur, opts.count) if opts.frames
            else _photo_jobs(sharp_dir, opts.count))

    done: list[str] = []
    with tqdm(total=len(jobs), desc="synth", unit="pair", file=sys.stderr) as bar:
        for i, job in enumerate(jobs):
            rng = np.random.default_rng([opts.seed, i])
            pair_files: list[Path] = []
            try:
                make = _frames_pair if opts.frames else _kernel_pair
                sharp, blurred, kernel = make(job, opts, rng)
                blurred = _degrade(blurred, opts, rng)
                if kernel is not None:
                    pair_files += write_kernel(out_dir / "kernels" / f"{job.name}.npy", kernel)
                pair_files.append(write_image(out_dir / "sharp" / f"{job.name}.png", sharp))
                pair_files.append(write_image(out_dir / "blur" / f"{job.name}.png", blurred))
            except BaseException as exc:
                for f in pair_files:  # no half-written pair is left behind
                    f.unlink(missing_ok=True)
                if isinstance(exc, DeblurkitError):
                    written = _written(done, len(jobs), out_dir, opts.frames)
                    raise type(exc)(f"{exc}; {written}") from None
                raise
            done.append(job.name)
            bar.update(1)
    print(f"synth: wrote {len(done)} pairs to {out_dir}", file=sys.stderr)
    return 0


def _written(done: list[str], total: int, out_dir: Path, frames: bool) -> str:
    """The part of an error line that says which pairs were written before it."""
    if not done:
        return f"stopped before writing any of the {total} pairs"
    shown = ", ".join(done[:5]) + (f", ... ({len(done) - 5} more)" if len(done) > 5 else "")
    folders = "blur/ and sharp/" if frames else "blur/, sharp/ and kernels/"
    return (f"stopped after writing {len(done)} of {total} pairs to {out_dir} "
            f"({folders} of: {shown})")
