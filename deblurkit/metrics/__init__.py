"""Image-quality metrics and evaluation protocols (survey §III-A, eq. 30-32).

* :func:`psnr`, :func:`psnr_y` -- PSNR in dB (eq. 30-31, standard ``10 log10(m^2 / MSE)``).
* :func:`ssim` -- SSIM (eq. 32) under a named convention (:data:`SSIM_CONVENTIONS`:
  ``"skimage"``, ``"matlab"``, ``"per-channel"``, ``"y"``).
* :func:`plain_score`, :func:`levin_score`, :func:`kohler_score` -- the GoPro (plain),
  Levin et al. 2009 and Köhler et al. 2012 protocols; :func:`align` is their shift/intensity
  search.

All functions take batched torch tensors ``(B, C, H, W)`` on any device (numpy ``(H, W, C)``
accepted) and return torch tensors; see each module for the exact conventions.
"""

from .protocols import (
    FITS,
    Alignment,
    KohlerScore,
    LevinScore,
    PlainScore,
    align,
    kohler_score,
    levin_score,
    plain_score,
)
from .psnr import as_batch, psnr, psnr_y, rgb_to_y
from .ssim import SSIM_CONVENTIONS, gaussian_window, ssim

__all__ = [
    "FITS",
    "SSIM_CONVENTIONS",
    "Alignment",
    "KohlerScore",
    "LevinScore",
    "PlainScore",
    "align",
    "as_batch",
    "gaussian_window",
    "kohler_score",
    "levin_score",
    "plain_score",
    "psnr",
    "psnr_y",
    "rgb_to_y",
    "ssim",
]
