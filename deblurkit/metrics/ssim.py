"""Structural similarity (SSIM, survey eq. 32) under the named conventions papers use.

Published SSIM figures differ by convention (window, border handling, colour handling), often by
more than the gaps between methods, so every SSIM in deblurkit names its convention:

``"skimage"``
    ``skimage.metrics.structural_similarity(pred, target, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=..., channel_axis=-1)`` exactly (scikit-image 0.26,
    ``skimage/metrics/_structural_similarity.py``): Gaussian window sigma 1.5 truncated at 3.5
    sigma (radius ``int(3.5 * 1.5 + 0.5) = 5``, 11 taps), population covariances, K1 = 0.01,
    K2 = 0.03, each channel on its own; the SSIM map is averaged after cropping
    ``(11 - 1) // 2 = 5`` pixels from every border, then averaged over channels. skimage filters
    with ``scipy.ndimage.gaussian_filter(mode='reflect')``, but a pixel 5 or more pixels inside the
    border only sees real pixels through an 11-tap window, so the cropped mean equals a *valid*
    (unpadded) filtering, which is what is computed here. Needs H, W >= 11.
``"matlab"``
    MATLAB ``ssim(A, ref)`` (Image Processing Toolbox ``ssim.m``, the 2013-2014 text, whose help
    says "RGB images will also be processed as 3D volumetric images") on an ``H x W x C`` array,
    treated as a 3-D *volume*: a 3-D Gaussian weighting filter of
    standard deviation ``Radius = 1.5`` and size ``2 * ceil(3 * 1.5) + 1 = 11`` in every dimension
    (``getGaussianWeightingFilter``), applied with ``imfilter(..., 'conv', 'replicate')`` -- so
    the colour channels are mixed by the filter's third dimension with the channel axis padded by
    replication -- ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2`` (``L = 1`` for single/double images),
    and the mean of the whole ``H x W x C`` SSIM map (no cropping). A grey image (C = 1) is 2-D for
    MATLAB (``fspecial('gaussian', 11, 1.5)``), which is the same filter. Facts from the text of
    MathWorks' ``ssim.m`` (Copyright 2013-2014). This is what the GoPro / DeepDeblur
    (Nah et al. 2017) style MATLAB evaluation scripts compute when they call ``ssim`` on RGB
    images.
``"per-channel"``
    MATLAB ``ssim`` applied to each colour channel separately (2-D 11x11 Gaussian, sigma 1.5,
    'replicate' padding, 'same' size map, no cropping), then the mean over channels.
``"y"``
    The BT.601 luma ``Y = 16/255 + (65.481 R + 128.553 G + 24.966 B) / 255`` of RGB inputs
    (:func:`deblurkit.metrics.psnr.rgb_to_y`), then the ``"skimage"`` convention on ``Y``.

All conventions use the same 1-D Gaussian (sigma 1.5, taps -5..5, normalised), which is
separable, so a 2-D (and MATLAB's 3-D) window is the product of 1-D ones.

Implementation: four maps per channel -- ``x``, ``y``, ``x^2 + y^2`` and ``x y`` (the formula
only needs ``sigma_x^2 + sigma_y^2``) -- are filtered by two depthwise ``conv2d`` (the 1-D window
down, then across) on a channels-last stack, processed in strips of rows on the CPU so that the
working set stays in cache (one strip per image on other devices); images are centred (the
per-image mean subtracted) before the second moments are formed, which keeps float32 variances
accurate. Each strip's SSIM sum (float32 cascade summation) is accumulated in float64.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ImageError
from .psnr import check_data_range, check_pair, rgb_to_y

__all__ = ["SSIM_CONVENTIONS", "gaussian_window", "ssim"]

#: Names accepted by ``ssim(..., convention=...)``.
SSIM_CONVENTIONS = ("skimage", "matlab", "per-channel", "y")

SIGMA = 1.5
RADIUS = 5          # skimage: int(3.5 * 1.5 + 0.5); MATLAB: ceil(3 * 1.5)
WIN = 2 * RADIUS + 1
K1, K2 = 0.01, 0.03

_STRIP_ROWS = 32    # output rows per strip on the CPU (cache blocking)


def gaussian_window(dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu"
                    ) -> torch.Tensor:
    """The 1-D SSIM window: ``exp(-k^2 / (2 * 1.5^2))`` for ``k = -5..5``, normalised, ``(11,)``."""
    k = torch.arange(-RADIUS, RADIUS + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (k / SIGMA) ** 2)
    return (g / g.sum()).to(dtype=dtype, device=device)


@functools.lru_cache(maxsize=16)
def _channel_mix(c: int) -> torch.Tensor:
    """MATLAB's 3-D window along the channel axis with 'replicate' padding as a ``(C, C)`` matrix.

    ``out[c] = sum_k g[k] * in[clamp(c + k, 0, C - 1)]``, so ``M[c, j]`` sums the taps that land
    on channel ``j``. Rows sum to 1.
    """
    g = gaussian_window().tolist()
    m = np.zeros((c, c))
    for i in range(c):
        for k in range(-RADIUS, RADIUS + 1):
            m[i, min(max(i + k, 0), c - 1)] += g[k + RADIUS]
    return torch.from_numpy(m)


def ssim(pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray, *,
         convention: str = "skimage", data_range: float = 1.0) -> torch.Tensor:
    """Mean structural similarity of each image of a batch (survey eq. 32).

    ``SSIM(x, y) = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 +
    sigma_y^2 + C2))`` with Gaussian-weighted local statistics (Wang et al. 2004),
    ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``, ``L = data_range``, averaged over the image as the
    named ``convention`` says (see the module docstring: ``"skimage"``, ``"matlab"``,
    ``"per-channel"``, ``"y"``).

    Parameters
    ----------
    pred, target : ``(B, C, H, W)`` floating tensors on any device (numpy ``(H, W, C)`` accepted),
        values nominally in ``[0, data_range]``. ``"y"`` needs C = 3; ``"skimage"`` and ``"y"``
        need H, W >= 11.
    convention : one of :data:`SSIM_CONVENTIONS`.
    data_range : dynamic range ``L`` of the pixel values (1.0 for [0, 1]).

    Returns
    -------
    ``(B,)`` tensor in the inputs' dtype (float32, or float64 for float64 inputs) on their device;
    ``ssim(x, x) == 1`` exactly. Symmetric in ``pred`` and ``target``.
    """
    if convention not in SSIM_CONVENTIONS:
        raise ImageError(f"convention: {convention!r}; choose one of "
                         f"{', '.join(repr(c) for c in SSIM_CONVENTIONS)}")
    p, t = check_pair(pred, target)
    m = check_data_range(data_range)
    if convention == "y":
        if p.shape[1] != 3:
            raise ImageError(f"pred: {p.shape[1]} channel(s); SSIM convention 'y' needs RGB "
                             f"images (3 channels)")
        p, t = rgb_to_y(p, m), rgb_to_y(t, m)
    return ssim_unchecked(p, t, convention=convention, data_range=m)


def ssim_unchecked(p: torch.Tensor, t: torch.Tensor, *, convention: str, data_range: float
                   ) -> torch.Tensor:
    """:func:`ssim` on an already checked pair (``"y"``: already converted to luma)."""
    h, w = p.shape[-2:]
    if convention in ("skimage", "y"):
        if min(h, w) < WIN:
            raise ImageError(f"pred: {h}x{w} image; SSIM convention {convention!r} needs at least "
                             f"{WIN}x{WIN} pixels (the Gaussian window)")
        pad, mix = False, None
    elif convention == "per-channel":
        pad, mix = True, None
    else:  # matlab
        pad = True
        mix = _channel_mix(p.shape[1]) if p.shape[1] > 1 else None
    mean = _ssim_mean(p, t, pad=pad, mix=mix, data_range=data_range)
    return mean.to(p.dtype)


def _ssim_mean(x: torch.Tensor, y: torch.Tensor, *, pad: bool, mix: torch.Tensor | None,
               data_range: float) -> torch.Tensor:
    """Mean SSIM map per image, float64 ``(B,)``; ``pad``: replicate-pad 5 px ('same' map).

    Four maps per channel are filtered: ``x``, ``y``, ``x^2 + y^2`` and ``x y`` (the formula only
    needs ``sigma_x^2 + sigma_y^2``, so the two second moments are filtered as one sum).
    """
    b, c, _, _ = x.shape
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    # Centre each image (one scalar per image, so MATLAB's channel mixing commutes with it);
    # the subtraction happens strip by strip below.
    cx = x.mean(dim=(1, 2, 3))
    cy = y.mean(dim=(1, 2, 3))
    if pad:
        x = F.pad(x, (RADIUS,) * 4, mode="replicate")
        y = F.pad(y, (RADIUS,) * 4, mode="replicate")
    hp, wp = x.shape[-2:]
    ho, wo = hp - 2 * RADIUS, wp - 2 * RADIUS
    n_maps = 4 * c
    ch = -(-n_maps // 8) * 8          # pad the stack of maps to a multiple of 8 channels
    g = gaussian_window(x.dtype, x.device)
    w_v = g.view(1, 1, WIN, 1).expand(ch, 1, WIN, 1).contiguous()
    w_h = g.view(1, 1, 1, WIN).expand(ch, 1, 1, WIN).contiguous()
    mix_t = None if mix is None else mix.to(dtype=x.dtype, device=x.device)
    totals = torch.zeros(b, dtype=torch.float64, device=x.device)
    rows = ho if x.device.type != "cpu" else _STRIP_ROWS
    # buffers reused for every strip (no allocation, no page faults); padding channels stay 0
    rmax = min(rows, ho)
    maps = x.new_zeros((1, ch, rmax + 2 * RADIUS, wp))
    maps_cl = torch.zeros_like(maps, memory_format=torch.channels_last)
    planes = x.new_empty((1, n_maps, rmax, wo))
    for i in range(b):
        cxi, cyi = float(cx[i]), float(cy[i])
        for r0 in range(0, ho, rows):
            r1 = min(r0 + rows, ho)
            xr = x[i:i + 1, :, r0:r1 + 2 * RADIUS]
            yr = y[i:i + 1, :, r0:r1 + 2 * RADIUS]
            m = maps[:, :, :r1 - r0 + 2 * RADIUS]
            xm = torch.sub(xr, cxi, out=m[:, 0:c])
            ym = torch.sub(yr, cyi, out=m[:, c:2 * c])
            torch.mul(xm, xm, out=m[:, 2 * c:3 * c]).add_(ym * ym)   # no FMA: exact 1 for x == y
            torch.mul(xm, ym, out=m[:, 3 * c:4 * c])
            m = maps_cl[:, :, :r1 - r0 + 2 * RADIUS].copy_(m)                  # channels last
            filt = F.conv2d(F.conv2d(m, w_v, groups=ch), w_h, groups=ch)
            filt = planes[:, :, :r1 - r0].copy_(filt[:, :n_maps])          # (1, 4C, r, Wo)
            if mix_t is not None:     # MATLAB's 3-D window: mix the channels of each map
                filt = torch.einsum("kc,bmchw->bmkhw", mix_t, filt.unflatten(1, (4, c)))
                filt = filt.flatten(1, 2)
            totals[i] += _ssim_sum(filt, c, cxi, cyi, c1, c2)
    return totals / (ho * wo * c)


def _ssim_sum(filt: torch.Tensor, c: int, cx: float, cy: float, c1: float, c2: float
              ) -> torch.Tensor:
    """Sum of the SSIM map from filtered centred maps ``[x, y, x^2 + y^2, x y]`` (``4C`` planes).

    Written without fused multiply-adds so that ``x == y`` gives exactly 1 at every pixel.
    """
    mx, my, sq, sxy = filt.split(c, dim=1)
    p = mx * my
    q = torch.mul(mx, mx).add_(my * my)
    a2 = torch.sub(sxy, p).mul_(2.0).add_(c2)                  # 2 sigma_xy + C2
    b2 = torch.sub(sq, q).add_(c2)                             # sigma_x^2 + sigma_y^2 + C2
    mx = mx + cx                                               # un-centred means
    my = my + cy
    a1 = torch.mul(mx, my).mul_(2.0).add_(c1)                  # 2 mu_x mu_y + C1
    b1 = torch.mul(mx, mx).add_(my * my).add_(c1)              # mu_x^2 + mu_y^2 + C1
    return a1.mul_(a2).div_(b1.mul_(b2)).sum().to(torch.float64)
