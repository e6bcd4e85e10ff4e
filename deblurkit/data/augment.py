"""Paired geometric augmentation: one crop and one dihedral transform applied alike to every image.

A training pair must stay a pair: the blurred image, its sharp partner (or a stack of sharp frames)
and its blur kernel all undergo the *same* crop, flips and 90-degree rotations. Everything here works
on numpy arrays, before the conversion to tensors:

- images: ``H x W x C`` float32, or stacks ``N x H x W x C`` (the spatial axes are ``(-3, -2)``);
- kernels: ``(kh, kw)`` true convolution kernels (``scipy.signal.convolve`` orientation).

The eight elements of the dihedral group D4 are coded ``code = 4 * f + r`` (``0 <= code < 8``):
first a left-right mirror if ``f == 1``, then ``r`` counter-clockwise quarter turns (``np.rot90``).
Codes 0, 2, 4 and 6 keep the height and width; 1, 3, 5 and 7 swap them.

Convolution is equivariant under these maps when the kernel turns about its centre:
``T(k * x) == T(k) * T(x)``. :func:`dihedral_kernel` therefore first pads an even-sized kernel with
one zero row/column *after* its last entry, which keeps deblurkit's kernel centre
``(kh // 2, kw // 2)`` (docs/CONVENTIONS.md, :func:`deblurkit.blur.convolve.blur`) at the middle
of an odd-sized array, then turns it.

Randomness always comes from a caller's ``np.random.Generator`` (see
:func:`item_rng`), so that an item's augmentation depends only on ``(seed, epoch, index)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

from ..errors import ConfigError, ImageError

SHAPE_KEEPING_CODES = (0, 2, 4, 6)
ALL_CODES = tuple(range(8))


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one dataset item: derived only from ``(seed, epoch, index)``.

    Uses ``np.random.SeedSequence([seed, epoch, index])``, so the same item draws the same numbers
    whatever the number of DataLoader workers or the order in which items are asked for.
    All three must be non-negative integers.
    """
    for arg, value in (("seed", seed), ("epoch", epoch), ("index", index)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ConfigError(f"{arg}: expected a non-negative integer, got {value!r}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), int(index)]))


def parse_size(value, name: str = "crop") -> tuple[int, int] | None:
    """``None``, a positive int ``s`` (square ``s x s``) or a pair ``(h, w)`` -> ``(h, w)``/``None``."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value), int(value))
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
        and all(v > 0 for v in value)
    ):
        return int(value[0]), int(value[1])
    raise ConfigError(
        f"{name}: expected None, a positive int or a pair (h, w) of positive ints, got {value!r}")


def crop_box(
    height: int, width: int, size: tuple[int, int], rng: np.random.Generator | None = None,
    what: str = "image",
) -> tuple[int, int]:
    """Top-left corner ``(top, left)`` of a ``size = (h, w)`` window inside a ``height x width`` image.

    ``rng=None`` centres the window (``top = (height - h) // 2``); otherwise the corner is uniform
    over all windows that fit (two draws: ``top`` then ``left``). An image smaller than the window
    raises :class:`ImageError` naming ``what``.
    """
    h, w = size
    if h > height or w > width:
        raise ImageError(f"{what}: {height}x{width} is smaller than the crop {h}x{w}")
    if rng is None:
        return (height - h) // 2, (width - w) // 2
    top = int(rng.integers(0, height - h + 1))
    left = int(rng.integers(0, width - w + 1))
    return top, left


def dihedral(x: np.ndarray, code: int, axes: tuple[int, int] = (-3, -2)) -> np.ndarray:
    """Apply dihedral element ``code`` (see module docstring) to the two spatial ``axes`` of ``x``.

    ``x``: any numpy array; returns a C-contiguous array of the same dtype (height and width swapped
    for odd codes).
    """
    code = _check_code(code)
    flip, turns = divmod(code, 4)
    if flip:
        x = np.flip(x, axis=axes[1])
    if turns:
        x = np.rot90(x, turns, axes=axes)
    return np.ascontiguousarray(x)


def dihedral_inverse(code: int) -> int:
    """The code of the inverse element: ``dihedral(dihedral(x, c), dihedral_inverse(c)) == x``.

    Mirrors (``code >= 4``) are their own inverse; a pure rotation by ``r`` quarter turns is undone by
    ``4 - r``.
    """
    code = _check_code(code)
    return code if code >= 4 else (4 - code) % 4


def dihedral_torch(x: torch.Tensor, code: int) -> torch.Tensor:
    """:func:`dihedral` on the last two axes of a torch tensor ``(..., H, W)``, e.g. ``(B, C, H, W)``."""
    code = _check_code(code)
    flip, turns = divmod(code, 4)
    if flip:
        x = torch.flip(x, dims=(-1,))
    if turns:
        x = torch.rot90(x, turns, dims=(-2, -1))
    return x


def dihedral_kernel(kernel: np.ndarray, code: int) -> np.ndarray:
    """Turn a blur kernel ``(kh, kw)`` with the image, so that ``T(k * x) == T(k) * T(x)``.

    Even sizes are first padded to odd with one zero row/column after the last entry (keeping
    deblurkit's centre ``(kh // 2, kw // 2)`` in place; the blur it gives is unchanged), so the
    result has odd sides, the input's dtype and the same sum.
    """
    kernel = np.asarray(kernel)
    if kernel.ndim != 2:
        raise ConfigError(f"kernel: expected a 2-D (kh, kw) array, got shape {kernel.shape}")
    pad_rows = 1 if kernel.shape[0] % 2 == 0 else 0
    pad_cols = 1 if kernel.shape[1] % 2 == 0 else 0
    if pad_rows or pad_cols:
        kernel = np.pad(kernel, ((0, pad_rows), (0, pad_cols)))
    return dihedral(kernel, code, axes=(0, 1))


@dataclass(frozen=True)
class PairAugment:
    """One crop and one dihedral transform applied alike to every image (and kernel) of an item.

    Attributes:
        crop: ``(h, w)`` output size, or ``None`` for no crop.
        random_crop: uniform random window if true, centred window if false.
        flip: draw a random dihedral element (mirror + quarter turns). Codes that swap height and
            width (transposes, 90/270-degree turns) are drawn only when the images are square
            after the crop, so that every item of a batch keeps one shape.

    Draw order from the item's generator (fixed, so results are reproducible): crop ``top``, crop
    ``left`` (only for a random crop), then the dihedral code (only if ``flip``).
    """

    crop: tuple[int, int] | None = None
    random_crop: bool = True
    flip: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "crop", parse_size(self.crop))

    @property
    def active(self) -> bool:
        return self.crop is not None or self.flip

    def __call__(
        self,
        images: Mapping[str, np.ndarray],
        rng: np.random.Generator,
        kernels: Mapping[str, np.ndarray] | None = None,
        what: str = "item",
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Crop and turn ``images`` (``H x W x C`` or ``N x H x W x C``, all of one ``H x W``) and
        turn ``kernels`` (``(kh, kw)``) alike. Returns new dicts; inputs are not modified.

        Images of different sizes raise :class:`ImageError` naming ``what`` and the shapes.
        """
        kernels = dict(kernels or {})
        if not images:
            return {}, kernels
        sizes = {key: tuple(a.shape[-3:-1]) for key, a in images.items()}
        if len(set(sizes.values())) != 1:
            listed = ", ".join(f"{k} {h}x{w}" for k, (h, w) in sizes.items())
            raise ImageError(f"{what}: images differ in size ({listed}); a pair must be aligned")
        height, width = next(iter(sizes.values()))
        out = dict(images)
        if self.crop is not None:
            top, left = crop_box(height, width, self.crop, rng if self.random_crop else None, what)
            h, w = self.crop
            out = {k: a[..., top:top + h, left:left + w, :] for k, a in out.items()}
            height, width = h, w
        if self.flip:
            codes = ALL_CODES if height == width else SHAPE_KEEPING_CODES
            code = int(codes[int(rng.integers(0, len(codes)))])
            out = {k: dihedral(a, code) for k, a in out.items()}
            kernels = {k: dihedral_kernel(v, code) for k, v in kernels.items()}
        else:
            out = {k: np.ascontiguousarray(a) for k, a in out.items()}
        return out, kernels


def to_chw(x: np.ndarray) -> torch.Tensor:
    """``H x W x C`` -> ``(C, H, W)``, or ``N x H x W x C`` -> ``(N, C, H, W)``; float32 tensor."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x.transpose(2, 0, 1)
    elif x.ndim == 4:
        x = x.transpose(0, 3, 1, 2)
    else:
        raise ImageError(f"image: expected H x W x C or N x H x W x C, got shape {x.shape}")
    return torch.from_numpy(np.ascontiguousarray(x))


def _check_code(code) -> int:
    if isinstance(code, bool) or not isinstance(code, (int, np.integer)) or not 0 <= code < 8:
        raise ConfigError(f"code: expected a dihedral code 0..7, got {code!r}")
    return int(code)
