"""Non-blind deconvolution with a hyper-Laplacian gradient prior by half-quadratic splitting.

Krishnan & Fergus, "Fast Image Deconvolution using Hyper-Laplacian Priors", NIPS 2009. Natural
image gradients follow a heavy-tailed law ``p(g) ~ exp(-k |g|^alpha)``, ``0.5 <= alpha <= 0.8``.
The MAP latent image for ``B = K * L + N`` (survey eq. 1, Sahu, Lenka, Sa, arXiv 1907.10128) is::

    min_L  1/2 ||K * L - B||^2 + weight * sum_i ( |dx L|_i^alpha + |dy L|_i^alpha )

(``weight`` = ``1 / lambda`` of the paper, whose objective is ``lambda/2 ||.||^2 + sum |.|^alpha``).
Half-quadratic splitting introduces auxiliary gradients ``w = (wx, wy)`` and a penalty ``beta``::

    min_{L, w}  1/2 ||K * L - B||^2 + weight * sum ( |w|^alpha + beta/2 (dL - w)^2 )

and alternates, while ``beta`` grows from ``beta_init`` by ``beta_rate`` up to ``beta_max``:

* w-step, separable per pixel: ``w = argmin |w|^alpha + beta/2 (w - v)^2`` for
  ``v = dx L`` (and ``dy L``); :func:`shrink` solves it exactly for any ``0 < alpha <= 1``;
* L-step, quadratic and diagonal in the Fourier domain::

      L = F^-1( (conj(F(K)) F(B) + g (conj(F(dx)) F(wx) + conj(F(dy)) F(wy)))
                / (|F(K)|^2 + g (|F(dx)|^2 + |F(dy)|^2)) ),   g = weight * beta.

The paper solves the w-step with the closed-form roots of a quartic (alpha = 2/3) or cubic
(alpha = 1/2), or a lookup table for other alphas. :func:`shrink` instead uses the known threshold
of the ``l_alpha`` proximal map (Zuo et al., "A Generalized Iterated Shrinkage Algorithm for
Non-convex Sparse Coding", ICCV 2013) and Newton's method on the stationarity condition, run only
on the pixels above the threshold (most gradients are below it): exact to float precision for
every ``alpha``, with no table.

Borders: the iterations run on the padded canvas of :mod:`deblurkit.deconv._boundary` (default
``"taper"``: edge replication + ``edgetaper``, as in the paper's code) and the result is cropped.
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError
from . import _fft as fft
from ._boundary import (
    as_image,
    as_kernel,
    check_boundary,
    count,
    extend,
    gradient_otfs,
    positive,
)

__all__ = ["hyper_laplacian", "shrink", "shrink_threshold", "HYPER_LAPLACIAN_WEIGHT"]

#: Default ``weight`` (= 1 / lambda of the paper), tuned by
#: ``python benchmarks/deconv_quality.py --tune`` on 12 training-set crops (camera-shake kernels
#: 11-31 px, reflect-boundary blur, 1% Gaussian noise): mean PSNR 28.61 dB at 7e-4, 28.60 at 5e-4
#: (the paper's lambda = 2000), 28.42 at 1e-3, 27.79 at 2e-3. Less noise wants a smaller weight.
HYPER_LAPLACIAN_WEIGHT = 7e-4

#: Newton steps in :func:`shrink`: from ``|v|`` the iteration decreases monotonically to the root;
#: measured against a brute-force search it reaches float64 precision in 3-4 steps for alpha in
#: [0.5, 0.8] and beta in [1, 256] (one more is taken for margin).
NEWTON_STEPS = 5


def shrink_threshold(beta: float, alpha: float) -> float:
    """Smallest ``|v|`` for which ``argmin_w |w|^alpha + beta/2 (w - v)^2`` is non-zero.

    With ``lam = 1 / beta`` and ``0 < alpha < 1`` (Zuo et al. 2013)::

        tau = (2 lam (1 - alpha))^(1 / (2 - alpha))
              + lam alpha (2 lam (1 - alpha))^((alpha - 1) / (2 - alpha))

    and ``tau = lam`` for ``alpha = 1`` (soft thresholding).
    """
    lam = 1.0 / beta
    if alpha == 1.0:
        return lam
    c = (2 * lam * (1 - alpha)) ** (1 / (2 - alpha))
    return c + lam * alpha * c ** (alpha - 1)


def shrink(v: torch.Tensor, beta: float, alpha: float) -> torch.Tensor:
    """Per-element solution of the w-step ``argmin_w |w|^alpha + beta/2 (w - v)^2``.

    Args:
        v: float tensor, any shape and device.
        beta: penalty ``> 0``.
        alpha: exponent in ``(0, 1]``.

    Returns:
        tensor like ``v``: 0 where ``|v| <= shrink_threshold(beta, alpha)``, else
        ``sign(v) z`` with ``z`` the largest root in ``(0, |v|)`` of the stationarity condition
        ``z - |v| + alpha / beta z^(alpha - 1) = 0``. Newton's method from ``z = |v|`` converges
        monotonically to that root (the left side is convex and increasing there). At the
        threshold both 0 and the root are minimisers; 0 is returned.
    """
    beta = positive(beta, "beta")
    alpha = _check_alpha(alpha)
    return _shrink(v, beta, alpha)


def _check_alpha(alpha: object) -> float:
    alpha = positive(alpha, "alpha")
    if alpha > 1:
        raise ConfigError(f"alpha: must be in (0, 1], got {alpha!r}")
    return alpha


def _shrink(v: torch.Tensor, beta: float, alpha: float) -> torch.Tensor:
    """:func:`shrink` without argument checks; Newton runs only on the entries above threshold."""
    tau = shrink_threshold(beta, alpha)
    flat = v.reshape(-1)
    magnitude = flat.abs()
    index = torch.nonzero(magnitude > tau).squeeze(1)
    out = torch.zeros_like(flat)
    if index.numel() == 0:
        return out.view_as(v)
    t = magnitude.index_select(0, index)
    if alpha == 1.0:
        z = t - 1.0 / beta
    else:
        c1 = alpha / beta
        c2 = alpha * (alpha - 1) / beta
        z = t
        for _ in range(NEWTON_STEPS):
            q = z.pow(alpha - 2)                         # z^(alpha-2); z^(alpha-1) = q z
            z = z - (z - t + c1 * q * z) / (1 + c2 * q)
    out.index_copy_(0, index, torch.copysign(z, flat.index_select(0, index)))
    return out.view_as(v)


def _gradients(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Circular forward differences of ``x`` ``(..., H, W)`` into ``out`` ``(2, ..., H, W)``:
    ``out[0] = x[..., j+1] - x[..., j]``, ``out[1] = x[..., i+1, :] - x[..., i, :]``."""
    gx, gy = out[0], out[1]
    torch.sub(x[..., 1:], x[..., :-1], out=gx[..., :-1])
    torch.sub(x[..., :1], x[..., -1:], out=gx[..., -1:])
    torch.sub(x[..., 1:, :], x[..., :-1, :], out=gy[..., :-1, :])
    torch.sub(x[..., :1, :], x[..., -1:, :], out=gy[..., -1:, :])
    return out


