"""Peak signal-to-noise ratio (survey eq. 30-31) and the input checks shared by all metrics.

Every metric here is a pure function on batched torch tensors ``(B, C, H, W)`` (any device, no
numpy round trip), so it can run as training-time validation. A numpy image ``(H, W)`` or
``(H, W, C)`` (one image) or ``(B, H, W, C)`` (a batch) is also accepted and converted by
:func:`as_batch`; the result is then a CPU tensor.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import ImageError

__all__ = ["as_batch", "psnr", "psnr_y", "rgb_to_y"]

#: ITU-R BT.601 luma weights for R, G, B in [0, 1] giving studio-range Y (16..235)/255,
#: the "Y channel" convention of super-resolution and deblurring papers (MATLAB ``rgb2ycbcr``).
BT601_WEIGHTS = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)
BT601_OFFSET = 16.0 / 255.0


def as_batch(image: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    """Return ``image`` as a floating torch tensor ``(B, C, H, W)``.

    torch tensors must already be 4-D ``(B, C, H, W)`` and are returned as they are (same device,
    no copy). numpy arrays are read as ``(H, W)``, ``(H, W, C)`` or ``(B, H, W, C)`` (the layout of
    :func:`deblurkit.io.read_image`) and converted to a CPU tensor (float64 stays float64, other
    floats become float32). float16/bfloat16 tensors are upcast to float32. Integer images are
    refused: scale them to [0, 1] floats (or pass ``data_range``) first. ``name`` is the argument
    name used in error messages.
    """
    if isinstance(image, np.ndarray):
        if not (np.issubdtype(image.dtype, np.floating)):
            raise ImageError(f"{name}: numpy dtype {image.dtype}; expected a floating-point array "
                             f"(e.g. pixels / 255 with data_range=1)")
        if image.ndim == 2:
            arr = image[None, :, :, None]
        elif image.ndim == 3:
            arr = image[None]
        elif image.ndim == 4:
            arr = image
        else:
            raise ImageError(f"{name}: numpy shape {image.shape}; expected (H, W), (H, W, C) "
                             f"or (B, H, W, C)")
        dtype = np.float64 if image.dtype == np.float64 else np.float32
        tensor = torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2), dtype=dtype))
        return tensor
    if not isinstance(image, torch.Tensor):
        raise ImageError(f"{name}: {type(image).__name__}; expected a torch.Tensor (B, C, H, W) "
                         f"or a numpy image (H, W, C)")
    if image.ndim != 4:
        raise ImageError(f"{name}: tensor shape {tuple(image.shape)}; expected (B, C, H, W)")
    if not image.is_floating_point():
        raise ImageError(f"{name}: tensor dtype {image.dtype}; expected a floating-point tensor "
                         f"(e.g. pixels.float() / 255 with data_range=1)")
    if image.dtype in (torch.float16, torch.bfloat16):
        image = image.float()
    return image


def check_pair(pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray,
               names: tuple[str, str] = ("pred", "target")) -> tuple[torch.Tensor, torch.Tensor]:
    """Convert ``pred`` and ``target`` with :func:`as_batch` and check they can be compared.

    Both must have the same shape, be non-empty and finite (NaN/inf refused with a count), and
    live on the same device. The pair is returned in a common dtype (float64 if either is).
    """
    p = as_batch(pred, names[0])
    t = as_batch(target, names[1])
    if p.shape != t.shape:
        raise ImageError(f"{names[0]} shape {tuple(p.shape)} != {names[1]} shape {tuple(t.shape)}; "
                         f"the images must have the same size and channels")
    if p.numel() == 0:
        raise ImageError(f"{names[0]}: empty tensor of shape {tuple(p.shape)}")
    if p.device != t.device:
        raise ImageError(f"{names[0]} is on {p.device} but {names[1]} is on {t.device}")
    for name, x in zip(names, (p, t)):
        check_finite(x, name)
    dtype = torch.promote_types(p.dtype, t.dtype)
    return p.to(dtype), t.to(dtype)


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raise :class:`ImageError` naming ``name`` if ``x`` holds NaN or infinite values.

    Fast path: a NaN or infinity makes the sum non-finite, so the element-wise count only runs
    when the sum is not finite (which huge finite values can also cause: then nothing is raised).
    """
    if bool(torch.isfinite(x.sum())):
        return
    n_nan = int(torch.isnan(x).sum())
    n_inf = int(torch.isinf(x).sum())
    if n_nan or n_inf:
        raise ImageError(f"{name}: holds {n_nan} NaN and {n_inf} infinite values; "
                         f"metrics need finite pixels")


