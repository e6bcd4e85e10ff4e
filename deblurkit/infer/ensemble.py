"""Geometric self-ensemble ("x8"): average a model over the 8 flips/transposes of its input.

The 8 transforms are the dihedral group of the square (identity, 3 rotations by 90 degrees, and 4
reflections), written as an optional transpose followed by optional horizontal and vertical flips.
The image is transformed, passed through ``fn``, transformed back with the exact inverse and the 8
results are averaged (Lim et al., "Enhanced Deep Residual Networks for Single Image
Super-Resolution", CVPR-W 2017, sec. 3.4). For an ``fn`` that commutes with the transforms (any
pointwise map) the ensemble equals ``fn(x)``. It costs 8 forward passes.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..errors import ConfigError

#: Number of transforms in the self-ensemble.
N_TRANSFORMS = 8


def _check_index(t: int) -> None:
    if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < N_TRANSFORMS:
        raise ConfigError(f"transform index: expected an int in [0, 8), got {t!r}")


def transform(x: torch.Tensor, t: int) -> torch.Tensor:
    """Apply dihedral transform ``t`` in ``0..7`` to the last two axes of ``x`` (``(..., H, W)``).

    Bit 2 of ``t``: transpose H and W (the result is ``(..., W, H)``); then bit 0: flip left-right;
    bit 1: flip up-down. ``t = 0`` is the identity. Any dtype and device.
    """
    _check_index(t)
    if t & 4:
        x = x.transpose(-1, -2)
    if t & 1:
        x = x.flip(-1)
    if t & 2:
        x = x.flip(-2)
    return x


def inverse_transform(y: torch.Tensor, t: int) -> torch.Tensor:
    """Exact inverse of :func:`transform`: ``inverse_transform(transform(x, t), t) == x``."""
    _check_index(t)
    if t & 2:
        y = y.flip(-2)
    if t & 1:
        y = y.flip(-1)
    if t & 4:
        y = y.transpose(-1, -2)
    return y


def self_ensemble(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Mean over the 8 dihedral transforms of ``inverse_transform(fn(transform(x, t)), t)``.

    Args:
        fn: maps ``(B, C, h, w)`` to ``(B, C', h, w)``; must accept both ``H x W`` and ``W x H``.
        x: ``(B, C, H, W)`` float tensor.

    Returns:
        ``(B, C', H, W)``, accumulated in float32 (or float64 when ``fn`` returns float64) and cast
        back to ``fn``'s output dtype.
    """
    if x.ndim != 4:
        raise ConfigError(f"x: expected a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
    total: torch.Tensor | None = None
    out_dtype = None
    for t in range(N_TRANSFORMS):
        y = inverse_transform(fn(transform(x, t)), t)
        if total is None:
            out_dtype = y.dtype
            acc = torch.float64 if y.dtype == torch.float64 else torch.float32
            total = y.to(acc).clone()
        else:
            total += y.to(total.dtype)
    assert total is not None
    return (total / N_TRANSFORMS).to(out_dtype)
