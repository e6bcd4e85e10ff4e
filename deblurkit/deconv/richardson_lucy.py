"""Richardson-Lucy deconvolution (Richardson 1972, Lucy 1974), batched in torch.

The multiplicative update for Poisson-distributed data ``B ~ Poisson(K * L)``::

    L <- L * ( K^T ( B / (K * L + 1e-12) ) )

where ``K^T`` is correlation with the kernel (convolution with the mirrored kernel). With
``boundary="skimage"`` the iteration is exactly ``skimage.restoration.richardson_lucy(image, psf,
num_iter, clip=False, filter_epsilon=eps)``: zero boundary (``scipy.signal.convolve(...,
mode="same")``), start at 0.5 everywhere, convolution with ``np.flip(psf)`` in ``"same"`` mode
for the correction (for an even-sized kernel that is one pixel off the true adjoint, as in
scikit-image; scipy's ``"same"`` puts an even kernel's centre at ``(kh - 1) // 2``). The other
boundaries (``"taper"``, ``"reflect"``, ``"circular"``) run the iteration on the padded canvas of
:func:`deblurkit.deconv._boundary.extend` with circular convolution (centre ``(kh // 2, kw // 2)``),
start from the blurred image and crop the result.

All ``B x C`` planes are processed at once; each convolution is an FFT with the kernel's
transfer function computed once (two transforms per convolution, where scipy's ``fftconvolve``
in scikit-image takes three), or, for small kernels on a GPU, a grouped ``conv2d``.
"""

from __future__ import annotations

import scipy.fft
import torch
import torch.nn.functional as F

from ..errors import ConfigError, ImageError
from . import _fft as fft
from ._boundary import BOUNDARIES, as_image, as_kernel, check_boundary, count, extend, positive

__all__ = ["richardson_lucy", "RL_BOUNDARIES", "DIRECT_MAX_KERNEL_AREA"]

#: Boundaries accepted by :func:`richardson_lucy`.
RL_BOUNDARIES = ("skimage",) + BOUNDARIES

#: ``method="auto"`` on a GPU convolves directly (grouped ``conv2d``) when ``kh * kw`` is at most
#: this, else by FFT (a heuristic, not measured here: no GPU was available). On the CPU ``"auto"``
#: always uses the FFT: measured on the 2-core x86 CPU (1280x720 RGB float32, torch 2.13, one
#: thread, 5 iterations), grouped conv2d took 2.0-2.7 s for 3x3 to 7x7 kernels against 0.5-0.8 s
#: by FFT (torch has no fast depthwise convolution on the CPU).
DIRECT_MAX_KERNEL_AREA = 25

# scikit-image's constant guarding the division
_EPS = 1e-12


@torch.no_grad()
def richardson_lucy(blurred, kernel, *, iterations: int = 30, eps: float | None = None,
                    boundary: str = "taper", method: str = "auto"):
    """Richardson-Lucy deconvolution.

    Args:
        blurred: torch ``(B, C, H, W)`` float32/float64 on any device, or numpy ``(H, W)`` /
            ``(H, W, C)``; non-negative data (photon counts scaled to ``[0, 1]``). Negative values
            are refused except with ``boundary="skimage"``, which, like scikit-image, runs on
            anything (and diverges where noise makes the data negative).
        kernel: true convolution kernel, finite, non-negative, sum 1: numpy / torch ``(kh, kw)``
            shared by the batch or torch ``(B, kh, kw)`` one per image; at most the image's size.
        iterations: number of updates ``>= 1`` (the regularisation: more sharpens more and
            amplifies noise more).
        eps: scikit-image's ``filter_epsilon``: where the re-blurred estimate is below ``eps`` the
            ratio ``B / (K * L)`` is set to 0. ``None`` (default) or 0 disables it.
        boundary: ``"taper"`` (default), ``"reflect"``, ``"circular"`` or ``"skimage"`` (zero
            boundary, scikit-image's exact iteration) -- see the module docstring.
        method: ``"fft"``, ``"direct"`` (grouped ``conv2d``) or ``"auto"`` (FFT on the CPU;
            on a GPU direct when ``kh * kw <= DIRECT_MAX_KERNEL_AREA``). Same result to float
            rounding.

    Returns:
        the latent image, same shape, dtype and device as ``blurred`` (numpy in, numpy out);
        non-negative for non-negative data, not clipped above.

    Raises:
        ImageError, KernelError, ConfigError: one line naming the bad argument and its value.
    """
    x, restore = as_image(blurred)
    k = as_kernel(kernel, x)
    iterations = count(iterations, "iterations")
    if eps is not None and eps != 0:
        eps = positive(eps, "eps")
    check_boundary(boundary, RL_BOUNDARIES)
    if method not in ("auto", "fft", "direct"):
        raise ConfigError(f"method: must be one of auto, fft, direct, got {method!r}")
    kh, kw = k.shape[-2:]
    if method == "auto":
        small = kh * kw <= DIRECT_MAX_KERNEL_AREA
        method = "direct" if small and x.device.type != "cpu" else "fft"

    if boundary != "skimage":
        negative = x.detach() < 0
        if bool(negative.any()):
            raise ImageError(
                f"blurred: has {int(negative.sum())} negative values (min "
                f"{float(x.detach().min()):.4g}); Richardson-Lucy needs non-negative data "
                "(clip to [0, 1] first, or use boundary='skimage' for scikit-image's behaviour)")
    if boundary == "skimage":
        data = x
        forward, backward = _zero_boundary_ops(k, x.shape, method)
        estimate = torch.full_like(x, 0.5)
        crop = None
    else:
        ext = extend(x, k, boundary)
        data = ext.image
        forward, backward = _circular_ops(k, ext.otf, data.shape, method)
        estimate = data.clone()
        crop = ext.crop

    for _ in range(iterations):
        reblurred = forward(estimate).add_(_EPS)
        if eps:
            ratio = torch.where(reblurred < eps, torch.zeros_like(reblurred), data / reblurred)
        else:
            ratio = torch.div(data, reblurred, out=reblurred)
        estimate.mul_(backward(ratio))
    return restore(estimate if crop is None else crop(estimate))


