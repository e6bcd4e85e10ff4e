"""Run an image-to-image function on overlapping tiles and blend them without seams.

A photo too large for memory is cut into overlapping tiles; each tile goes through ``fn`` alone and
the outputs are blended back with a smooth window whose weights are normalised, so that

- for a pointwise ``fn`` (identity, gamma, any per-pixel map) the result equals ``fn(x)`` up to
  float rounding (each output pixel is a weighted mean of equal values), and
- for a convolutional ``fn`` whose receptive-field radius is at most ``overlap // 4`` the result
  equals the untiled ``fn(x)`` (up to rounding), because pixels within that distance of an
  *interior* tile edge get weight exactly zero: only outputs computed from complete context are
  used. Pixels at the image border keep full weight (the untiled call sees the same border).

The window along each axis of a tile is (for an interior edge with overlap ``o``)::

    0 ... 0 | raised-cosine ramp sin^2(pi/2 * (i + 0.5) / r) | 1 ... 1
    <- m -> <-------------------- r ----------------------->

with margin ``m = o // 4`` and ramp length ``r = o - 2m``. Two neighbours whose tiles overlap by
exactly ``o`` have complementary ramps (``sin^2 + cos^2 = 1``); where the last tile of a row is
shifted back to end at the image edge the overlap is larger and the normalisation by the summed
weights keeps the blend exact. Networks with a global component (e.g. NAFNet's simplified channel
attention, a global average pool) cannot be tiled exactly; the smooth ramps keep any difference
between neighbouring tiles from showing as a seam.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

from ..errors import ConfigError

TensorFn = Callable[[torch.Tensor], torch.Tensor]

#: ``deblur`` tiles automatically when an image has more pixels than this (about 1.5 megapixels,
#: e.g. 1500 x 1000); a 1280 x 720 photo runs in one call. Keeps peak memory of a width-32 NAFNet
#: in fp32 well under 2 GB on any photo size.
AUTO_TILE_PIXELS = 1_500_000

#: Default overlap between neighbouring tiles, pixels.
DEFAULT_OVERLAP = 48

#: Tile sides chosen by :func:`auto_tile` are multiples of this (U-Nets pad to a multiple of
#: 2^levels inside; a multiple of 32 avoids wasted padding for up to 5 levels).
TILE_MULTIPLE = 32


def tile_pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    """``value`` (an int or a pair of ints) as ``(h, w)``; :class:`ConfigError` naming ``name``."""
    if isinstance(value, (int,)) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        pair = (int(value[0]), int(value[1]))
    else:
        raise ConfigError(f"{name}: expected an int or a pair of ints, got {value!r}")
    return pair


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)`` with at least ``overlap``.

    The stride is ``tile - overlap``; the last tile is shifted back to end exactly at ``length``.
    ``tile >= length`` gives the single start ``[0]``.
    """
    if tile >= length:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def _ramp(n: int, overlap: int, *, rising_edge: bool, falling_edge: bool,
          dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """1-D window of length ``n``: zero margin and raised-cosine ramp at each interior edge."""
    w = torch.ones(n, dtype=torch.float64)
    margin = overlap // 4
    ramp_len = overlap - 2 * margin
    i = torch.arange(ramp_len, dtype=torch.float64)
    up = torch.sin(0.5 * math.pi * (i + 0.5) / ramp_len) ** 2 if ramp_len > 0 else i
    if rising_edge:
        w[:margin] = 0.0
        w[margin:margin + ramp_len] *= up
    if falling_edge:
        w[n - margin:] = 0.0
        w[n - margin - ramp_len:n - margin] *= up.flip(0)
    return w.to(dtype=dtype, device=device)


def validate_tiling(tile: int | Sequence[int], overlap: int) -> tuple[tuple[int, int], int]:
    """Check ``tile`` (int or ``(th, tw)``) and ``overlap``; return them normalised.

    Raises :class:`ConfigError` naming the argument when ``overlap < 0`` or a tile side is not
    greater than ``2 * overlap`` (each tile must keep an interior beyond both blending zones).
    """
    th, tw = tile_pair(tile, "tile")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
        raise ConfigError(f"overlap: expected an int >= 0, got {overlap!r}")
    for side in (th, tw):
        if side <= 2 * overlap:
            raise ConfigError(
                f"tile: side {side} must be greater than 2 * overlap = {2 * overlap} "
                f"(got tile={tile!r}, overlap={overlap})"
            )
    return (th, tw), overlap


def run_tiled(fn: TensorFn, x: torch.Tensor, *, tile: int | Sequence[int], overlap: int,
              tiles_per_batch: int = 1) -> torch.Tensor:
    """Apply ``fn`` to overlapping tiles of ``x`` and blend the outputs with a normalised window.

    Args:
        fn: maps a float tensor ``(B, C, h, w)`` to ``(B, C', h, w)`` (same spatial size; ``C'``
            may differ from ``C``). Called on tiles of size ``min(tile, H) x min(tile, W)``.
        x: ``(B, C, H, W)`` float tensor, any device; values are passed to ``fn`` unchanged.
        tile: tile side (int) or ``(tile_h, tile_w)``, each ``> 2 * overlap``. When both sides
            cover the image this is simply one call ``fn(x)``.
        overlap: pixels shared by neighbouring tiles (>= 0). Outputs within ``overlap // 4`` of an
            interior tile edge are discarded; the next ``overlap - 2 * (overlap // 4)`` pixels are
            cross-faded with a raised-cosine ramp (see the module docstring).
        tiles_per_batch: how many tiles (of the same image) ``fn`` receives per call, stacked along
            the batch axis; 1 keeps memory lowest.

    Returns:
        ``(B, C', H, W)`` tensor with the dtype of ``fn``'s output on ``x``'s device.
    """
    if x.ndim != 4:
        raise ConfigError(f"x: expected a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
    if isinstance(tiles_per_batch, bool) or not isinstance(tiles_per_batch, int) or tiles_per_batch < 1:
        raise ConfigError(f"tiles_per_batch: expected an int >= 1, got {tiles_per_batch!r}")
    (th, tw), overlap = validate_tiling(tile, overlap)
    b, _, h, w = x.shape
    if th >= h and tw >= w:
        return fn(x)
    th, tw = min(th, h), min(tw, w)
    ys, xs = tile_starts(h, th, overlap), tile_starts(w, tw, overlap)
    boxes = [(y0, x0) for y0 in ys for x0 in xs]

    out: torch.Tensor | None = None
    weight_sum: torch.Tensor | None = None
    for first in range(0, len(boxes), tiles_per_batch):
        group = boxes[first:first + tiles_per_batch]
        batch = torch.cat([x[:, :, y0:y0 + th, x0:x0 + tw] for y0, x0 in group], dim=0)
        result = fn(batch)
        if result.ndim != 4 or result.shape[0] != batch.shape[0] or result.shape[-2:] != batch.shape[-2:]:
            raise ConfigError(
                f"fn: must return (B, C', {th}, {tw}) for a ({batch.shape[0]}, C, {th}, {tw}) tile, "
                f"got {tuple(result.shape)}"
            )
        if out is None:
            out = torch.zeros((b, result.shape[1], h, w), dtype=result.dtype, device=x.device)
            weight_sum = torch.zeros((1, 1, h, w), dtype=result.dtype, device=x.device)
        for k, (y0, x0) in enumerate(group):
            wy = _ramp(th, overlap, rising_edge=y0 > 0, falling_edge=y0 + th < h,
                       dtype=result.dtype, device=x.device)
            wx = _ramp(tw, overlap, rising_edge=x0 > 0, falling_edge=x0 + tw < w,
                       dtype=result.dtype, device=x.device)
            win = wy[:, None] * wx[None, :]
            piece = result[k * b:(k + 1) * b].to(x.device)
            out[:, :, y0:y0 + th, x0:x0 + tw] += piece * win
            weight_sum[:, :, y0:y0 + th, x0:x0 + tw] += win
    assert out is not None and weight_sum is not None
    return out / weight_sum


def auto_tile(h: int, w: int, max_pixels: int = AUTO_TILE_PIXELS,
              overlap: int = DEFAULT_OVERLAP) -> tuple[int, int] | None:
    """Pick a tile ``(tile_h, tile_w)`` of at most ``max_pixels`` pixels for an ``h x w`` image.

    Returns ``None`` when ``h * w <= max_pixels`` (no tiling needed). Otherwise the largest square
    side ``s`` (a multiple of :data:`TILE_MULTIPLE`) with ``s * s <= max_pixels`` fixes the number
    of tiles per axis, ``n = ceil((L - overlap) / (s - overlap))``, and each side is then shrunk
    to the smallest multiple of :data:`TILE_MULTIPLE` that still covers the axis with ``n`` tiles,
    ``ceil((L + (n - 1) * overlap) / n)``: balanced tiles waste less work on duplicated overlap
    than a fixed side would (e.g. 4000 x 3000 with 1.5 MP tiles: 12 tiles of 1024 x 1024 instead of
    12 of 1216 x 1216).
    """
    for name, value in (("h", h), ("w", w), ("max_pixels", max_pixels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name}: expected an int >= 1, got {value!r}")
    if h * w <= max_pixels:
        return None
    side = (math.isqrt(max_pixels) // TILE_MULTIPLE) * TILE_MULTIPLE
    if side <= 2 * overlap:
        raise ConfigError(
            f"overlap: {overlap} is too large for automatic tiles of side {side} "
            f"(max_pixels={max_pixels}); a tile side must exceed 2 * overlap"
        )

    def balanced(length: int) -> int:
        if length <= side:
            return length
        n = math.ceil((length - overlap) / (side - overlap))
        need = math.ceil((length + (n - 1) * overlap) / n)
        return min(side, math.ceil(need / TILE_MULTIPLE) * TILE_MULTIPLE)

    return balanced(h), balanced(w)
