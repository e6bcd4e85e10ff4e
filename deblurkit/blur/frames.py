"""GoPro-style blur by averaging consecutive video frames (survey §III-C; Nah et al. 2017).

Nah et al. built the GoPro dataset by averaging 7 to 13 consecutive frames of 240 fps video (the
survey cites 7-23) and taking the middle frame as the sharp ground truth. Averaging is done in
linear light, since the sensor integrates photons, not gamma-encoded values::

    B = g^-1( 1/N sum_i g(S_i) ),   sharp = S_{N // 2},   g(x) = x ** gamma (gamma ~ 2.2)

or with a measured camera response: ``g`` = the inverse CRF, ``g^-1`` = the CRF.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from ..errors import ConfigError, ImageError

Curve = Callable[[torch.Tensor], torch.Tensor]


def _as_tensor(frames: object) -> tuple[torch.Tensor, str]:
    """Validate frames; return a (B, N, C, H, W) tensor and the input layout."""
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4:
            raise ImageError(
                f"frames: expected a numpy array (N, H, W, C), got shape {frames.shape}"
            )
        if not np.issubdtype(frames.dtype, np.floating):
            raise ImageError(f"frames: expected float frames in [0, 1], got dtype {frames.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)[None]
        layout = "numpy"
    elif isinstance(frames, torch.Tensor):
        if frames.ndim == 4:
            t, layout = frames[None], "torch4"
        elif frames.ndim == 5:
            t, layout = frames, "torch5"
        else:
            raise ImageError(
                "frames: expected a tensor (N, C, H, W) or (B, N, C, H, W), "
                f"got {tuple(frames.shape)}"
            )
        if not t.is_floating_point():
            raise ImageError(f"frames: expected float frames in [0, 1], got dtype {t.dtype}")
    else:
        raise ImageError(
            f"frames: expected a numpy array (N, H, W, C) or a tensor (N, C, H, W), "
            f"got {type(frames).__name__}"
        )
    if min(t.shape) == 0:
        raise ImageError(f"frames: empty, shape {tuple(frames.shape)}")
    bad = int((~torch.isfinite(t)).sum())
    if bad:
        raise ImageError(f"frames: has {bad} non-finite values (NaN or inf)")
    return t, layout


def _from_tensor(t: torch.Tensor, layout: str) -> np.ndarray | torch.Tensor:
    """(B, C, H, W) result back to the input's convention."""
    if layout == "numpy":
        return np.ascontiguousarray(t[0].permute(1, 2, 0).numpy(), dtype=np.float32)
    return t


def average_frames(
    frames: np.ndarray | torch.Tensor, *, gamma: float | None = 2.2,
    crf: tuple[Curve, Curve] | None = None,
) -> tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor]:
    """Blurred/sharp pair from an odd number of consecutive frames (survey §III-C).

    ``blurred = g^-1(mean_i g(frame_i))``, ``sharp = frame[N // 2]``.

    Args:
        frames: numpy (N, H, W, C) float in [0, 1], or torch (N, C, H, W) (one clip) or
            (B, N, C, H, W) (a batch of clips), float in [0, 1]. N must be odd.
        gamma: ``g(x) = x ** gamma`` (> 0); None averages the values as they are.
        crf: ``(to_linear, to_display)`` pair of callables taking and returning torch tensors
            (the inverse camera response and the response; numpy frames are passed as float64
            tensors), used instead of the gamma curve; ``gamma`` is then unused.
            ``to_display(to_linear(x))`` should be ``x``.

    Returns:
        ``(blurred, sharp)``: numpy (H, W, C) float32 for numpy input, else tensors (B, C, H, W)
        (B = 1 for a single clip) of the frames' dtype.
    """
    t, layout = _as_tensor(frames)
    n = t.shape[1]
    if n % 2 == 0:
        raise ImageError(
            f"frames: N={n} frames; need an odd number so the middle frame is the sharp reference"
        )
    if layout == "numpy":
        t = t.to(torch.float64)  # accumulate in double, return float32
    if crf is not None:
        if not (isinstance(crf, (tuple, list)) and len(crf) == 2 and all(callable(f) for f in crf)):
            raise ConfigError(f"crf={crf!r}: expected a pair (to_linear, to_display) of callables")
        to_linear, to_display = crf
        lin = to_linear(t)
        if not isinstance(lin, torch.Tensor) or lin.shape != t.shape:
            got = f"{type(lin).__name__} {tuple(getattr(lin, 'shape', ()))}"
            raise ConfigError(f"crf: to_linear returned {got}; expected a tensor {tuple(t.shape)}")
        blurred = to_display(lin.mean(dim=1))
    elif gamma is not None:
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) \
                or not math.isfinite(gamma) or gamma <= 0:
            raise ConfigError(
                f"gamma={gamma!r}: expected a number > 0, or None for a plain average"
            )
        low, high = float(t.min()), float(t.max())
        if low < 0 or high > 1:
            raise ImageError(
                f"frames: values must be in [0, 1] for gamma {gamma}, "
                f"got min {low:.4g} max {high:.4g}"
            )
        blurred = (t ** gamma).mean(dim=1) ** (1.0 / gamma)
    else:
        blurred = t.mean(dim=1)
    sharp = t[:, n // 2]
    if layout != "numpy":
        sharp = sharp.clone()
    return _from_tensor(blurred, layout), _from_tensor(sharp, layout)


def interpolate_frames(frames: np.ndarray | torch.Tensor, factor: int) -> np.ndarray | torch.Tensor:
    """Insert ``factor - 1`` linearly blended frames between each pair of consecutive frames.

    A crude stand-in for the learned frame interpolation real pipelines use to turn low-frame-rate
    video (e.g. 25 fps) into smooth blur: a cross-fade does not move anything, it only replaces a
    few hard ghost copies by many fainter ones. N frames give ``(N - 1) factor + 1`` frames (odd N
    stays odd, and the middle frame is still the original middle frame). Blends the values as
    given (no gamma).

    Args:
        frames: numpy (N, H, W, C) float, or torch (N, C, H, W) / (B, N, C, H, W) float.
        factor: positive int; 1 returns a copy.

    Returns:
        The frames, same layout and dtype (numpy: float32).
    """
    t, layout = _as_tensor(frames)
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ConfigError(f"factor={factor!r}: expected a positive integer")
    factor = int(factor)
    n = t.shape[1]
    if n == 1 or factor == 1:
        out = t.clone()
    else:
        w = torch.arange(factor, dtype=t.dtype, device=t.device) / factor      # (factor,)
        w = w.view(1, 1, factor, 1, 1, 1)
        a, b = t[:, :-1, None], t[:, 1:, None]                                 # (B, N-1, 1, ...)
        blends = a * (1 - w) + b * w                                           # (B, N-1, f, ...)
        out = torch.cat([blends.flatten(1, 2), t[:, -1:]], dim=1)
    if layout == "numpy":
        return np.ascontiguousarray(out[0].permute(0, 2, 3, 1).numpy(), dtype=np.float32)
    return out[0] if layout == "torch4" else out
