"""Shared plumbing of the non-blind deconvolution solvers: argument checks, FFT transfer functions
and boundary handling.

Fourier-domain deconvolution (survey eq. 4, Sahu, Lenka, Sa, arXiv 1907.10128) assumes the blur is
*circular*. A real photo is not periodic: its left and right (top and bottom) edges do not match,
and pixels near the border were blurred with scene content outside the frame. Deconvolving it as
if it were periodic rings from every border. :func:`extend` avoids that by solving on a larger,
smoothly periodic canvas and cropping back:

* ``"taper"`` (default): pad by the kernel size on each side by repeating the edge pixels, then
  blend the padding towards its own circular blur with :func:`edgetaper` (MATLAB's ``edgetaper``),
  :data:`TAPER_PASSES` times, as in Krishnan & Fergus's code for "Fast Image Deconvolution using
  Hyper-Laplacian Priors" (NIPS 2009; they pad by half the kernel and taper four times). The
  canvas then wraps around smoothly and is consistent with the circular blur model near its
  seam, so the solver has no discontinuity to ring on.
* ``"reflect"``: the same, but the padding mirrors the image (numpy ``"symmetric"``).
* ``"circular"``: no padding; the image is taken as periodic (correct for a circularly blurred
  image, e.g. a synthetic test).

Canvas sizes are rounded up to fast FFT lengths (``scipy.fft.next_fast_len``); the extra rows and
columns go to the bottom and right padding.

Kernels follow ``docs/CONVENTIONS.md``: true convolution orientation with the centre at
``(kh // 2, kw // 2)``, as :func:`deblurkit.blur.convolve.blur`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.fft
import torch

from ..blur.kernels import validate_kernel, validate_kernel_tensor
from ..errors import ConfigError, ImageError, KernelError
from . import _fft as fft

#: Boundary handling of the FFT solvers (see the module docstring).
BOUNDARIES = ("taper", "reflect", "circular")

#: How many times :func:`extend` applies :func:`edgetaper`. Krishnan & Fergus's code uses 4; on
#: natural images blurred by 25 px camera-shake kernels (reflect boundary, 0 and 1% noise) two
#: passes gave the same border PSNR as four (within 0.05 dB) at half the cost.
TAPER_PASSES = 2

Restore = Callable[[torch.Tensor], "torch.Tensor | np.ndarray"]


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------

def as_image(image: object, name: str = "blurred") -> tuple[torch.Tensor, Restore]:
    """Check an image and return ``(x, restore)``.

    ``image``: torch ``(B, C, H, W)`` float32/float64 (any device), or numpy ``(H, W)`` /
    ``(H, W, C)`` float32/float64. ``x`` is the ``(B, C, H, W)`` tensor (a numpy image becomes a
    batch of one); ``restore`` maps a ``(B, C, H, W)`` result back to the input's kind (numpy of
    the input's shape and dtype, or the tensor unchanged).

    Raises:
        ImageError: naming ``name``, for a wrong type, shape, dtype, an empty or non-finite image.
    """
    if isinstance(image, np.ndarray):
        if image.dtype not in (np.float32, np.float64):
            raise ImageError(f"{name}: numpy image must be float32 or float64 in [0, 1], "
                             f"got dtype {image.dtype}")
        if image.ndim not in (2, 3):
            raise ImageError(f"{name}: numpy image must be (H, W) or (H, W, C), "
                             f"got shape {image.shape}")
        if image.size == 0:
            raise ImageError(f"{name}: is empty (shape {image.shape})")
        t = torch.from_numpy(np.ascontiguousarray(image))
        x = t[None, None] if image.ndim == 2 else t.permute(2, 0, 1)[None]
        ndim, dtype = image.ndim, image.dtype

        def restore(y: torch.Tensor) -> np.ndarray:
            y = y.detach().cpu()[0]
            out = y[0] if ndim == 2 else y.permute(1, 2, 0)
            return np.ascontiguousarray(out.numpy(), dtype=dtype)

        _check_finite(x, name)
        return x, restore
    if isinstance(image, torch.Tensor):
        if image.dtype not in (torch.float32, torch.float64):
            raise ImageError(f"{name}: tensor must be float32 or float64, got dtype {image.dtype}")
        if image.ndim != 4:
            raise ImageError(f"{name}: tensor must be (B, C, H, W), got shape "
                             f"{tuple(image.shape)}")
        if image.numel() == 0:
            raise ImageError(f"{name}: is empty (shape {tuple(image.shape)})")
        _check_finite(image, name)
        return image, (lambda y: y)
    raise ImageError(f"{name}: must be a torch tensor (B, C, H, W) or a numpy array (H, W[, C]), "
                     f"got {type(image).__name__}")


def _check_finite(x: torch.Tensor, name: str) -> None:
    bad = int((~torch.isfinite(x.detach())).sum())
    if bad:
        raise ImageError(f"{name}: has {bad} non-finite values (NaN or inf)")


def as_kernel(kernel: object, x: torch.Tensor, name: str = "kernel") -> torch.Tensor:
    """Check a blur kernel for the image batch ``x`` and return it as ``(1 or B, kh, kw)``.

    ``kernel``: numpy ``(kh, kw)``, torch ``(kh, kw)`` (shared by the batch) or torch
    ``(B, kh, kw)`` (one per image); finite, non-negative, summing to 1 within 1e-3
    (:func:`deblurkit.blur.kernels.validate_kernel`), and no larger than the image. Returned with
    ``x``'s dtype and device (the autograd graph of a tensor kernel is kept).

    Raises:
        KernelError: naming ``name`` and the value, for any violation.
    """
    if isinstance(kernel, np.ndarray):
        validate_kernel(kernel, name)      # checks; its float32 copy would lose float64 precision
        k = torch.from_numpy(np.maximum(np.asarray(kernel, dtype=np.float64), 0.0))[None]
    elif isinstance(kernel, torch.Tensor):
        validate_kernel_tensor(kernel, name)
        k = kernel if kernel.ndim == 3 else kernel[None]
    else:
        raise KernelError(f"{name}: must be a numpy array (kh, kw) or a torch tensor (kh, kw) / "
                          f"(B, kh, kw), got {type(kernel).__name__}")
    if k.shape[0] not in (1, x.shape[0]):
        raise KernelError(f"{name}: {k.shape[0]} kernels for a batch of {x.shape[0]} images; "
                          "give one (kh, kw) kernel or one per image")
    kh, kw = k.shape[-2:]
    h, w = x.shape[-2:]
    if kh > h or kw > w:
        raise KernelError(f"{name}: {kh}x{kw} kernel is larger than the {h}x{w} image (HxW)")
    return k.to(device=x.device, dtype=x.dtype)


def check_weight(value: object, name: str, batch: int | None = None,
                 like: torch.Tensor | None = None) -> "float | torch.Tensor":
    """A regularisation weight: a finite real number ``> 0``.

    With ``batch`` and ``like`` given, a torch tensor of shape ``()`` or ``(batch,)`` with
    positive finite entries is also accepted (e.g. a learned weight) and returned as
    ``(batch or 1, 1, 1, 1)`` on ``like``'s device and dtype.

    Raises:
        ConfigError: naming ``name`` and the value.
    """
    if isinstance(value, torch.Tensor) and batch is not None and like is not None:
        if value.ndim > 1 or (value.ndim == 1 and value.shape[0] not in (1, batch)):
            raise ConfigError(f"{name}: tensor weight must have shape () or ({batch},), got "
                              f"{tuple(value.shape)}")
        v = value.detach()
        if not bool(torch.isfinite(v).all()) or not bool((v > 0).all()):
            raise ConfigError(f"{name}: must be finite and > 0, got {v.flatten().tolist()}")
        return value.to(device=like.device, dtype=like.dtype).reshape(-1, 1, 1, 1)
    return positive(value, name)


def positive(value: object, name: str) -> float:
    """A finite real number ``> 0`` as a float, or :class:`ConfigError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(float(value)) or float(value) <= 0:
        raise ConfigError(f"{name}: must be a finite number > 0, got {value!r}")
    return float(value)


def count(value: object, name: str, minimum: int = 1) -> int:
    """An integer ``>= minimum``, or :class:`ConfigError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{name}: must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_boundary(boundary: object, allowed: tuple[str, ...] = BOUNDARIES) -> str:
    """``boundary`` if it is one of ``allowed``, else :class:`ConfigError`."""
    if not isinstance(boundary, str) or boundary not in allowed:
        raise ConfigError(f"boundary: must be one of {', '.join(allowed)}, got {boundary!r}")
    return boundary


