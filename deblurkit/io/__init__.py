"""Image and kernel files: exact 8/16-bit reading and atomic writing, one-line errors.

* :func:`read_image` / :func:`read_array` -- PNG, JPEG, TIFF, BMP, WebP -> float32 ``(H, W, C)``
  in [0, 1] (C = 1, 3 or 4), upright, fully decoded; :class:`LoadedImage` keeps bit depth,
  format and ICC profile.
* :func:`write_image` -- float pixels in [0, 1] -> file, format from the extension, 8 or 16 bits,
  atomic.
* :func:`to_tensor` / :func:`from_tensor` -- ``(H, W, C)`` numpy <-> ``(1, C, H, W)`` torch.
* :func:`read_kernel` / :func:`write_kernel` -- blur kernels as ``.npy`` (exact) or grey images.
* :func:`atomic_path` -- the context manager every file write goes through.
"""

from __future__ import annotations

from .atomic import atomic_path
from .image import (
    IMAGE_EXTENSIONS,
    LoadedImage,
    from_tensor,
    read_array,
    read_image,
    to_tensor,
    write_image,
)
from .kernel import read_kernel, write_kernel

__all__ = [
    "IMAGE_EXTENSIONS",
    "LoadedImage",
    "atomic_path",
    "from_tensor",
    "read_array",
    "read_image",
    "read_kernel",
    "to_tensor",
    "write_image",
    "write_kernel",
]
