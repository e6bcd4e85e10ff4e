"""Classical blind deblurring: coarse-to-fine MAP kernel estimation with L0 priors (no learning).

The statistical approach the survey (Sahu, Lenka, Sa, arXiv 1907.10128, §I-II) contrasts the
learned methods with: alternate between a latent sharp image and the blur kernel under sparse
priors, from a coarse to a fine scale, then deconvolve non-blindly with the estimated kernel.

Priors and solvers follow Pan, Hu, Su, Yang, "Deblurring Text Images via L0-Regularized Intensity
and Gradient Prior" (CVPR 2014; TPAMI 2017) and Xu, Zheng, Jia, "Unnatural L0 Sparse
Representation for Natural Image Deblurring" (CVPR 2013). With the blur model of survey eq. 1,
``B = K * I + N``:

* **latent step** (Pan et al.'s intensity + gradient L0 prior; Xu et al. with ``lambda_i = 0``)::

      min_x  ||K * x - B||^2 + lambda_i ||x||_0 + lambda_g ||grad x||_0

  by half-quadratic splitting with auxiliary ``u ~ x`` and ``g = (gh, gv) ~ grad x``, penalties
  ``beta`` and ``mu`` raised by ``kappa`` from ``2 lambda`` up to :data:`MU_MAX`. Both auxiliary
  steps are hard thresholds (``g = 0`` where ``|grad x|^2 < lambda_g / mu``, ``u = 0`` where
  ``x^2 < lambda_i / beta``) and the x-step is diagonal in the Fourier domain::

      x = F^-1( (conj(F K) F B + beta F u + mu (conj(F Dh) F gh + conj(F Dv) F gv))
                / (|F K|^2 + beta + mu (|F Dh|^2 + |F Dv|^2)) );

* **kernel step** (as in Pan et al. and Xu et al., after Cho & Lee 2009), in the gradient domain::

      min_k  ||grad x * k - grad B||^2 + gamma ||k||^2

  solved on the ``s x s`` support: its normal equations ``(G + gamma I) k = h`` have the
  Toeplitz Gram matrix ``G[o, o'] = R(o - o')`` of the autocorrelation ``R`` of ``grad x`` and the
  right side ``h(o) = C(o)``, the cross-correlation of ``grad x`` with ``grad B``, both read off
  one FFT each; conjugate gradients solve them to a relative residual of 1e-5, each product
  ``G k`` being a small FFT convolution of the ``(2s - 1)^2`` lag table
  (:func:`kernel_least_squares`). ``gamma`` is relative: ``gamma_rel * R(0)``. The solution is
  cleaned as in Pan et al.'s code: entries below ``threshold`` times the maximum are
  zeroed, 8-connected components holding less than ``min_component`` of the mass are removed
  (the largest is always kept), negatives clipped, the sum normalised to 1
  (:func:`clean_kernel`);
* **coarse to fine**: an image pyramid with scale ratio ``1/sqrt(2)`` down to a kernel of about
  5 px; at each level a few alternations, ``lambda_g`` (and ``lambda_i``) divided by 1.1 after
  each (Pan et al.'s code); the kernel is re-centred (centre of mass on the centre) and
  upsampled to the next level by bilinear interpolation about its centre;
* **deconvolution**: :func:`deblurkit.deconv.hyper_laplacian` (Krishnan & Fergus 2009) with the
  final kernel, on every channel.

Borders: the latent step runs on the padded, edge-tapered canvas of
:func:`deblurkit.deconv._boundary.extend` (boundary ``"taper"``), and the kernel step uses the whole
canvas, whose circular model matches the latent fit. A synthetic image blurred by *circular*
convolution (it wraps around smoothly, :func:`is_periodic`) is used as its own periodic canvas
instead (boundary ``"circular"``), where the circular model is exact; ``boundary="auto"`` (the
default) chooses. Large images: the kernel is estimated on the grey (Rec. 709 luma) window of at
most ``max_side`` x ``max_side`` pixels with the most gradient energy (Hu & Yang, "Good Regions to
Deblur", ECCV 2012, argue that edge-rich regions give the best kernels) and then applied to the
whole image (uniform blur is the same everywhere).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import scipy.fft
import scipy.ndimage
import torch
import torch.nn.functional as F

from ..blur.kernels import validate_kernel
from ..deconv import HYPER_LAPLACIAN_WEIGHT, hyper_laplacian
from ..deconv._boundary import extend
from ..errors import ConfigError, ImageError, KernelError
from ._common import _label_components, center_kernel, check_image, to_grey

__all__ = [
    "L0Blind",
    "l0_restore",
    "kernel_least_squares",
    "clean_kernel",
    "pyramid",
    "is_periodic",
    "MU_MAX",
]

#: Largest splitting penalty of the latent step (Xu et al.'s and Pan et al.'s ``betamax``).
MU_MAX = 1e5

#: Pyramid scale ratio between neighbouring levels (Pan et al.'s code: ``sqrt(0.5)``).
SCALE_RATIO = math.sqrt(0.5)

#: The coarsest pyramid level has a kernel of at least this side.
MIN_KERNEL = 5

#: ``lambda_g`` and ``lambda_i`` are divided by this after each alternation (Pan et al.'s code).
LAMBDA_DECAY = 1.1

# Defaults that differ from Pan et al.'s code (floor 1e-4, Tikhonov weight 2 in absolute units,
# threshold 0.05), chosen on 32 blurs of 4 training crops (255 x 255 grey, camera-shake kernels
# 13-27 px, reflect boundary, 1% Gaussian noise; Levin-protocol error ratio with sub-pixel
# alignment against hyper-Laplacian deconvolution with the true kernel). Mean ratio / share of
# ratios <= 3: Pan's values 9.2 / 38%; threshold 0.1 -> 3.2 / 72%, 0.2 -> 1.9 / 91% (integer
# alignment); then with sub-pixel alignment lambda floor 1e-4 -> 1.9 / 91% (integer), 1e-3 ->
# 1.45 / 100%, 2e-3 -> 1.68 / 94%; gamma_rel 0.03 -> 1.58, 0.1 -> 1.45, 0.3 -> 1.96. With 1%
# noise the small floor lets the latent image keep noise gradients, which the kernel step fits as
# speckle; the higher threshold removes the speckle the Tikhonov term leaves.

#: Floor of ``lambda_g`` (and ``lambda_i``) as they decay.
LAMBDA_MIN = 1e-3

#: Tikhonov weight of the kernel step relative to ``R(0) = ||grad x||^2``.
GAMMA_REL = 0.1

#: Kernel entries below this fraction of the maximum are zeroed after each kernel step, on the
#: edge-tapered canvas of an ordinary photo ...
THRESHOLD = 0.2

#: ... and on a periodic image (boundary "circular"), where the circular model is exact and no
#: border error adds speckle: on the 16 Levin et al. blurs of ``dev/levin`` (circular
#: convolutions) with 1% noise added, mean ratio 3.42 at 0.2 and 2.17 at 0.1 (sub-pixel
#: alignment); on the photo crops above 0.1 was worse (3.2 against 1.9).
THRESHOLD_CIRCULAR = 0.1

#: Boundary handling of :class:`L0Blind`: ``"auto"`` picks ``"circular"`` for an image that wraps
#: around smoothly (:func:`is_periodic`), ``"taper"`` otherwise.
BOUNDARIES = ("auto", "taper", "circular")

#: :func:`is_periodic` threshold on the correlation of the first and last column (and row).
#: Measured: 0.87-1.0 on the 16 circularly blurred Levin et al. images with 1% noise; at most
#: 0.77 on one axis and 0.58 on both on 80 blurred 255 x 255 crops of training photos (a flat,
#: noisy crop has near-zero correlations everywhere; the earlier ratio of seam to neighbour
#: differences mistook such a crop for a periodic one). A circular blur by a compact or
#: one-directional kernel leaves a seam sharp (0.63 for a 15 px shake on the cameraman): such an
#: image is handled like a photo.
PERIODIC_CORRELATION = 0.8

#: Conjugate-gradient stopping rule of the kernel step: relative residual and step cap.
CG_TOLERANCE = 1e-5
CG_MAX_ITER = 100


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------

def _number(value: object, name: str, *, minimum: float = 0.0, strict: bool = True,
            maximum: float | None = None) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) \
        and math.isfinite(float(value))
    if ok:
        v = float(value)
        ok = (v > minimum if strict else v >= minimum) and (maximum is None or v <= maximum)
    if not ok:
        bound = f"{'>' if strict else '>='} {minimum:g}" + \
            (f" and <= {maximum:g}" if maximum is not None else "")
        raise ConfigError(f"{name}: must be a finite number {bound}, got {value!r}")
    return float(value)


def _integer(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{name}: must be an integer >= {minimum}, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------------------------
# Fourier helpers (numpy, float32 -> complex64 via scipy.fft / pocketfft)
# --------------------------------------------------------------------------------------------

def _workers() -> int:
    return max(1, torch.get_num_threads())


def _rfft2(x: np.ndarray) -> np.ndarray:
    return scipy.fft.rfft2(x, workers=_workers())


def _irfft2(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return scipy.fft.irfft2(x, s=shape, workers=_workers(), overwrite_x=True)


def _gradient_power(shape: tuple[int, int]) -> np.ndarray:
    """``|F Dh|^2 + |F Dv|^2`` of the circular forward differences on an ``(H, W)`` canvas, in
    the rfft2 layout ``(H, W // 2 + 1)``, float32: ``4 sin^2(pi l / W) + 4 sin^2(pi m / H)``."""
    h, w = shape
    fx = np.arange(w // 2 + 1) / w
    fy = np.fft.fftfreq(h)
    return (4 * np.sin(np.pi * fx)[None, :] ** 2 + 4 * np.sin(np.pi * fy)[:, None] ** 2) \
        .astype(np.float32)


def _grad(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Circular forward differences ``(x[:, j+1] - x[:, j], x[i+1, :] - x[i, :])``."""
    return np.roll(x, -1, axis=1) - x, np.roll(x, -1, axis=0) - x


def _grad_adjoint(gh: np.ndarray, gv: np.ndarray) -> np.ndarray:
    """Adjoint of :func:`_grad`: ``Dh^T gh + Dv^T gv``."""
    return (np.roll(gh, 1, axis=1) - gh) + (np.roll(gv, 1, axis=0) - gv)


def _otf(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """rfft2 of the kernel on an ``(H, W)`` canvas with its centre ``(kh//2, kw//2)`` at the
    origin (MATLAB's ``psf2otf``), complex64."""
    kh, kw = kernel.shape
    canvas = np.zeros(shape, dtype=np.float32)
    canvas[:kh, :kw] = kernel
    canvas = np.roll(canvas, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    return _rfft2(canvas)


# --------------------------------------------------------------------------------------------
# latent step
# --------------------------------------------------------------------------------------------

def _l0_latent(canvas: np.ndarray, k_otf: np.ndarray, lambda_grad: float,
               lambda_intensity: float, kappa: float, mu_max: float) -> np.ndarray:
    """The latent step on a periodic canvas ``(Hp, Wp)`` (see the module docstring)."""
    shape = canvas.shape
    data = np.conj(k_otf) * _rfft2(canvas)
    k_power = (k_otf.real ** 2 + k_otf.imag ** 2).astype(np.float32)
    d_power = _gradient_power(shape)
    x = canvas
    mu = 2.0 * lambda_grad
    beta = 2.0 * lambda_intensity
    while mu < mu_max:
        gh, gv = _grad(x)
        small = gh * gh + gv * gv < lambda_grad / mu
        gh[small] = 0.0
        gv[small] = 0.0
        aux = mu * _grad_adjoint(gh, gv)
        denominator = k_power + mu * d_power
        if lambda_intensity > 0:
            u = np.where(x * x < lambda_intensity / beta, np.float32(0.0), x)
            aux += beta * u
            denominator = denominator + beta
            beta *= kappa
        x = _irfft2((data + _rfft2(aux)) / denominator, shape).astype(np.float32, copy=False)
        mu *= kappa
    return x


def l0_restore(blurred: np.ndarray, kernel: np.ndarray, *, lambda_grad: float = 4e-3,
               lambda_intensity: float = 0.0, kappa: float = 2.0,
               mu_max: float = MU_MAX) -> np.ndarray:
    """The L0-regularised latent image of Pan et al. 2014 (Xu et al. 2013: ``lambda_intensity=0``)::

        min_x ||K * x - B||^2 + lambda_intensity ||x||_0 + lambda_grad ||grad x||_0

    by half-quadratic splitting (module docstring), on the edge-tapered canvas of
    :func:`deblurkit.deconv._boundary.extend`, cropped back. The result is piecewise constant
    with sharp edges: a good guide for the kernel step, not a final picture.

    Args:
        blurred: numpy ``(H, W)`` float32/float64 in [0, 1].
        kernel: true convolution kernel ``(kh, kw)`` (non-negative, sums to 1), at most the
            image's size.
        lambda_grad: weight of the gradient L0 term, ``> 0``.
        lambda_intensity: weight of the intensity L0 term, ``>= 0`` (0: gradients only, Xu et al.).
        kappa: growth of the splitting penalties per step, ``> 1``.
        mu_max: the penalty at which the continuation stops, ``> 2 lambda_grad``.

    Returns:
        float32 ``(H, W)``, not clipped.

    Raises:
        ImageError, KernelError, ConfigError: one line naming the bad argument.
    """
    image = check_image(blurred, "blurred")
    if image.shape[2] != 1:
        raise ImageError(f"blurred: must be one grey channel (H, W), got shape {blurred.shape}")
    k = validate_kernel(kernel, "kernel")
    h, w = image.shape[:2]
    if k.shape[0] > h or k.shape[1] > w:
        raise KernelError(f"kernel: {k.shape[0]}x{k.shape[1]} kernel is larger than the {h}x{w} "
                          "image (HxW)")
    lambda_grad = _number(lambda_grad, "lambda_grad")
    lambda_intensity = _number(lambda_intensity, "lambda_intensity", strict=False)
    kappa = _number(kappa, "kappa", minimum=1.0)
    mu_max = _number(mu_max, "mu_max", minimum=2 * lambda_grad)
    canvas, k_otf, crop = _canvas(image[:, :, 0], k)
    x = _l0_latent(canvas, k_otf, lambda_grad, lambda_intensity, kappa, mu_max)
    return np.ascontiguousarray(x[crop])


def is_periodic(grey: np.ndarray) -> bool:
    """Whether a grey ``(H, W)`` image wraps around smoothly, as a circularly blurred synthetic
    image does (e.g. the Levin et al. set as distributed): the Pearson correlation of its first
    and last column, and of its first and last row, are both at least
    :data:`PERIODIC_CORRELATION` (in a periodic image they are neighbours; in a photo they lie
    the image's width apart)."""
    g = np.asarray(grey, dtype=np.float64)
    if min(g.shape) < 3:
        return False

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        a, b = a - a.mean(), b - b.mean()
        scale = math.sqrt(float((a * a).sum() * (b * b).sum()))
        return float((a * b).sum()) / scale if scale > 0 else 0.0

    return min(corr(g[:, 0], g[:, -1]), corr(g[0, :], g[-1, :])) >= PERIODIC_CORRELATION


def _canvas(grey: np.ndarray, kernel: np.ndarray, boundary: str = "taper"
            ) -> tuple[np.ndarray, np.ndarray, tuple[slice, slice]]:
    """The periodic canvas of ``grey`` for ``kernel`` (``deconv._boundary.extend``: edge-tapered
    padding for ``"taper"``, the image itself for ``"circular"``), the kernel's OTF there, and the
    slices of the original image in it."""
    x = torch.from_numpy(np.ascontiguousarray(grey, dtype=np.float32))[None, None]
    k = torch.from_numpy(np.ascontiguousarray(kernel, dtype=np.float32))[None]
    ext = extend(x, k, boundary)
    canvas = ext.image[0, 0].numpy().astype(np.float32, copy=True)
    k_otf = ext.otf[0, 0].numpy().astype(np.complex64, copy=False)
    crop = (slice(ext.top, ext.top + ext.height), slice(ext.left, ext.left + ext.width))
    return canvas, k_otf, crop


# --------------------------------------------------------------------------------------------
# kernel step
# --------------------------------------------------------------------------------------------

def _solve_toeplitz(table: np.ndarray, rhs: np.ndarray, gamma: float,
                    start: np.ndarray | None) -> np.ndarray:
    """Solve ``(G + gamma I) k = rhs`` for ``k`` ``(s, s)`` by conjugate gradients, where
    ``G k = valid_convolution(table, k)`` with ``table`` the ``(2s - 1)^2`` autocorrelation lags
    (``G[o, o'] = table[o - o' + s - 1]``, symmetric positive semi-definite).

    Iterates until the residual falls below :data:`CG_TOLERANCE` of the right side's norm or
    :data:`CG_MAX_ITER` steps (the system is at most 31^2 = 961 unknowns and well conditioned
    by ``gamma``; one step costs two small FFTs)."""
    s = rhs.shape[0]
    table_f = scipy.fft.rfft2(table, s=(3 * s - 2, 3 * s - 2))

    def apply(k: np.ndarray) -> np.ndarray:
        full = scipy.fft.irfft2(table_f * scipy.fft.rfft2(k, s=(3 * s - 2, 3 * s - 2)),
                                s=(3 * s - 2, 3 * s - 2))
        return full[s - 1:2 * s - 1, s - 1:2 * s - 1] + gamma * k

    x = np.zeros_like(rhs) if start is None else np.array(start, dtype=np.float64)
    res = rhs - apply(x)
    p = res.copy()
    rr = float((res * res).sum())
    stop = (CG_TOLERANCE ** 2) * float((rhs * rhs).sum())
    for _ in range(CG_MAX_ITER):
        if rr <= stop:
            break
        q = apply(p)
        alpha = rr / float((p * q).sum())
        x += alpha * p
        res -= alpha * q
        rr_new = float((res * res).sum())
        p = res + (rr_new / rr) * p
        rr = rr_new
    return x


def _lags(table: np.ndarray, size: int) -> np.ndarray:
    """Entries of a circular correlation ``(H, W)`` at lags ``-(size-1) .. size-1`` on both axes,
    as a ``(2 size - 1, 2 size - 1)`` array indexed by ``lag + size - 1``."""
    r = np.arange(-(size - 1), size)
    return table[np.ix_(r % table.shape[0], r % table.shape[1])]


def kernel_least_squares(latent_grads: tuple[np.ndarray, ...],
                         blurred_grads: tuple[np.ndarray, ...], size: int, *,
                         gamma_rel: float = GAMMA_REL,
                         start: np.ndarray | None = None) -> np.ndarray:
    """Least-squares kernel on an ``size x size`` support from gradient pairs (the kernel step of
    Pan et al. 2014 and Xu et al. 2013, after Cho & Lee 2009)::

        min_k  sum_c ||X_c (*) k - Y_c||^2 + gamma ||k||^2,   gamma = gamma_rel * R(0)

    with circular convolution ``(*)`` on the arrays' ``(H, W)`` grid, ``X_c`` the latent's and
    ``Y_c`` the blurred image's gradient maps. Its normal equations ``(G + gamma I) k = h``, with
    ``G[o, o'] = R(o - o')`` (autocorrelation of the ``X_c`` summed over c) and
    ``h(o) = sum_c (X_c corr Y_c)(o)`` read off FFTs, are solved by conjugate gradients (from
    ``start``, default 0) to a relative residual of :data:`CG_TOLERANCE`.

    Args:
        latent_grads, blurred_grads: equally long tuples of float ``(H, W)`` arrays, with
            ``H, W >= 2 size - 1``.
        size: kernel side, ``>= 1``.
        gamma_rel: Tikhonov weight relative to ``R(0) = sum_c ||X_c||^2``, ``>= 0``.
        start: initial guess ``(size, size)`` for the conjugate gradients (e.g. the previous
            kernel), or ``None`` for zeros.

    Returns:
        float64 ``(size, size)`` in true convolution orientation (centre ``(size//2, size//2)``),
        unconstrained: it may have negative entries and does not sum to 1.

    Raises:
        ConfigError / ImageError: bad ``size``, ``gamma_rel`` or array shapes; ImageError also for
            an all-zero latent gradient (nothing to fit).
    """
    size = _integer(size, "size", 1)
    gamma_rel = _number(gamma_rel, "gamma_rel", strict=False)
    if len(latent_grads) != len(blurred_grads) or not latent_grads:
        raise ImageError(f"latent_grads: {len(latent_grads)} maps for {len(blurred_grads)} "
                         "blurred maps; give the same positive number")
    shape = np.shape(latent_grads[0])
    for name, maps in (("latent_grads", latent_grads), ("blurred_grads", blurred_grads)):
        for m in maps:
            if np.ndim(m) != 2 or np.shape(m) != shape:
                raise ImageError(f"{name}: every map must be 2-D of shape {shape}, got "
                                 f"{np.shape(m)}")
    if min(shape) < 2 * size - 1:
        raise ImageError(f"latent_grads: maps of shape {shape} are too small for a {size}x{size} "
                         f"kernel (need sides >= {2 * size - 1})")
    auto = 0.0
    cross = 0.0
    for x, y in zip(latent_grads, blurred_grads):
        xf = _rfft2(np.asarray(x, dtype=np.float64))
        yf = _rfft2(np.asarray(y, dtype=np.float64))
        auto = auto + (xf.real ** 2 + xf.imag ** 2)
        cross = cross + np.conj(xf) * yf
    r = _irfft2(np.asarray(auto, dtype=np.complex128), shape)
    c = _irfft2(cross, shape)
    r0 = float(r[0, 0])
    if not r0 > 0:
        raise ImageError("latent_grads: all zero; the latent image has no edges to fit a kernel to")
    table = _lags(r, size)
    half = size // 2
    off = np.arange(size) - half
    rhs = c[np.ix_(off % shape[0], off % shape[1])]
    return _solve_toeplitz(table, rhs, gamma_rel * r0, start)


def clean_kernel(kernel: np.ndarray, *, threshold: float = 0.05,
                 min_component: float = 0.1) -> np.ndarray:
    """Turn an unconstrained least-squares kernel into a blur kernel (Pan et al.'s code).

    Entries below ``threshold * max`` (and all negatives) are zeroed; among the 8-connected
    components of the rest, those holding less than ``min_component`` of the remaining mass are
    removed, except the heaviest, which is always kept; the result is normalised to sum 1.

    Args:
        kernel: float ``(kh, kw)`` with a positive maximum.
        threshold: in [0, 1).
        min_component: in [0, 1]; 1 keeps only the heaviest component.

    Returns:
        float32 ``(kh, kw)``: non-negative, sums to 1.

    Raises:
        KernelError: a kernel that is not 2-D, non-finite or has no positive entry.
        ConfigError: ``threshold`` / ``min_component`` out of range.
    """
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2 or k.size == 0 or not np.isfinite(k).all():
        raise KernelError(f"kernel: must be a finite non-empty 2-D array, got shape {k.shape}")
    threshold = _number(threshold, "threshold", strict=False, maximum=1.0)
    if threshold >= 1.0:
        raise ConfigError(f"threshold: must be < 1, got {threshold!r}")
    min_component = _number(min_component, "min_component", strict=False, maximum=1.0)
    peak = float(k.max())
    if not peak > 0:
        raise KernelError(f"kernel: has no positive entry (max {peak:.4g}); cannot make a blur "
                          "kernel of it")
    k = np.where(k >= threshold * peak, k, 0.0)
    labels, n = _label_components(k > 0)
    if n > 1:
        mass = scipy.ndimage.sum_labels(k, labels, index=np.arange(1, n + 1))
        keep = mass >= min_component * mass.sum()
        keep[int(np.argmax(mass))] = True
        k = np.where(keep[np.maximum(labels - 1, 0)] & (labels > 0), k, 0.0)
    return (k / k.sum()).astype(np.float32)


# --------------------------------------------------------------------------------------------
# pyramid
# --------------------------------------------------------------------------------------------

def pyramid(kernel_size: int, ratio: float = SCALE_RATIO,
            min_kernel: int = MIN_KERNEL) -> list[tuple[float, int]]:
    """Levels of the coarse-to-fine pyramid, coarsest first, as ``(scale, kernel side)``.

    Level ``n`` has scale ``ratio^n`` and kernel side ``ceil(kernel_size * ratio^n)`` rounded up
    to odd; there are ``floor(log(min_kernel / kernel_size) / log(ratio)) + 1`` levels (Pan et
    al.'s code), the finest being ``(1.0, kernel_size)``.
    """
    kernel_size = _integer(kernel_size, "kernel_size", 1)
    ratio = _number(ratio, "ratio", maximum=1.0)
    if ratio >= 1.0:
        raise ConfigError(f"ratio: must be < 1, got {ratio!r}")
    min_kernel = _integer(min_kernel, "min_kernel", 1)
    n = max(int(math.floor(math.log(min_kernel / kernel_size) / math.log(ratio))), 0) \
        if kernel_size > min_kernel else 0
    levels = []
    for i in range(n, -1, -1):
        s = ratio ** i
        k = math.ceil(kernel_size * s - 1e-9)
        k += 1 - k % 2 if i > 0 else 0
        levels.append((s, k if i > 0 else kernel_size))
    return levels


def _downscale(grey: np.ndarray, scale: float) -> np.ndarray:
    """Anti-aliased bilinear resize of ``(H, W)`` by ``scale <= 1`` (``torch`` interpolate)."""
    if scale == 1.0:
        return grey
    h, w = grey.shape
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    x = torch.from_numpy(np.ascontiguousarray(grey, dtype=np.float32))[None, None]
    y = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return y[0, 0].numpy()


def _resize_kernel(kernel: np.ndarray, factor: float, size: int) -> np.ndarray:
    """Scale a kernel's support by ``factor`` about its centre onto a ``size x size`` grid
    (bilinear), clip negatives, normalise to sum 1."""
    c_in = kernel.shape[0] // 2
    c_out = size // 2
    coords = (np.arange(size) - c_out) / factor + c_in
    rr, cc = np.meshgrid(coords, coords, indexing="ij")
    k = scipy.ndimage.map_coordinates(kernel.astype(np.float64), [rr, cc], order=1,
                                      mode="constant", cval=0.0)
    k = np.maximum(k, 0.0)
    total = k.sum()
    if not total > 0:  # pragma: no cover - a kernel always covers its own centre region
        k = np.zeros((size, size))
        k[c_out, c_out] = 1.0
        total = 1.0
    return (k / total).astype(np.float32)


def _initial_kernel(size: int) -> np.ndarray:
    """Pan et al.'s initial kernel: two horizontal neighbours at the centre, 1/2 each."""
    k = np.zeros((size, size), dtype=np.float32)
    c = size // 2
    if size >= 2:
        k[c, c - 1:c + 1] = 0.5
    else:
        k[0, 0] = 1.0
    return k


# --------------------------------------------------------------------------------------------
# the estimator
# --------------------------------------------------------------------------------------------

class L0Blind:
    """Classical blind deblurring with L0 intensity and gradient priors, coarse to fine (Pan et
    al. 2014, Xu et al. 2013); see the module docstring.

    ``kind = "uniform"``: :meth:`estimate_kernel` returns a true convolution kernel
    ``(kernel_size, kernel_size)`` and :meth:`deblur` deconvolves with it.

    Args:
        kernel_size: odd side of the estimated kernel, ``>= 3``; should exceed the blur's extent
            (default 31).
        lambda_grad: initial weight of the gradient L0 prior (Pan et al.: 4e-3); divided by
            :data:`LAMBDA_DECAY` after each alternation, down to ``lambda_min``.
        lambda_min: floor of the decaying weights (:data:`LAMBDA_MIN`).
        lambda_intensity: initial weight of the intensity L0 prior; 0 (default) uses gradients
            only (Xu et al.). Pan et al. use 4e-3 for text; on the natural-image tuning set it
            measured slightly worse (mean ratio 1.61 against 1.49).
        iterations: alternations of latent and kernel steps per pyramid level.
        gamma_rel: Tikhonov weight of the kernel step relative to ``R(0)`` (see
            :func:`kernel_least_squares`).
        threshold, min_component: kernel clean-up (see :func:`clean_kernel`); ``threshold``
            ``None`` (default) means :data:`THRESHOLD` on a tapered canvas and
            :data:`THRESHOLD_CIRCULAR` on a periodic image; ``min_component`` Pan et al.'s 0.1.
        boundary: ``"auto"`` (default: ``"circular"`` if :func:`is_periodic`, else ``"taper"``),
            ``"taper"`` (edge-tapered padding, for photos) or ``"circular"`` (the image is taken
            as periodic). Applies to the kernel estimation; the final deconvolution always
            tapers (:func:`deblurkit.deconv.hyper_laplacian` default).
        kappa: continuation factor of the latent step's penalties.
        max_side: the kernel is estimated on a window of at most ``max_side`` px per side.
        deconv_weight: ``weight`` of the final :func:`deblurkit.deconv.hyper_laplacian`.
    """

    kind = "uniform"

    def __init__(self, kernel_size: int = 31, *, lambda_grad: float = 4e-3,
                 lambda_min: float = LAMBDA_MIN, lambda_intensity: float = 0.0,
                 iterations: int = 5, gamma_rel: float = GAMMA_REL,
                 threshold: float | None = None, min_component: float = 0.1,
                 kappa: float = 2.0, boundary: str = "auto", max_side: int = 400,
                 deconv_weight: float = HYPER_LAPLACIAN_WEIGHT) -> None:
        kernel_size = _integer(kernel_size, "kernel_size", 3)
        if kernel_size % 2 == 0:
            raise ConfigError(f"kernel_size: must be odd, got {kernel_size}")
        self.kernel_size = kernel_size
        self.lambda_grad = _number(lambda_grad, "lambda_grad")
        self.lambda_min = _number(lambda_min, "lambda_min", maximum=self.lambda_grad)
        self.lambda_intensity = _number(lambda_intensity, "lambda_intensity", strict=False)
        self.iterations = _integer(iterations, "iterations", 1)
        self.gamma_rel = _number(gamma_rel, "gamma_rel", strict=False)
        self.threshold = None if threshold is None else \
            _number(threshold, "threshold", strict=False, maximum=1.0)
        if self.threshold == 1.0:
            raise ConfigError("threshold: must be < 1, got 1.0")
        if boundary not in BOUNDARIES:
            raise ConfigError(f"boundary: must be one of {', '.join(BOUNDARIES)}, got "
                              f"{boundary!r}")
        self.boundary = boundary
        self.min_component = _number(min_component, "min_component", strict=False, maximum=1.0)
        self.kappa = _number(kappa, "kappa", minimum=1.0)
        self.max_side = _integer(max_side, "max_side", 2 * kernel_size + 1)
        self.deconv_weight = _number(deconv_weight, "deconv_weight")

    # -- public API ------------------------------------------------------------------------

    def estimate_kernel(self, image: np.ndarray) -> np.ndarray:
        """The blur kernel of ``image`` (numpy ``(H, W)`` / ``(H, W, C)``, C = 1 or 3, float in
        [0, 1], both sides at least ``2 * kernel_size + 1``): float32 ``(kernel_size,
        kernel_size)`` in true convolution orientation, non-negative, summing to 1, centred by
        its centre of mass."""
        arr = check_image(image, "image", min_side=2 * self.kernel_size + 1)
        grey = _estimation_window(to_grey(arr), self.max_side)
        return self._estimate(grey)

    def deblur(self, image: np.ndarray) -> np.ndarray:
        """Estimate the kernel, then deconvolve every channel (hyper-Laplacian prior); returns
        float32 of the input's shape, clipped to [0, 1] as the last step."""
        arr = check_image(image, "image", min_side=2 * self.kernel_size + 1)
        kernel = self._estimate(_estimation_window(to_grey(arr), self.max_side))
        return self.deconvolve(image, kernel)

    def deconvolve(self, image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        """Non-blind step of :meth:`deblur`: :func:`deblurkit.deconv.hyper_laplacian` of each
        channel with ``kernel`` (channels that are identical are solved once), clipped."""
        arr = check_image(image, "image")
        if arr.shape[2] == 3 and np.array_equal(arr[..., 0], arr[..., 1]) \
                and np.array_equal(arr[..., 0], arr[..., 2]):
            out = np.repeat(hyper_laplacian(arr[..., :1], kernel, weight=self.deconv_weight),
                            3, axis=2)
        else:
            out = hyper_laplacian(arr, kernel, weight=self.deconv_weight)
        out = np.clip(out, 0.0, 1.0).astype(np.float32)
        return out.reshape(image.shape)

    # -- the coarse-to-fine loop -----------------------------------------------------------

    def _estimate(self, grey: np.ndarray) -> np.ndarray:
        boundary = self.boundary
        if boundary == "auto":
            boundary = "circular" if is_periodic(grey) else "taper"
        threshold = self.threshold
        if threshold is None:
            threshold = THRESHOLD_CIRCULAR if boundary == "circular" else THRESHOLD
        levels = pyramid(self.kernel_size)
        lam_g, lam_i = self.lambda_grad, self.lambda_intensity
        kernel = None
        prev_scale = None
        for scale, size in levels:
            if kernel is None:
                kernel = _initial_kernel(size)
            else:
                kernel = _resize_kernel(kernel, scale / prev_scale, size)
            ys = _downscale(grey, scale)
            kernel, lam_g, lam_i = self._level(ys, kernel, lam_g, lam_i, boundary, threshold)
            kernel = center_kernel(kernel)
            prev_scale = scale
        return kernel

    def _level(self, blurred: np.ndarray, kernel: np.ndarray, lam_g: float, lam_i: float,
               boundary: str, threshold: float) -> tuple[np.ndarray, float, float]:
        size = kernel.shape[0]
        for _ in range(self.iterations):
            canvas, k_otf, _ = _canvas(blurred, kernel, boundary)
            latent = _l0_latent(canvas, k_otf, lam_g, lam_i, self.kappa, MU_MAX)
            lh, lv = _grad(latent)
            bh, bv = _grad(canvas)
            raw = kernel_least_squares((lh, lv), (bh, bv), size, gamma_rel=self.gamma_rel,
                                       start=kernel)
            if raw.max() > 0:  # else keep the previous kernel (no edges at this level)
                kernel = clean_kernel(raw, threshold=threshold, min_component=self.min_component)
            lam_g = max(lam_g / LAMBDA_DECAY, self.lambda_min)
            if lam_i > 0:
                lam_i = max(lam_i / LAMBDA_DECAY, self.lambda_min)
        return kernel, lam_g, lam_i


def _estimation_window(grey: np.ndarray, side: int) -> np.ndarray:
    """The ``min(H, side) x min(W, side)`` window of ``grey`` with the largest sum of gradient
    magnitudes (searched on a grid of steps of ``side // 8``); the whole image if it fits."""
    h, w = grey.shape
    wh, ww = min(h, side), min(w, side)
    if (wh, ww) == (h, w):
        return grey
    gh, gv = np.abs(np.diff(grey, axis=1)), np.abs(np.diff(grey, axis=0))
    energy = np.zeros((h, w), dtype=np.float64)
    energy[:, :-1] += gh
    energy[:-1, :] += gv
    integral = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    step = max(1, side // 8)
    tops = sorted(set(list(range(0, h - wh + 1, step)) + [h - wh]))
    lefts = sorted(set(list(range(0, w - ww + 1, step)) + [w - ww]))
    t = np.array(tops)[:, None]
    l_ = np.array(lefts)[None, :]
    sums = integral[t + wh, l_ + ww] - integral[t, l_ + ww] - integral[t + wh, l_] + integral[t, l_]
    i, j = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return np.ascontiguousarray(grey[tops[i]:tops[i] + wh, lefts[j]:lefts[j] + ww])