# --------------------------------------------------------------------------------------------
# transfer functions
# --------------------------------------------------------------------------------------------

def otf(kernel: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Optical transfer function: ``rfft2`` of the kernel placed on an ``(H, W)`` canvas with its
    centre ``(kh // 2, kw // 2)`` at the origin (MATLAB's ``psf2otf``).

    ``kernel``: ``(N, kh, kw)`` real. Returns complex ``(N, 1, H, W // 2 + 1)``, so that
    ``irfft2(rfft2(x) * otf)`` is the circular convolution of ``x`` ``(N or B, C, H, W)`` with the
    kernel (the same alignment as :func:`deblurkit.blur.convolve.blur`).
    """
    n, kh, kw = kernel.shape
    canvas = kernel.new_zeros((n, shape[0], shape[1]))
    canvas[:, :kh, :kw] = kernel
    canvas = torch.roll(canvas, shifts=(-(kh // 2), -(kw // 2)), dims=(-2, -1))
    return fft.rfft2(canvas)[:, None]


def gradient_otfs(shape: tuple[int, int], dtype: torch.dtype,
                  device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Transfer functions ``(Dx, Dy)`` of the circular forward differences
    ``dx[i, j] = x[i, j+1] - x[i, j]`` and ``dy[i, j] = x[i+1, j] - x[i, j]`` on an ``(H, W)``
    canvas, as complex ``(H, W // 2 + 1)`` (rfft2 layout): ``Dx[., l] = exp(2 pi i l / W) - 1``.
    """
    h, w = shape
    real = torch.float64
    fx = torch.arange(w // 2 + 1, dtype=real, device=device) * (2 * math.pi / w)
    fy = torch.fft.fftfreq(h, dtype=real, device=device) * (2 * math.pi)
    dx = torch.polar(torch.ones_like(fx), fx) - 1
    dy = torch.polar(torch.ones_like(fy), fy) - 1
    cdtype = torch.complex64 if dtype == torch.float32 else torch.complex128
    return (dx[None, :].expand(h, -1).to(cdtype), dy[:, None].expand(-1, w // 2 + 1).to(cdtype))


def grad_x(x: torch.Tensor) -> torch.Tensor:
    """Circular forward difference along width: ``x[..., j+1] - x[..., j]``."""
    return torch.roll(x, -1, -1) - x


def grad_y(x: torch.Tensor) -> torch.Tensor:
    """Circular forward difference along height: ``x[..., i+1, :] - x[..., i, :]``."""
    return torch.roll(x, -1, -2) - x


def grad_x_t(g: torch.Tensor) -> torch.Tensor:
    """Adjoint of :func:`grad_x`: ``g[..., j-1] - g[..., j]``."""
    return torch.roll(g, 1, -1) - g


def grad_y_t(g: torch.Tensor) -> torch.Tensor:
    """Adjoint of :func:`grad_y`."""
    return torch.roll(g, 1, -2) - g


# --------------------------------------------------------------------------------------------
# boundary handling
# --------------------------------------------------------------------------------------------

def edgetaper(image: torch.Tensor, kernel: torch.Tensor,
              kernel_otf: torch.Tensor | None = None) -> torch.Tensor:
    """MATLAB's ``edgetaper``: blend the image with its circular blur near the canvas edges.

    ``J = alpha * I + (1 - alpha) * (K (*) I)`` where ``(*)`` is circular convolution and
    ``alpha = (1 - a_y) (1 - a_x)^T`` with ``a_y``, ``a_x`` the circular autocorrelations of the
    kernel's row and column projections, normalised to peak 1: ``alpha`` is 0 on the canvas edge
    and rises to 1 about one kernel size inside. Near the edges ``J`` is (close to) a circular
    blur, which the circular deconvolution inverts without ringing.

    Args:
        image: ``(B, C, H, W)`` float.
        kernel: ``(1 or B, kh, kw)`` blur kernel.
        kernel_otf: :func:`otf` of ``kernel`` at ``(H, W)``, if already computed.

    Returns:
        ``(B, C, H, W)`` of the image's dtype; a convex combination of the image and its blur, so
        values stay in the image's range.
    """
    h, w = image.shape[-2:]
    if kernel_otf is None:
        kernel_otf = otf(kernel, (h, w))
    alpha = (1 - _autocorrelation(kernel.sum(-1), h))[:, :, None] \
        * (1 - _autocorrelation(kernel.sum(-2), w))[:, None, :]
    alpha = alpha[:, None]                                              # (N, 1, H, W)
    blurred = fft.irfft2(fft.rfft2(image) * kernel_otf, s=(h, w), overwrite=True)
    return torch.lerp(blurred, image, alpha)


def _autocorrelation(projection: torch.Tensor, n: int) -> torch.Tensor:
    """Circular autocorrelation of ``(N, k)`` projections at length ``n``, peak normalised to 1."""
    spectrum = torch.fft.rfft(projection, n=n)
    z = torch.fft.irfft(spectrum.real ** 2 + spectrum.imag ** 2, n=n)
    return z / z.amax(dim=-1, keepdim=True)


@dataclass(frozen=True)
class Extension:
    """A blurred image on its padded canvas, where the original lies in it, and the kernel's
    transfer function at the canvas size."""

    image: torch.Tensor
    otf: torch.Tensor
    top: int
    left: int
    height: int
    width: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.image.shape[-2], self.image.shape[-1])

    def crop(self, y: torch.Tensor) -> torch.Tensor:
        """The original ``(H, W)`` region of a canvas-sized ``(..., Hp, Wp)`` tensor."""
        return y[..., self.top:self.top + self.height, self.left:self.left + self.width]


def extend(blurred: torch.Tensor, kernel: torch.Tensor, boundary: str) -> Extension:
    """Put ``blurred`` ``(B, C, H, W)`` on a canvas for circular (FFT) deconvolution by ``kernel``
    ``(1 or B, kh, kw)``, following ``boundary`` (see the module docstring).

    ``"circular"`` returns the image itself. ``"taper"`` / ``"reflect"`` pad ``kh`` rows above and
    at least ``kh`` below (``kw`` columns left, at least ``kw`` right) up to fast FFT lengths,
    filled by edge replication / mirroring, then apply :func:`edgetaper` :data:`TAPER_PASSES`
    times. The result carries the kernel's :func:`otf` at the canvas size.
    """
    h, w = blurred.shape[-2:]
    if boundary == "circular":
        return Extension(blurred, otf(kernel, (h, w)), 0, 0, h, w)
    kh, kw = kernel.shape[-2:]
    hp = scipy.fft.next_fast_len(h + 2 * kh, real=True)
    wp = scipy.fft.next_fast_len(w + 2 * kw, real=True)
    mode = "replicate" if boundary == "taper" else "reflect"
    rows = _index(h, kh, hp - h - kh, mode, blurred.device)
    cols = _index(w, kw, wp - w - kw, mode, blurred.device)
    canvas = blurred.index_select(-2, rows).index_select(-1, cols)
    k_otf = otf(kernel, (hp, wp))
    for _ in range(TAPER_PASSES):
        canvas = edgetaper(canvas, kernel, k_otf)
    return Extension(canvas, k_otf, kh, kw, h, w)


def _index(n: int, before: int, after: int, mode: str, device: torch.device) -> torch.Tensor:
    """Source index along an axis of length ``n`` for ``before + n + after`` canvas positions."""
    p = torch.arange(-before, n + after, device=device)
    if mode == "replicate":
        return p.clamp(0, n - 1)
    q = p.remainder(2 * n)                      # mirror with the edge pixel repeated, period 2n
    return torch.where(q < n, q, 2 * n - 1 - q)
