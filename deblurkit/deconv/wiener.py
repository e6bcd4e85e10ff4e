"""Closed-form Fourier-domain deconvolution: Wiener / Tikhonov (survey eq. 4) and its gradient-prior
variant.

For ``B = K * L + N`` (survey eq. 1) the quadratic problem
``min_L ||K * L - B||^2 + weight * R(L)`` has a closed-form solution when the blur is circular:

* :func:`wiener`, ``R(L) = ||L||^2`` (survey eq. 4, Sahu, Lenka, Sa, arXiv 1907.10128)::

      L = F^-1( conj(F(K)) F(B) / (|F(K)|^2 + weight) )

  ``weight`` plays the role of the noise-to-signal power ratio of the Wiener filter.
* :func:`l2_gradient`, ``R(L) = ||dx L||^2 + ||dy L||^2`` (Gaussian gradient prior, e.g. Levin et
  al. 2007)::

      L = F^-1( conj(F(K)) F(B) / (|F(K)|^2 + weight (|F(dx)|^2 + |F(dy)|^2)) )

  which penalises high frequencies only, so flat regions keep their brightness.

Both are differentiable (torch autograd) in the image, the kernel and a tensor ``weight`` -- they
can sit inside a network, as in Schuler et al.'s learned deblurring (survey eq. 2-4). Borders are
handled by :func:`deblurkit.deconv._boundary.extend` (``boundary="taper"`` by default). No clipping:
results may overshoot ``[0, 1]`` (ringing, noise); clip where the result is stored.
"""

from __future__ import annotations

import torch

from . import _fft as fft

from ._boundary import (
    as_image,
    as_kernel,
    check_boundary,
    check_weight,
    extend,
    gradient_otfs,
)

__all__ = ["wiener", "l2_gradient", "WIENER_WEIGHT", "L2_GRADIENT_WEIGHT"]

#: Default weights, tuned by ``python benchmarks/deconv_quality.py --tune`` on 12 training-set
#: crops (camera-shake kernels 11-31 px, reflect-boundary blur, 1% Gaussian noise): mean PSNR
#: peaked at 2e-2 for Wiener (26.00 dB; 25.39 at 1e-2, 25.79 at 3e-2) and 1.5e-2 for the gradient
#: prior (26.85 dB; 26.78 at 1e-2, 26.81 at 2e-2). Less noise wants smaller weights.
WIENER_WEIGHT = 2e-2
L2_GRADIENT_WEIGHT = 1.5e-2


def wiener(blurred, kernel, *, weight=WIENER_WEIGHT, boundary: str = "taper"):
    """Wiener / Tikhonov deconvolution (survey eq. 4):
    ``L = F^-1( conj(F(K)) F(B) / (|F(K)|^2 + weight) )``.

    Args:
        blurred: torch ``(B, C, H, W)`` float32/float64 on any device, or numpy ``(H, W)`` /
            ``(H, W, C)`` float32/float64; values nominally in ``[0, 1]``.
        kernel: true convolution kernel (``scipy.signal.convolve`` orientation, centre
            ``(kh // 2, kw // 2)``), finite, non-negative, sum 1: numpy / torch ``(kh, kw)`` shared
            by the batch, or torch ``(B, kh, kw)`` one per image; at most the image's size.
        weight: regulariser weight ``> 0`` (noise-to-signal ratio); a float, or a torch tensor of
            shape ``()`` / ``(B,)`` (differentiable).
        boundary: ``"taper"`` (default), ``"reflect"`` or ``"circular"`` -- see
            :mod:`deblurkit.deconv._boundary`.

    Returns:
        the latent image, same shape, dtype, device (numpy in, numpy out). Not clipped.

    Raises:
        ImageError, KernelError, ConfigError: one line naming the bad argument and its value.
    """
    return _solve(blurred, kernel, weight, boundary, gradient_prior=False)


def l2_gradient(blurred, kernel, *, weight=L2_GRADIENT_WEIGHT, boundary: str = "taper"):
    """Deconvolution with a quadratic gradient prior:
    ``L = F^-1( conj(F(K)) F(B) / (|F(K)|^2 + weight (|F(dx)|^2 + |F(dy)|^2)) )``, the minimiser of
    ``||K * L - B||^2 + weight (||dx L||^2 + ||dy L||^2)`` with circular forward differences.

    Arguments, return value and errors as :func:`wiener`.
    """
    return _solve(blurred, kernel, weight, boundary, gradient_prior=True)


def _solve(blurred, kernel, weight, boundary: str, *, gradient_prior: bool):
    x, restore = as_image(blurred)
    k = as_kernel(kernel, x)
    w = check_weight(weight, "weight", x.shape[0], x)
    check_boundary(boundary)
    ext = extend(x, k, boundary)
    shape = ext.shape
    k_otf = ext.otf
    denominator = k_otf.real ** 2 + k_otf.imag ** 2
    if gradient_prior:
        dx, dy = gradient_otfs(shape, x.dtype, x.device)
        prior = dx.real ** 2 + dx.imag ** 2 + dy.real ** 2 + dy.imag ** 2
        denominator = denominator + w * prior
    else:
        denominator = denominator + w
    spectrum = torch.conj(k_otf) * fft.rfft2(ext.image) / denominator
    return restore(ext.crop(fft.irfft2(spectrum, s=shape, overwrite=True)))
