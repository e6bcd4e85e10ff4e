"""Read and write blur kernels: exact ``.npy`` files and 16-bit grey PNG images.

A kernel is a true convolution kernel (``docs/CONVENTIONS.md``): numpy float32 ``(kh, kw)``,
finite, non-negative, summing to 1, in ``scipy.signal.convolve`` orientation. Validation is
:func:`deblurkit.blur.kernels.validate_kernel`.

* ``.npy`` holds the kernel exactly and must already sum to 1 (within 1e-3); it is never
  renormalised, so a wrong file is reported rather than quietly "fixed".
* An image (``.png`` and the other formats of :mod:`deblurkit.io.image`) holds the kernel scaled
  so that its largest entry is white; it is divided by its sum after reading. Colour images are
  made grey by the mean of R, G, B. ``write_kernel`` writes such a PNG at 16 bits and the exact
  kernel size, so reading it back gives the kernel to within 1/65535 of its maximum.
"""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import KernelError
from .atomic import atomic_path
from .image import IMAGE_EXTENSIONS, read_image, write_image

#: the view image written beside a kernel is at least this many pixels on its longer side
VIEW_MIN_SIZE = 128


def _validate(kernel: np.ndarray, name: str) -> np.ndarray:
    from ..blur.kernels import validate_kernel  # imported lazily: deblurkit.io stays light

    return validate_kernel(kernel, name)


def read_kernel(path: str | os.PathLike) -> np.ndarray:
    """Read a blur kernel file; return float32 ``(kh, kw)``, non-negative, summing to 1.

    ``path``: ``.npy`` (loaded with ``allow_pickle=False``; must be a 2-D real array summing to 1
    within 1e-3) or an image (grey, or colour averaged over R, G, B; an alpha channel must be fully
    opaque), normalised to sum 1.

    Raises :class:`KernelError` naming the file for a missing/unreadable ``.npy``, a pickled or
    non-array file, a kernel that is not 2-D, empty, non-finite, negative, all zero, or (``.npy``)
    not summing to 1; :class:`ImageError` for an unreadable image file.
    """
    path = Path(path)
    name = f"kernel {path}"
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _validate(_load_npy(path, name), name)
    if suffix not in IMAGE_EXTENSIONS:
        raise KernelError(f"{name}: unknown kernel file extension {path.suffix!r}; use .npy or "
                          f"an image ({', '.join(IMAGE_EXTENSIONS)})")
    pixels = read_image(path).pixels
    if pixels.shape[2] == 4:
        alpha = pixels[..., 3]
        if float(alpha.min()) < 1.0:
            raise KernelError(f"{name}: has a transparent alpha channel (min alpha "
                              f"{float(alpha.min()):.4g}); store kernels as grey images")
        pixels = pixels[..., :3]
    grey = pixels.astype(np.float64).mean(axis=2)
    total = float(grey.sum())
    if total <= 0.0:
        raise KernelError(f"{name}: all {grey.size} pixels are black (sum 0); not a blur kernel")
    return _validate(grey / total, name)


def _load_npy(path: Path, name: str) -> np.ndarray:
    if path.is_dir():
        raise KernelError(f"{name}: is a directory, not a .npy file")
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise KernelError(f"{name}: no such file") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise KernelError(f"{name}: not a readable .npy array ({detail})") from None
    if not isinstance(arr, np.ndarray):  # e.g. an .npz archive saved under a .npy name
        arr_type = type(arr).__name__
        if hasattr(arr, "close"):
            arr.close()
        raise KernelError(f"{name}: holds a {arr_type}, not a single array")
    return arr


def _stem(path: Path) -> Path:
    return path.with_suffix("") if path.suffix.lower() in (".npy", ".png") else path


def write_kernel(path: str | os.PathLike, kernel: np.ndarray) -> list[Path]:
    """Write a kernel as ``<stem>.npy``, ``<stem>.png`` and ``<stem>_view.png``; return the 3 paths.

    ``path``: ``<stem>``, ``<stem>.npy`` or ``<stem>.png``. ``kernel``: numpy ``(kh, kw)``, a true
    kernel (finite, non-negative, sum 1 within 1e-3; checked, not renormalised).

    * ``<stem>.npy``: the float32 kernel, exact (``read_kernel`` returns it bit for bit).
    * ``<stem>.png``: 16-bit grey, same ``kh x kw`` size, scaled so the maximum is 65535; readable
      by :func:`read_kernel`.
    * ``<stem>_view.png``: 8-bit grey, scaled so the maximum is white and enlarged by an integer
      nearest-neighbour factor to at least ``VIEW_MIN_SIZE`` pixels on its longer side, for viewing.

    Every file is written atomically. Raises :class:`KernelError` for a bad kernel or an
    unwritable ``.npy`` and :class:`ImageError` for an unwritable PNG.
    """
    k = _validate(kernel, "kernel")
    stem = _stem(Path(path))
    npy = Path(f"{stem}.npy")
    png = Path(f"{stem}.png")
    view = Path(f"{stem}_view.png")
    scaled = k.astype(np.float64) / float(k.max())
    factor = max(1, math.ceil(VIEW_MIN_SIZE / max(k.shape)))
    enlarged = np.repeat(np.repeat(scaled, factor, axis=0), factor, axis=1)

    for target in (npy, png, view):
        if target.is_dir():
            raise KernelError(f"kernel output {target}: is a directory")
    try:
        with atomic_path(npy) as tmp, open(tmp, "wb") as fh:
            np.save(fh, k, allow_pickle=False)
    except OSError as exc:
        raise KernelError(f"kernel output {npy}: cannot write ({exc.strerror or exc})") from None
    write_image(png, scaled, bit_depth=16)
    write_image(view, enlarged, bit_depth=8)
    return [npy, png, view]