# --------------------------------------------------------------------------------------------
# convolution operators
# --------------------------------------------------------------------------------------------

def _grouped_correlation(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Valid correlation of padded planes ``(B, C, Hp, Wp)`` with ``weight`` ``(1|B, kh, kw)``."""
    b, c, h, w = x.shape
    kh, kw = weight.shape[-2:]
    if weight.shape[0] == 1:
        out = F.conv2d(x.reshape(b * c, 1, h, w), weight[:, None])
    else:
        wt = weight[:, None].expand(b, c, kh, kw).reshape(b * c, 1, kh, kw)
        out = F.conv2d(x.reshape(1, b * c, h, w), wt, groups=b * c)
    return out.reshape(b, c, out.shape[-2], out.shape[-1])


def _zero_boundary_ops(k: torch.Tensor, shape: torch.Size, method: str):
    """``scipy.signal.convolve(x, k, "same")`` and ``convolve(x, flip(k), "same")`` per plane."""
    h, w = shape[-2:]
    kh, kw = k.shape[-2:]
    mirror = torch.flip(k, dims=(-2, -1))
    if method == "direct":
        # 'same' output i reads x[i + (kh-1)//2 - j] k[j]: pad kh//2 above, (kh-1)//2 below.
        pad = (kw // 2, (kw - 1) // 2, kh // 2, (kh - 1) // 2)

        def forward(x: torch.Tensor) -> torch.Tensor:
            return _grouped_correlation(F.pad(x, pad), mirror)

        def backward(x: torch.Tensor) -> torch.Tensor:
            return _grouped_correlation(F.pad(x, pad), k)

        return forward, backward

    # The 'same' window [s, s + h) of the linear convolution (s = (kh - 1) // 2) is free of
    # wrap-around in a circular convolution of any length >= h + kh // 2.
    fh = scipy.fft.next_fast_len(h + kh // 2, real=True)
    fw = scipy.fft.next_fast_len(w + kw // 2, real=True)
    k_f = fft.rfft2(k, s=(fh, fw))[:, None]
    m_f = fft.rfft2(mirror, s=(fh, fw))[:, None]
    top, left = (kh - 1) // 2, (kw - 1) // 2

    def apply(x: torch.Tensor, tf: torch.Tensor) -> torch.Tensor:
        full = fft.irfft2(fft.rfft2(x, s=(fh, fw)) * tf, s=(fh, fw), overwrite=True)
        return full[..., top:top + h, left:left + w]

    return (lambda x: apply(x, k_f)), (lambda x: apply(x, m_f))


def _circular_ops(k: torch.Tensor, k_otf: torch.Tensor, shape: torch.Size, method: str):
    """Circular convolution with ``k`` (centre ``(kh//2, kw//2)``) and its adjoint (correlation)."""
    h, w = shape[-2:]
    kh, kw = k.shape[-2:]
    if method == "direct":
        mirror = torch.flip(k, dims=(-2, -1))
        rows_f = torch.arange(-((kh - 1) // 2), h + kh // 2, device=k.device).remainder(h)
        cols_f = torch.arange(-((kw - 1) // 2), w + kw // 2, device=k.device).remainder(w)
        rows_b = torch.arange(-(kh // 2), h + (kh - 1) // 2, device=k.device).remainder(h)
        cols_b = torch.arange(-(kw // 2), w + (kw - 1) // 2, device=k.device).remainder(w)

        def forward(x: torch.Tensor) -> torch.Tensor:
            return _grouped_correlation(x.index_select(-2, rows_f).index_select(-1, cols_f), mirror)

        def backward(x: torch.Tensor) -> torch.Tensor:
            return _grouped_correlation(x.index_select(-2, rows_b).index_select(-1, cols_b), k)

        return forward, backward

    conj = torch.conj(k_otf)

    def forward_f(x: torch.Tensor) -> torch.Tensor:
        return fft.irfft2(fft.rfft2(x) * k_otf, s=(h, w), overwrite=True)

    def backward_f(x: torch.Tensor) -> torch.Tensor:
        return fft.irfft2(fft.rfft2(x) * conj, s=(h, w), overwrite=True)

    return forward_f, backward_f
