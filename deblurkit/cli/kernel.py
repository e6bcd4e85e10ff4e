"""``deblurkit kernel IMAGE -o OUT [--model NAME]``: estimate the blur of a photo and write it.

- ``IMAGE``: PNG/JPEG/TIFF/BMP/WebP, grey, RGB or RGBA (alpha ignored), 8 or 16 bits.
- ``--model``: a kernel estimator (``deblurkit.estimation.list_estimators()``; default
  ``classical``, the L0 blind baseline of :mod:`deblurkit.estimation.classical`).
  ``--kernel-size N`` is passed to it as ``kernel_size``.
- Uniform estimators (``estimate_kernel``) write, via :func:`deblurkit.io.write_kernel`::

      OUT.npy        the kernel, float32, true convolution orientation (scipy.signal.convolve),
                     summing to 1: ``deblurkit deconv --kernel OUT.npy`` or
                     ``deblurkit.blur.blur(sharp, numpy.load("OUT.npy"))`` use it as is
      OUT.png        16-bit grey, the kernel scaled so its maximum is white (readable as a kernel)
      OUT_view.png   the same, enlarged for viewing

- Non-uniform estimators (``estimate_motion_field``) write::

      OUT_uv.npy     float32 (2, H, W): u (pixels, to the right) and v (pixels, down)
      OUT_field.png  the field as a picture: hue = blur orientation (mod 180 degrees, since
                     (u, v) and (-u, -v) blur alike), brightness = length (white = none), with
                     black segments showing the blur on a grid

``OUT`` is a stem (``.npy`` / ``.png`` suffixes are stripped). Every file is written atomically;
an output path equal to ``IMAGE`` is refused before any work. A bad image or option is reported on
one line (exit 2).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..errors import ConfigError, ImageError

HELP = "estimate the blur kernel or motion field of a photo"

#: Grid step of the segments drawn on OUT_field.png, in pixels of the picture.
ARROW_STEP = 24


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", type=Path, metavar="IMAGE", help="blurred photo")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="OUT",
                        help="output stem: writes OUT.npy, OUT.png, OUT_view.png (kernel) or "
                             "OUT_uv.npy, OUT_field.png (motion field)")
    parser.add_argument("--model", default="classical", metavar="NAME",
                        help="kernel estimator (default: %(default)s)")
    parser.add_argument("--kernel-size", type=int, default=None, metavar="N",
                        help="side of the estimated kernel (uniform estimators; odd)")


def _stem(path: Path) -> Path:
    return path.with_suffix("") if path.suffix.lower() in (".npy", ".png") else path


def output_paths(stem: Path, kind: str) -> list[Path]:
    """The files ``deblurkit kernel`` writes for an estimator of ``kind``."""
    if kind == "uniform":
        return [Path(f"{stem}.npy"), Path(f"{stem}.png"), Path(f"{stem}_view.png")]
    return [Path(f"{stem}_uv.npy"), Path(f"{stem}_field.png")]


def run(args: argparse.Namespace) -> int:
    from ..estimation import create_estimator, list_estimators
    from ..io import read_image, write_kernel

    options = {}
    if args.kernel_size is not None:
        options["kernel_size"] = args.kernel_size
    if args.model not in list_estimators():
        raise ConfigError(f"--model {args.model!r}: not a kernel estimator; choose one of: "
                          f"{', '.join(list_estimators())}")
    estimator = create_estimator(args.model, **options)
    kind = getattr(estimator, "kind", None)
    if kind not in ("uniform", "nonuniform"):
        raise ConfigError(f"--model {args.model!r}: estimator kind {kind!r} is neither "
                          "'uniform' nor 'nonuniform'")
    stem = _stem(args.output)
    targets = output_paths(stem, kind)
    source = args.image.resolve()
    for target in targets:
        if target.resolve() == source:
            raise ConfigError(f"-o {args.output}: would overwrite the input {args.image} with "
                              f"{target}; choose another OUT")
        if target.is_dir():
            raise ConfigError(f"-o {args.output}: {target} is a directory")

    pixels = read_image(args.image).pixels
    colour = pixels[..., :3] if pixels.shape[2] == 4 else pixels
    start = time.perf_counter()
    try:
        if kind == "uniform":
            result = estimator.estimate_kernel(colour)
        else:
            result = estimator.estimate_motion_field(colour)
    except ImageError as exc:
        raise ImageError(f"{args.image}: {exc}") from None
    seconds = time.perf_counter() - start

    if kind == "uniform":
        written = write_kernel(stem, np.asarray(result, dtype=np.float32))
        k = np.asarray(result)
        print(f"{written[0]}: {args.model} kernel {k.shape[0]}x{k.shape[1]}, "
              f"{int(np.count_nonzero(k))} non-zero entries, {seconds:.2f} s "
              f"(also {written[1].name}, {written[2].name})")
        return 0
    u, v = (np.asarray(a, dtype=np.float32) for a in result)
    h, w = colour.shape[:2]
    if u.shape != (h, w) or v.shape != (h, w):
        raise ConfigError(f"--model {args.model!r}: returned a field of shapes {u.shape}, "
                          f"{v.shape} for a {h}x{w} image")
    write_motion_field(stem, u, v)
    length = np.hypot(u, v)
    print(f"{targets[0]}: {args.model} motion field {w}x{h}, length median "
          f"{float(np.median(length)):.1f} px, max {float(length.max()):.1f} px, {seconds:.2f} s "
          f"(also {targets[1].name})")
    return 0


def write_motion_field(stem: str | Path, u: np.ndarray, v: np.ndarray) -> list[Path]:
    """Write ``<stem>_uv.npy`` (float32 ``(2, H, W)``) and ``<stem>_field.png`` (see the module
    docstring), each atomically; return both paths."""
    from ..io import atomic_path, write_image

    npy, png = output_paths(_stem(Path(stem)), "nonuniform")
    field = np.stack([u, v]).astype(np.float32)
    with atomic_path(npy) as tmp, open(tmp, "wb") as fh:
        np.save(fh, field, allow_pickle=False)
    write_image(png, motion_field_picture(u, v), bit_depth=8)
    return [npy, png]


def motion_field_picture(u: np.ndarray, v: np.ndarray, step: int = ARROW_STEP) -> np.ndarray:
    """Render a motion field ``(H, W)`` x 2 as float32 RGB ``(H, W, 3)`` in [0, 1].

    Colour: hue = orientation of ``(u, v)`` modulo 180 degrees (``(u, v)`` and ``(-u, -v)`` are
    the same blur), saturation = length / max length (white where there is no motion). Black
    segments of the local blur (from ``p - (u, v)/2`` to ``p + (u, v)/2``) are drawn every
    ``step`` pixels.
    """
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    length = np.hypot(u, v)
    peak = float(length.max()) if length.size else 0.0
    sat = length / peak if peak > 0 else np.zeros_like(length)
    hue = np.mod(np.arctan2(v, u), np.pi) / np.pi                 # [0, 1)
    h6 = hue * 6.0
    sector = np.floor(h6).astype(np.int64) % 6
    frac = h6 - np.floor(h6)
    p, q, t = 1 - sat, 1 - sat * frac, 1 - sat * (1 - frac)
    one = np.ones_like(sat)
    table = [(one, t, p), (q, one, p), (p, one, t), (p, q, one), (t, p, one), (one, p, q)]
    rgb = np.zeros(u.shape + (3,), dtype=np.float64)
    for s, (r, g, b) in enumerate(table):
        m = sector == s
        rgb[m, 0], rgb[m, 1], rgb[m, 2] = r[m], g[m], b[m]
    hgt, wid = u.shape
    for y in range(step // 2, hgt, step):
        for x in range(step // 2, wid, step):
            du, dv = u[y, x], v[y, x]
            n = int(np.ceil(max(abs(du), abs(dv)))) * 2 + 1
            ts = np.linspace(-0.5, 0.5, n)
            xs = np.clip(np.rint(x + ts * du).astype(np.int64), 0, wid - 1)
            ys = np.clip(np.rint(y + ts * dv).astype(np.int64), 0, hgt - 1)
            rgb[ys, xs] = 0.0
    return rgb.astype(np.float32)