def _divergence(w: torch.Tensor) -> torch.Tensor:
    """Adjoint of :func:`_gradients`: ``Dx^T w[0] + Dy^T w[1]``."""
    wx, wy = w[0], w[1]
    out = torch.empty_like(wx)
    torch.sub(wx[..., :-1], wx[..., 1:], out=out[..., 1:])
    torch.sub(wx[..., -1:], wx[..., :1], out=out[..., :1])
    out.sub_(wy)
    out[..., 1:, :].add_(wy[..., :-1, :])
    out[..., :1, :].add_(wy[..., -1:, :])
    return out


@torch.no_grad()
def hyper_laplacian(blurred, kernel, *, weight: float = HYPER_LAPLACIAN_WEIGHT,
                    alpha: float = 2 / 3, beta_init: float = 1.0,
                    beta_rate: float = 2 * math.sqrt(2), beta_max: float = 256.0,
                    inner_iterations: int = 1, boundary: str = "taper"):
    """Hyper-Laplacian deconvolution (Krishnan & Fergus 2009), see the module docstring.

    Args:
        blurred: torch ``(B, C, H, W)`` float32/float64 on any device, or numpy ``(H, W)`` /
            ``(H, W, C)``; values nominally in ``[0, 1]``.
        kernel: true convolution kernel, finite, non-negative, sum 1: numpy / torch ``(kh, kw)``
            shared by the batch or torch ``(B, kh, kw)`` one per image; at most the image's size.
        weight: prior weight ``> 0`` relative to the data term (``1 / lambda`` of the paper: their
            ``lambda = 2000`` is ``weight = 5e-4``). Larger is smoother.
        alpha: prior exponent in ``(0, 1]``; 2/3 (default) and 1/2 are the paper's choices.
        beta_init, beta_rate, beta_max: continuation of the splitting penalty: ``beta`` takes the
            values ``beta_init * beta_rate^n`` below ``beta_max`` (paper: 1, 2 sqrt 2, 256, i.e.
            six outer steps). ``beta_rate > 1``.
        inner_iterations: alternations of the w- and L-steps per ``beta`` (paper: 1).
        boundary: ``"taper"`` (default), ``"reflect"`` or ``"circular"``.

    Returns:
        the latent image, same shape, dtype and device (numpy in, numpy out). Not clipped.

    Raises:
        ImageError, KernelError, ConfigError: one line naming the bad argument and its value.
    """
    x, restore = as_image(blurred)
    k = as_kernel(kernel, x)
    weight = positive(weight, "weight")
    alpha = _check_alpha(alpha)
    beta = positive(beta_init, "beta_init")
    beta_rate = positive(beta_rate, "beta_rate")
    if beta_rate <= 1:
        raise ConfigError(f"beta_rate: must be > 1, got {beta_rate!r}")
    beta_max = positive(beta_max, "beta_max")
    inner_iterations = count(inner_iterations, "inner_iterations")
    check_boundary(boundary)

    ext = extend(x, k, boundary)
    shape = ext.shape
    k_otf = ext.otf
    dx, dy = gradient_otfs(shape, x.dtype, x.device)
    data_term = torch.conj(k_otf) * fft.rfft2(ext.image)
    k_power = k_otf.real ** 2 + k_otf.imag ** 2
    d_power = dx.real ** 2 + dx.imag ** 2 + dy.real ** 2 + dy.imag ** 2

    latent = ext.image
    gradients = latent.new_empty((2,) + tuple(latent.shape))
    while beta < beta_max:
        gamma = weight * beta
        inverse = 1.0 / (k_power + gamma * d_power)              # (N, 1, Hp, Wp/2+1), real
        data_part = torch.view_as_real(data_term * inverse)
        prior_scale = (gamma * inverse)[..., None]
        for _ in range(inner_iterations):
            w = _shrink(_gradients(latent, gradients), beta, alpha)
            spectrum = fft.rfft2(_divergence(w))
            torch.view_as_real(spectrum).mul_(prior_scale).add_(data_part)
            latent = fft.irfft2(spectrum, s=shape, overwrite=True)
        beta *= beta_rate
    return restore(ext.crop(latent))