def check_data_range(data_range: float) -> float:
    """Return ``data_range`` as a float after checking it is finite and positive."""
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float, np.floating,
                                                                     np.integer)):
        raise ImageError(f"data_range: {data_range!r}; expected a positive number (1.0 for "
                         f"images in [0, 1], 255 for [0, 255])")
    value = float(data_range)
    if not math.isfinite(value) or value <= 0:
        raise ImageError(f"data_range: {data_range!r}; expected a finite positive number")
    return value


def crop(x: torch.Tensor, border: int, name: str = "crop_border") -> torch.Tensor:
    """Drop ``border`` pixels from each side of ``x`` ``(B, C, H, W)`` (a view)."""
    if isinstance(border, bool) or not isinstance(border, (int, np.integer)) or border < 0:
        raise ImageError(f"{name}: {border!r}; expected an integer >= 0")
    border = int(border)
    if border == 0:
        return x
    h, w = x.shape[-2:]
    if 2 * border >= min(h, w):
        raise ImageError(f"{name}: {border} leaves nothing of a {h}x{w} image "
                         f"(needs 2 * {name} < {min(h, w)})")
    return x[..., border:h - border, border:w - border]


def rgb_to_y(rgb: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """BT.601 studio-range luma of an RGB batch: ``(B, 3, H, W)`` -> ``(B, 1, H, W)``.

    ``Y = 16/255 + (65.481 R + 128.553 G + 24.966 B) / 255`` for pixels in [0, 1] (MATLAB
    ``rgb2ycbcr``); for another ``data_range`` the offset scales with it
    (``16/255 * data_range``). Same dtype and device as ``rgb``.
    """
    if rgb.ndim != 4 or rgb.shape[1] != 3:
        raise ImageError(f"rgb: shape {tuple(rgb.shape)}; the Y (BT.601 luma) convention needs "
                         f"RGB images (B, 3, H, W)")
    wr, wg, wb = BT601_WEIGHTS
    y = rgb[:, 0:1] * wr + rgb[:, 1:2] * wg + rgb[:, 2:3] * wb
    return y + BT601_OFFSET * data_range


def psnr(pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray, *,
         data_range: float = 1.0, crop_border: int = 0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB of each image of a batch (survey eq. 30-31).

    ``PSNR = 10 * log10(m**2 / MSE)`` with ``m = data_range`` and ``MSE`` the mean of the squared
    differences over all channels and pixels of one image (eq. 30). The survey's eq. 31 prints
    ``PSNR = m**2 / MSE`` without the logarithm; that is a typo: the standard definition (and the
    one every reported figure uses) is in decibels, as here. Agrees with
    ``skimage.metrics.peak_signal_noise_ratio(target, pred, data_range=data_range)`` per image.

    Parameters
    ----------
    pred, target : ``(B, C, H, W)`` floating tensors (any device; numpy ``(H, W, C)`` accepted,
        see :func:`as_batch`), values nominally in ``[0, data_range]`` (not clipped).
    data_range : the peak value ``m`` (1.0 for images in [0, 1]).
    crop_border : pixels dropped from each side before comparing (super-resolution habit).

    Returns
    -------
    ``(B,)`` tensor, dtype of the inputs (float32, or float64 for float64 inputs), on their
    device. The squared errors are summed per channel (torch's cascade summation, in the inputs'
    dtype) and the channel sums in float64. Identical images give ``+inf`` (MSE = 0).
    """
    p, t = check_pair(pred, target)
    m = check_data_range(data_range)
    p = crop(p, crop_border)
    t = crop(t, crop_border)
    return _psnr_unchecked(p, t, m)


def _psnr_unchecked(p: torch.Tensor, t: torch.Tensor, data_range: float) -> torch.Tensor:
    n = p[0].numel()
    # per-channel partial sums (torch's cascade summation) accumulated in float64
    sse = (p - t).square_().sum(dim=(2, 3)).to(torch.float64).sum(dim=1)
    mse = sse / n
    out = 10.0 * torch.log10((data_range * data_range) / mse)  # mse 0 -> +inf
    return out.to(p.dtype)


def psnr_y(pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray, *,
           data_range: float = 1.0, crop_border: int = 0) -> torch.Tensor:
    """PSNR (dB) on the BT.601 luma of RGB images (see :func:`rgb_to_y`), ``(B,)``.

    Same conventions as :func:`psnr`; inputs must have 3 channels (RGB).
    """
    p, t = check_pair(pred, target)
    m = check_data_range(data_range)
    if p.shape[1] != 3:
        raise ImageError(f"pred: {p.shape[1]} channels; psnr_y needs RGB images (3 channels)")
    p = crop(rgb_to_y(p, m), crop_border)
    t = crop(rgb_to_y(t, m), crop_border)
    return _psnr_unchecked(p, t, m)
