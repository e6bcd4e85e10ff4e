"""Helpers shared by the kernel-estimation methods: input checks, luma, kernel centring and the
kernel similarity used to score an estimated kernel against the true one.

All functions are pure and work on numpy arrays (kernels: ``(kh, kw)`` float, images:
``(H, W)`` or ``(H, W, C)`` float32 in [0, 1], see ``docs/CONVENTIONS.md``).
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage
import scipy.signal

from ..errors import ImageError, KernelError

__all__ = ["LUMA", "check_image", "to_grey", "center_kernel", "kernel_similarity"]

#: Rec. 709 luma weights (as ``skimage.color.rgb2gray`` and ``deblurkit synth --grey``).
LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def check_image(image: object, name: str = "image", *, min_side: int = 1) -> np.ndarray:
    """Check an estimator input and return it as a float32 ``(H, W, C)`` array (a view if possible).

    ``image``: numpy ``(H, W)`` or ``(H, W, C)`` with C = 1 or 3, float32/float64, finite, values
    in [0, 1], both sides ``>= min_side``.

    Raises:
        ImageError: one line naming ``name`` and the offending value.
    """
    if not isinstance(image, np.ndarray):
        raise ImageError(f"{name}: must be a numpy array (H, W) or (H, W, C), got "
                         f"{type(image).__name__}")
    if image.dtype not in (np.float32, np.float64):
        raise ImageError(f"{name}: must be float32 or float64 in [0, 1], got dtype {image.dtype}")
    if image.ndim not in (2, 3):
        raise ImageError(f"{name}: must be (H, W) or (H, W, C), got shape {image.shape}")
    if image.ndim == 3 and image.shape[2] not in (1, 3):
        raise ImageError(f"{name}: has {image.shape[2]} channels; expected 1 (grey) or 3 (RGB)")
    h, w = image.shape[:2]
    if min(h, w) < min_side:
        raise ImageError(f"{name}: {h}x{w} (HxW) is too small; both sides must be >= {min_side}")
    bad = int((~np.isfinite(image)).sum())
    if bad:
        raise ImageError(f"{name}: has {bad} non-finite values (NaN or inf)")
    lo, hi = float(image.min()), float(image.max())
    if lo < 0.0 or hi > 1.0:
        raise ImageError(f"{name}: values must lie in [0, 1], got min {lo:.9g} max {hi:.9g}")
    out = image if image.ndim == 3 else image[:, :, None]
    return out.astype(np.float32, copy=False)


def to_grey(image: np.ndarray) -> np.ndarray:
    """Luma of a ``(H, W, C)`` float image (C = 1: the channel itself; C = 3: Rec. 709 weights,
    or exactly the first channel when the three are equal, i.e. a grey image in RGB form).
    Returns float32 ``(H, W)`` in the input's range."""
    if image.shape[2] == 1 or (np.array_equal(image[..., 0], image[..., 1])
                               and np.array_equal(image[..., 0], image[..., 2])):
        return np.ascontiguousarray(image[:, :, 0], dtype=np.float32)
    return np.ascontiguousarray(image.astype(np.float32) @ LUMA)


def center_kernel(kernel: np.ndarray) -> np.ndarray:
    """Shift a kernel by whole pixels so that its centre of mass is as close as possible to the
    centre ``(kh // 2, kw // 2)``; renormalise to sum 1.

    A blind estimate is only known up to a translation (a shifted kernel and an oppositely shifted
    image explain the blur equally well); the kernel generators of :mod:`deblurkit.blur.kernels`
    put the centroid on the centre, so this canonical position makes an estimate comparable with,
    and re-blur like, the true kernel. Mass shifted past the border is dropped (only possible
    when the support nearly fills the kernel), then the kernel is renormalised.

    Args:
        kernel: ``(kh, kw)`` float, non-negative with a positive sum.

    Returns:
        float32 ``(kh, kw)``, non-negative, summing to 1.

    Raises:
        KernelError: a kernel that is not 2-D, has negative/non-finite entries or sums to 0.
    """
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2 or k.size == 0:
        raise KernelError(f"kernel: must be a non-empty 2-D array, got shape {k.shape}")
    if not np.isfinite(k).all() or (k < 0).any():
        raise KernelError("kernel: must be finite and non-negative to be centred")
    total = k.sum()
    if not total > 0:
        raise KernelError(f"kernel: sums to {total:g}; nothing to centre")
    kh, kw = k.shape
    rows = (k.sum(1) * np.arange(kh)).sum() / total
    cols = (k.sum(0) * np.arange(kw)).sum() / total
    dy, dx = int(round(kh // 2 - rows)), int(round(kw // 2 - cols))
    out = np.zeros_like(k)
    src = k[max(0, -dy):kh - max(0, dy), max(0, -dx):kw - max(0, dx)]
    out[max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
    s = out.sum()
    if not s > 0:  # pragma: no cover - a non-negative kernel keeps its centroid's pixel
        out = k
        s = total
    return (out / s).astype(np.float32)


def kernel_similarity(estimate: np.ndarray, truth: np.ndarray) -> float:
    """Maximum normalised cross-correlation of two kernels over all integer shifts.

    ``max_s <k1, shift_s(k2)> / (||k1|| ||k2||)`` for ``(kh, kw)`` kernels of any sizes (zero
    outside their support), the "kernel similarity" of Hu & Yang (ECCV 2012) also used by
    Schuler et al. and Chakrabarti to score estimated kernels: 1 for a kernel equal to the
    truth up to a translation, near 0 for unrelated thin kernels. Non-negative kernels give a
    value in [0, 1].

    Raises:
        KernelError: a kernel that is not 2-D, is non-finite or all zero.
    """
    a = np.asarray(estimate, dtype=np.float64)
    b = np.asarray(truth, dtype=np.float64)
    for name, k in (("estimate", a), ("truth", b)):
        if k.ndim != 2 or k.size == 0:
            raise KernelError(f"{name}: must be a non-empty 2-D kernel, got shape {k.shape}")
        if not np.isfinite(k).all():
            raise KernelError(f"{name}: has non-finite entries")
        if not np.any(k):
            raise KernelError(f"{name}: is all zero")
    corr = scipy.signal.correlate(a, b, mode="full", method="direct" if a.size * b.size < 4e5
                                  else "fft")
    return float(corr.max() / (np.linalg.norm(a) * np.linalg.norm(b)))


def _label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a boolean mask (``scipy.ndimage.label``)."""
    return scipy.ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
