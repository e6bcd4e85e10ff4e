"""Non-uniform (per-pixel) linear motion blur from a motion field.

Gong et al., "From Motion Blur to Motion Flow" (CVPR 2017), survey (Sahu, Lenka, Sa, arXiv
1907.10128) eq. 13-16: every pixel ``p`` has its own linear motion vector ``M(p) = (u(p), v(p))``
and the blurred image is the sharp image averaged along the segment centred on ``p``::

    B(p) = integral_{t=-1/2}^{1/2} I(p + t M(p)) dt  ~  1/S sum_k I(p + t_k M(p))     (eq. 13-14)

Conventions (docs/CONVENTIONS.md): ``u`` is horizontal (x, to the right), ``v`` vertical (y, down),
in pixels; a pixel with motion ``(u, v)`` is blurred along the segment from ``p - (u, v)/2`` to
``p + (u, v)/2``. ``(u, v)`` and ``(-u, -v)`` give the same blur; Gong et al. resolve the sign by
keeping ``u >= 0`` (:func:`canonical_motion_field`).

The operator is a *gather*: each output pixel reads ``S`` bilinear samples of the input
(:func:`sample_bilinear`: ``torch.nn.functional.grid_sample(mode="bilinear", align_corners=True)``
on pixel coordinates, ``padding_mode`` "border" for ``boundary="replicate"``, "reflection",
"zeros"); the centre sample ``t = 0`` is the pixel itself, so a zero field returns the image
exactly. The adjoint of the gather is the bilinear *splat* :func:`splat_bilinear` (scatter-add with
the same weights), so :func:`blur_motion_field_adjoint` is an explicit scatter, itself
differentiable (checked against autograd and by the dot-product test in the tests).
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import numpy as np
import torch

from ..errors import ConfigError, ImageError, KernelError

#: Boundary modes: name -> the ``grid_sample`` ``padding_mode`` it reproduces.
BOUNDARIES = {"replicate": "border", "reflection": "reflection", "zeros": "zeros"}

#: The default number of samples along a segment is capped here (spacing > 1 px beyond 256 px).
MAX_SAMPLES = 257

#: Kinds of :func:`random_motion_field`.
FIELD_KINDS = ("translation", "rotation", "zoom", "homography", "smooth", "mixed")


# --------------------------------------------------------------------------------------------
# validation helpers (shared with camera.py and frames.py)
# --------------------------------------------------------------------------------------------

def _check_boundary(boundary: str) -> str:
    if boundary not in BOUNDARIES:
        raise ConfigError(
            f"boundary={boundary!r}: unknown boundary mode; choose one of {', '.join(BOUNDARIES)}"
        )
    return boundary


def _check_image_tensor(image: object, name: str = "image") -> torch.Tensor:
    """A finite floating (B, C, H, W) tensor, or raise ImageError naming ``name``."""
    if not isinstance(image, torch.Tensor):
        raise ImageError(
            f"{name}: expected a torch.Tensor (B, C, H, W), got {type(image).__name__}"
        )
    if image.ndim != 4:
        raise ImageError(f"{name}: expected shape (B, C, H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ImageError(f"{name}: expected a floating dtype (float32/float64), got {image.dtype}")
    if min(image.shape) == 0:
        raise ImageError(f"{name}: empty tensor of shape {tuple(image.shape)}")
    bad = int((~torch.isfinite(image)).sum())
    if bad:
        raise ImageError(f"{name}: has {bad} non-finite values (NaN or inf)")
    return image


def _check_image_array(image: object, name: str = "image") -> np.ndarray:
    """A finite numpy image H x W or H x W x C, or raise ImageError naming ``name``."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"{name}: expected a numpy array H x W x C, got {type(image).__name__}")
    if image.ndim not in (2, 3):
        raise ImageError(f"{name}: expected shape H x W or H x W x C, got {image.shape}")
    if image.size == 0:
        raise ImageError(f"{name}: empty array of shape {image.shape}")
    if not np.issubdtype(image.dtype, np.floating):
        raise ImageError(f"{name}: expected a float array in [0, 1], got dtype {image.dtype}")
    bad = int((~np.isfinite(image)).sum())
    if bad:
        raise ImageError(f"{name}: has {bad} non-finite values (NaN or inf)")
    return image


def _check_field(
    u: object, v: object, batch: int, height: int, width: int, like: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a motion field against an image of shape (batch, ., height, width).

    Accepts torch tensors (B, H, W), (1, H, W) or (H, W); returns both expanded to (B, H, W) with
    the dtype and device of ``like``.
    """
    out = []
    for name, f in (("u", u), ("v", v)):
        if not isinstance(f, torch.Tensor):
            raise KernelError(f"{name}: expected a torch.Tensor (B, H, W), got {type(f).__name__}")
        if f.ndim == 2:
            f = f.unsqueeze(0)
        if f.ndim != 3 or f.shape[1:] != (height, width) or f.shape[0] not in (1, batch):
            raise KernelError(
                f"{name}: expected shape ({batch}, {height}, {width}) to match the image, "
                f"got {tuple(f.shape)}"
            )
        if not (f.is_floating_point() or f.dtype in (torch.int32, torch.int64)):
            raise KernelError(f"{name}: expected a real dtype, got {f.dtype}")
        bad = int((~torch.isfinite(f)).sum()) if f.is_floating_point() else 0
        if bad:
            raise KernelError(f"{name}: has {bad} non-finite values (NaN or inf)")
        out.append(f.to(device=like.device, dtype=like.dtype).expand(batch, height, width))
    return out[0], out[1]


def _check_samples(samples: object) -> int:
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ConfigError(f"samples={samples!r}: expected a positive integer")
    return int(samples)


# --------------------------------------------------------------------------------------------
# bilinear gather and its adjoint splat
# --------------------------------------------------------------------------------------------

def _reflect(x: torch.Tensor, high: int) -> torch.Tensor:
    """Reflect coordinates into [0, high] about the end pixel centres (grid_sample "reflection")."""
    if high == 0:
        return torch.zeros_like(x)
    period = 2 * high
    x = torch.remainder(x.abs(), period)
    return torch.where(x > high, period - x, x)


def _corners(
    x: torch.Tensor, y: torch.Tensor, height: int, width: int, boundary: str
) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """The 4 bilinear taps ``(flat_index (B, N) int64, weight (B, N))`` of positions x, y.

    ``x, y`` are (B, ...) pixel coordinates (x right, y down, pixel centres at integers); the
    boundary rule is grid_sample's (coordinates clamped / reflected first; zeros: taps outside
    the image get weight 0).
    """
    x = x.reshape(x.shape[0], -1)
    y = y.reshape(y.shape[0], -1)
    if boundary == "replicate":
        x = x.clamp(0, width - 1)
        y = y.clamp(0, height - 1)
    elif boundary == "reflection":
        x = _reflect(x, width - 1)
        y = _reflect(y, height - 1)
    x0 = torch.floor(x)
    y0 = torch.floor(y)
    fx = x - x0
    fy = y - y0
    gx = 1 - fx
    gy = 1 - fy
    xi = x0.long()
    yi = y0.long()
    if boundary == "zeros":
        fx = fx * ((xi >= -1) & (xi < width - 1))
        gx = gx * ((xi >= 0) & (xi < width))
        fy = fy * ((yi >= -1) & (yi < height - 1))
        gy = gy * ((yi >= 0) & (yi < height))
        x0i = xi.clamp(0, width - 1)
        x1i = (xi + 1).clamp_(0, width - 1)
        r0 = yi.clamp(0, height - 1) * width
        r1 = (yi + 1).clamp_(0, height - 1) * width
    else:
        x0i = xi
        x1i = (xi + 1).clamp_(max=width - 1)
        r0 = yi * width
        r1 = (yi + 1).clamp_(max=height - 1) * width
    return ((r0 + x0i, gy * gx), (r0 + x1i, gy * fx), (r1 + x0i, fy * gx), (r1 + x1i, fy * fx))


def _to_grid(x: torch.Tensor, y: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pixel coordinates -> grid_sample's normalised (align_corners=True) grid (B, Ho, Wo, 2)."""
    gx = x * (2.0 / (width - 1)) - 1 if width > 1 else torch.zeros_like(x)
    gy = y * (2.0 / (height - 1)) - 1 if height > 1 else torch.zeros_like(y)
    return torch.stack([gx, gy], dim=-1)


def sample_bilinear(
    image: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *, boundary: str = "replicate"
) -> torch.Tensor:
    """Bilinear samples of ``image`` at pixel positions ``(x, y)`` (a gather).

    ``torch.nn.functional.grid_sample(mode="bilinear", align_corners=True)`` on pixel
    coordinates. The conversion to grid_sample's normalised coordinates rounds, so a sample at an
    integer position may differ from the pixel by an ulp-sized weight (callers that need the
    pixel exactly, e.g. the centre sample of a blur, use the image directly).

    Args:
        image: (B, C, H, W) float tensor.
        x, y: (B, Ho, Wo) tensors of pixel coordinates (x to the right, y down; pixel centres at
            integers, so ``x = j`` reads column ``j``), same dtype and device as ``image``.
        boundary: "replicate" | "reflection" | "zeros": the value outside the image, as
            ``grid_sample``'s "border" / "reflection" / "zeros" padding (scipy.ndimage's
            "nearest" / "mirror" / "grid-constant").

    Returns:
        (B, C, Ho, Wo) tensor, same dtype as ``image``. Linear in ``image`` (adjoint:
        :func:`splat_bilinear`); differentiable in ``image`` and (almost everywhere) in ``x, y``.
    """
    _check_boundary(boundary)
    grid = _to_grid(x, y, image.shape[2], image.shape[3])
    return torch.nn.functional.grid_sample(
        image, grid, mode="bilinear", padding_mode=BOUNDARIES[boundary], align_corners=True
    )


def splat_bilinear(
    values: torch.Tensor, x: torch.Tensor, y: torch.Tensor, height: int, width: int,
    *, boundary: str = "replicate",
) -> torch.Tensor:
    """Adjoint of :func:`sample_bilinear`: scatter ``values`` onto an (H, W) grid.

    Args:
        values: (B, C, Ho, Wo) tensor (the cotangent of the samples).
        x, y: (B, Ho, Wo) pixel coordinates, as for :func:`sample_bilinear`.
        height, width: size of the image that was sampled.
        boundary: as for :func:`sample_bilinear`.

    Returns:
        (B, C, height, width) tensor with ``<sample_bilinear(a, x, y), values> == <a, splat>``.
    """
    _check_boundary(boundary)
    b, c = values.shape[:2]
    flat_values = values.reshape(b, c, -1)
    out = torch.zeros(b, c, height * width, dtype=values.dtype, device=values.device)
    for index, weight in _corners(x, y, height, width, boundary):
        out = out.scatter_add(
            2, index.unsqueeze(1).expand(b, c, index.shape[1]), flat_values * weight.unsqueeze(1)
        )
    return out.reshape(b, c, height, width)


# --------------------------------------------------------------------------------------------
# motion-field blur (survey eq. 13-16)
# --------------------------------------------------------------------------------------------

def default_samples(u: torch.Tensor | np.ndarray, v: torch.Tensor | np.ndarray) -> int:
    """Default number of samples along each segment: ``ceil(max |M|) + 1`` made odd, capped.

    With this many samples consecutive samples are at most 1 pixel apart (up to a motion length of
    ``MAX_SAMPLES - 1`` = 256 px), and the centre sample ``t = 0`` is always included, so a zero
    field gives one sample: the image itself.
    """
    if isinstance(u, torch.Tensor):
        length = float(torch.sqrt(u.double() ** 2 + v.double() ** 2).max()) if u.numel() else 0.0
    else:
        length = float(np.hypot(np.asarray(u, np.float64), np.asarray(v, np.float64)).max())
    n = int(math.ceil(length - 1e-9)) + 1
    if n % 2 == 0:
        n += 1
    return min(n, MAX_SAMPLES)


def _times(samples: int) -> list[float]:
    """Sample times t_k in [-1/2, 1/2], uniformly spaced, endpoints included (t = 0 if S = 1)."""
    if samples == 1:
        return [0.0]
    return [-0.5 + k / (samples - 1) for k in range(samples)]


def _sample_positions(
    u: torch.Tensor, v: torch.Tensor, samples: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    b, h, w = u.shape
    ys = torch.arange(h, dtype=u.dtype, device=u.device).view(1, h, 1)
    xs = torch.arange(w, dtype=u.dtype, device=u.device).view(1, 1, w)
    for t in _times(samples):
        yield xs + t * u, ys + t * v


def blur_motion_field(
    image: torch.Tensor, u: torch.Tensor, v: torch.Tensor, *,
    samples: int | None = None, boundary: str = "replicate",
) -> torch.Tensor:
    """Per-pixel linear motion blur (Gong et al. 2017, survey eq. 13-16), gather formulation.

    ``B(p) = 1/S sum_k I(p + t_k (u(p), v(p)))`` with ``t_k`` uniformly spaced in [-1/2, 1/2]
    (endpoints included), each sample bilinear (:func:`sample_bilinear`).

    Args:
        image: (B, C, H, W) float32/float64 tensor, values typically in [0, 1].
        u, v: motion field in pixels, (B, H, W) (or (1, H, W) / (H, W), shared by the batch);
            ``u`` along x (right), ``v`` along y (down).
        samples: number of samples ``S`` per segment; default :func:`default_samples` (spacing
            <= 1 px, odd, capped at ``MAX_SAMPLES``).
        boundary: "replicate" (default), "reflection" or "zeros": values read outside the image.

    Returns:
        (B, C, H, W) tensor of the image's dtype. Linear in ``image`` (its adjoint is
        :func:`blur_motion_field_adjoint`); a zero field returns the image exactly; a constant
        image stays constant (except with ``boundary="zeros"``).
    """
    image = _check_image_tensor(image)
    _check_boundary(boundary)
    b, _, h, w = image.shape
    u, v = _check_field(u, v, b, h, w, image)
    n = default_samples(u, v) if samples is None else _check_samples(samples)
    if n == 1:
        return image.clone()
    out = None
    for t, (x, y) in zip(_times(n), _sample_positions(u, v, n)):
        # the centre sample t = 0 reads p itself: use the pixel exactly
        s = image if t == 0 else sample_bilinear(image, x, y, boundary=boundary)
        out = s if out is None else out + s
    return out / n


def blur_motion_field_adjoint(
    y: torch.Tensor, u: torch.Tensor, v: torch.Tensor, *,
    samples: int | None = None, boundary: str = "replicate",
) -> torch.Tensor:
    """Adjoint (transpose) of :func:`blur_motion_field` for the same field, samples and boundary.

    An explicit bilinear splat: ``<blur_motion_field(x, u, v), y> == <x, adjoint(y, u, v)>`` for
    all ``x, y`` (to rounding). Used by non-uniform non-blind deconvolution (gradient steps,
    Richardson-Lucy) where the blur is ``A`` and the data term needs ``A^T``.

    Args:
        y: (B, C, H, W) float tensor (an image-shaped cotangent; any real values).
        u, v, samples, boundary: exactly as given to :func:`blur_motion_field`; with
            ``samples=None`` the same default is derived from the field.

    Returns:
        (B, C, H, W) tensor of ``y``'s dtype. Differentiable in ``y``.
    """
    y = _check_image_tensor(y, "y")
    _check_boundary(boundary)
    b, _, h, w = y.shape
    u, v = _check_field(u, v, b, h, w, y)
    n = default_samples(u, v) if samples is None else _check_samples(samples)
    if n == 1:
        return y.clone()
    out = None
    for t, (x, yy) in zip(_times(n), _sample_positions(u, v, n)):
        s = y if t == 0 else splat_bilinear(y, x, yy, h, w, boundary=boundary)
        out = s if out is None else out + s
    return out / n


# --------------------------------------------------------------------------------------------
# the same operator as a sparse matrix, built once (fast repeated application)
# --------------------------------------------------------------------------------------------

#: :class:`MotionFieldOperator` builds sparse matrices when the field has at most this many
#: ``(distinct motion vectors) x (4 bilinear taps) x (samples)`` entries in its tap table
#: (e.g. the 361 labels of Sun et al. 2015 or Gong et al.'s integer labels); a field with more
#: distinct vectors (a smooth, continuous field) uses the gather / splat above.
MAX_TAP_TABLE = 8_000_000
#: ... and when the matrix has at most this many non-zeros (4 + 4 bytes each in float32; a
#: 1280 x 720 field of Sun et al.'s labels up to 25 px long has about 44 million).
MAX_NONZEROS = 250_000_000


def _group_by_vector(u: np.ndarray, v: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group the pixels of a flat field by their motion vector (compared bit for bit; ``-0.0``
    and ``0.0`` may form two groups, with the same taps).

    Returns ``(vectors (L, 2) float64, order (N,) int64, bounds (L + 1,) int64)``: the pixels of
    vector ``l`` are ``order[bounds[l]:bounds[l + 1]]``, in increasing order."""
    if u.dtype == np.float32:
        key = (u.view(np.uint32).astype(np.uint64) << np.uint64(32)) | v.view(np.uint32)
    else:
        _, iu = np.unique(u, return_inverse=True)
        vals_v, iv = np.unique(v, return_inverse=True)
        key = iu.ravel().astype(np.int64) * len(vals_v) + iv.ravel()
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    first = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
    bounds = np.r_[first, len(key)].astype(np.int64)
    vectors = np.stack([u[order[first]], v[order[first]]], axis=1).astype(np.float64)
    return vectors, order.astype(np.int64), bounds


def _vector_taps(vectors: np.ndarray, samples: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The merged bilinear taps of each motion vector's segment (the impulse response of
    :func:`blur_motion_field` at a pixel with that motion, before the boundary rule).

    ``vectors``: float64 ``(L, 2)`` ``(u, v)``. Sample ``t_k`` reads ``I(p + t_k (u, v))``, i.e.
    the 4 pixels ``p + (floor(t_k v) + oy, floor(t_k u) + ox)``, ``oy, ox`` in {0, 1}, with the
    bilinear weights over ``samples``; taps at the same offset are summed, zero weights dropped.
    Since ``p`` is an integer, the taps depend only on the vector, not on ``p``.

    Returns ``(start (L + 1,) int64, dy (T,) int64, dx (T,) int64, weight (T,) float64)``: the
    taps of vector ``l`` are ``start[l]:start[l + 1]``.
    """
    n_vec = vectors.shape[0]
    t = np.asarray(_times(samples), dtype=np.float64)
    px = t[None, :] * vectors[:, :1]                        # (L, S) sample offsets, x
    py = t[None, :] * vectors[:, 1:]
    x0, y0 = np.floor(px), np.floor(py)
    fx, fy = px - x0, py - y0
    dy = np.stack([y0, y0, y0 + 1, y0 + 1], axis=-1).astype(np.int64)       # (L, S, 4)
    dx = np.stack([x0, x0 + 1, x0, x0 + 1], axis=-1).astype(np.int64)
    wt = np.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx], axis=-1)
    wt = wt / samples
    reach = int(max(np.abs(dy).max(), np.abs(dx).max())) + 1
    side = 2 * reach + 1
    lab = np.broadcast_to(np.arange(n_vec, dtype=np.int64)[:, None, None], dy.shape)
    key = ((lab * side + (dy + reach)) * side + (dx + reach)).ravel()
    keys, inverse = np.unique(key, return_inverse=True)
    merged = np.bincount(inverse.ravel(), weights=wt.ravel(), minlength=len(keys))
    keep = merged != 0
    keys, merged = keys[keep], merged[keep]
    label = keys // (side * side)
    start = np.searchsorted(label, np.arange(n_vec + 1))
    return (start.astype(np.int64), (keys // side) % side - reach, keys % side - reach, merged)


def _boundary_index(pos: np.ndarray, size: int, boundary: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer positions along one axis -> ``(index in [0, size), inside mask)`` under the
    boundary rule (the integer-tap form of :func:`_corners`: clamp, reflect about the end pixel
    centres, or zero outside)."""
    if boundary == "replicate":
        return np.clip(pos, 0, size - 1), None
    if boundary == "reflection":
        if size == 1:
            return np.zeros_like(pos), None
        period = 2 * (size - 1)
        r = np.abs(pos) % period
        return np.where(r > size - 1, period - r, r), None
    inside = (pos >= 0) & (pos < size)
    return np.clip(pos, 0, size - 1), inside


class MotionFieldOperator:
    """:func:`blur_motion_field` and :func:`blur_motion_field_adjoint` for one field, built once
    and applied many times (the conjugate-gradient deconvolution of
    :func:`deblurkit.deconv.deconv_motion_field` applies both 2 x iterations times).

    The blur of a pixel depends only on its motion vector (the sample offsets ``t_k (u, v)``
    from an integer pixel have the same floors and fractions everywhere), so when the field
    takes few distinct vectors (labels: Sun et al.'s 361 kernels, Gong et al.'s integer motions)
    each vector's merged bilinear taps are computed once (:func:`_vector_taps`) and the operator
    is assembled as a sparse ``(H W) x (H W)`` matrix per field (the boundary rule folded into
    the column indices; about ``2 S`` non-zeros per row instead of ``4 S`` bilinear reads);
    applying it or its transpose is one ``scipy.sparse`` matrix-vector product per plane
    (single-threaded) instead of ``S`` grid samples (forward) or ``4 S`` scatter-adds (adjoint).
    The result equals :func:`blur_motion_field` / :func:`blur_motion_field_adjoint` up to
    rounding: the weights are computed in float64 from the vector, where the gather computes
    each sample position ``p + t_k M`` in the image's dtype (for float32 images far from the
    origin that rounds the bilinear fractions by up to ``ulp(W)``, ~1e-4 at ``W = 1280``).

    Falls back to those functions (same results, the old speed) on a non-CPU device, when the
    input needs autograd, when the field has more than :data:`MAX_TAP_TABLE` / (4 S) distinct
    vectors (a continuous field) or the matrix more than :data:`MAX_NONZEROS` non-zeros.

    Args:
        u, v: torch motion field ``(B, H, W)``, ``(1, H, W)`` or ``(H, W)`` (pixels, ``u``
            right, ``v`` down), as for :func:`blur_motion_field`.
        like: a ``(B, C, H, W)`` float tensor (e.g. the blurred image): batch, size, dtype and
            device the operator is applied to.
        samples, boundary: as for :func:`blur_motion_field`.

    Raises:
        ImageError (``like``), KernelError (``u``, ``v``), ConfigError (``samples``,
        ``boundary``): one line naming the argument.
    """

    def __init__(self, u: torch.Tensor, v: torch.Tensor, like: torch.Tensor, *,
                 samples: int | None = None, boundary: str = "replicate") -> None:
        like = _check_image_tensor(like, "like")
        self.boundary = _check_boundary(boundary)
        b, _, h, w = like.shape
        shared = all(isinstance(f, torch.Tensor) and (f.ndim == 2 or (f.ndim == 3 and
                                                                       f.shape[0] == 1))
                     for f in (u, v))
        self.u, self.v = _check_field(u, v, b, h, w, like)
        self.samples = default_samples(self.u, self.v) if samples is None \
            else _check_samples(samples)
        self.shape = (b, h, w)
        self.dtype = like.dtype
        self.device = like.device
        # per field: (CSR matrix with rows in `order`, order), or None for the gather / splat
        self.matrices: list | None = None
        if self.samples == 1 or like.device.type != "cpu":
            return
        groups = [_group_by_vector(self.u[i].reshape(-1).cpu().numpy(),
                                   self.v[i].reshape(-1).cpu().numpy())
                  for i in ([0] if shared else range(b))]
        if any(vec.shape[0] * 4 * self.samples > MAX_TAP_TABLE for vec, _, _ in groups):
            return
        taps = [_vector_taps(vec, self.samples) for vec, _, _ in groups]
        if any(int(((t[0][1:] - t[0][:-1]) * (g[2][1:] - g[2][:-1])).sum()) > MAX_NONZEROS
               for t, g in zip(taps, groups)):
            return
        self.matrices = [self._assemble(t, order, bounds, h, w)
                         for t, (_, order, bounds) in zip(taps, groups)]

    def _assemble(self, taps: tuple[np.ndarray, ...], order: np.ndarray, bounds: np.ndarray,
                  h: int, w: int) -> tuple[Any, np.ndarray]:
        """``(M, order)``: row ``i`` of the sparse CSR matrix ``M`` is the blur of pixel
        ``order[i]`` (rows grouped by motion vector: within a group every row has the same
        weights and column offsets, so each group is one dense ``(pixels, taps)`` block).
        ``taps``: :func:`_vector_taps` of the group's vectors."""
        import scipy.sparse

        start, tdy, tdx, twt = taps
        per_row = np.repeat(start[1:] - start[:-1], bounds[1:] - bounds[:-1])
        indptr = np.zeros(h * w + 1, dtype=np.int64)
        np.cumsum(per_row, out=indptr[1:])
        nnz = int(indptr[-1])
        itype = np.int32 if max(nnz, h * w) < 2 ** 31 - 1 else np.int64
        indices = np.empty(nnz, dtype=itype)
        data = np.empty(nnz, dtype=np.float32 if self.dtype == torch.float32 else np.float64)
        for lab in range(len(bounds) - 1):
            pix = order[bounds[lab]:bounds[lab + 1]]
            t0, t1 = start[lab], start[lab + 1]
            lo, hi = int(indptr[bounds[lab]]), int(indptr[bounds[lab + 1]])
            dy, dx, wt = tdy[t0:t1], tdx[t0:t1], twt[t0:t1]
            cols = indices[lo:hi].reshape(len(pix), t1 - t0)
            vals = data[lo:hi].reshape(len(pix), t1 - t0)
            np.add(pix.astype(itype)[:, None], (dy * w + dx).astype(itype)[None, :], out=cols)
            vals[:] = wt[None, :]
            # pixels whose taps leave the image: apply the boundary rule tap by tap
            py, px = pix // w, pix % w
            near = np.flatnonzero((py + dy.min() < 0) | (py + dy.max() > h - 1)
                                  | (px + dx.min() < 0) | (px + dx.max() > w - 1))
            if near.size:
                ry, iny = _boundary_index(py[near, None] + dy, h, self.boundary)
                rx, inx = _boundary_index(px[near, None] + dx, w, self.boundary)
                cols[near] = ry * w + rx
                if iny is not None:
                    vals[near] = wt * (iny & inx)
        return (scipy.sparse.csr_matrix((data, indices, indptr.astype(itype)),
                                        shape=(h * w, h * w)), order)

    def _check(self, x: torch.Tensor, name: str) -> torch.Tensor:
        x = _check_image_tensor(x, name)
        if (x.shape[0], x.shape[2], x.shape[3]) != self.shape:
            b, h, w = self.shape
            raise ImageError(f"{name}: expected shape ({b}, C, {h}, {w}) to match the motion "
                             f"field, got {tuple(x.shape)}")
        return x

    def _fast(self, x: torch.Tensor) -> bool:
        return self.matrices is not None and x.device.type == "cpu" and x.dtype == self.dtype \
            and not (torch.is_grad_enabled() and x.requires_grad)

    def _apply(self, x: torch.Tensor, transpose: bool) -> torch.Tensor:
        """``A x`` or ``A^T x``, one sparse matrix-vector product per plane (scipy's
        single-vector kernel is faster than its multi-vector one for a few channels)."""
        b, c, h, w = x.shape
        out = torch.empty_like(x, memory_format=torch.contiguous_format)
        src = x.detach().reshape(b, c, h * w).numpy()
        dst = out.reshape(b, c, h * w).numpy()
        for i in range(b):
            m, order = self.matrices[i if len(self.matrices) > 1 else 0]
            for j in range(c):
                if transpose:                                   # rows of m are in `order`
                    dst[i, j] = m.T @ src[i, j][order]
                else:
                    dst[i, j][order] = m @ src[i, j]
        return out

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``blur_motion_field(image, u, v, samples, boundary)``; ``image`` ``(B, C, H, W)``."""
        image = self._check(image, "image")
        if self.samples == 1:
            return image.clone()
        if not self._fast(image):
            return blur_motion_field(image, self.u, self.v, samples=self.samples,
                                     boundary=self.boundary)
        return self._apply(image, transpose=False)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``blur_motion_field_adjoint(y, u, v, samples, boundary)``; ``y`` ``(B, C, H, W)``."""
        y = self._check(y, "y")
        if self.samples == 1:
            return y.clone()
        if not self._fast(y):
            return blur_motion_field_adjoint(y, self.u, self.v, samples=self.samples,
                                             boundary=self.boundary)
        return self._apply(y, transpose=True)


def blur_motion_field_np(
    image: np.ndarray, u: np.ndarray, v: np.ndarray, *,
    samples: int | None = None, boundary: str = "replicate",
) -> np.ndarray:
    """numpy convenience wrapper of :func:`blur_motion_field` for one image.

    Args:
        image: H x W x C (or H x W) float array in [0, 1].
        u, v: H x W motion field in pixels (u right, v down).
        samples, boundary: as for :func:`blur_motion_field`.

    Returns:
        float32 array of the same shape as ``image``.
    """
    image = _check_image_array(image)
    fields = []
    for name, f in (("u", u), ("v", v)):
        if not isinstance(f, np.ndarray) or f.shape != image.shape[:2]:
            shape = getattr(f, "shape", type(f).__name__)
            raise KernelError(
                f"{name}: expected a numpy array of shape {image.shape[:2]}, got {shape}"
            )
        fields.append(torch.from_numpy(np.ascontiguousarray(f, dtype=np.float32)))
    t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    t = t[None, None] if image.ndim == 2 else t.permute(2, 0, 1)[None]
    out = blur_motion_field(t, fields[0], fields[1], samples=samples, boundary=boundary)[0]
    out = out[0] if image.ndim == 2 else out.permute(1, 2, 0)
    return np.ascontiguousarray(out.numpy(), dtype=np.float32)


def motion_field_kernels(
    u: torch.Tensor | np.ndarray, v: torch.Tensor | np.ndarray, size: int, *,
    samples: int | None = None,
) -> torch.Tensor | np.ndarray:
    """The per-pixel convolution kernel of :func:`blur_motion_field` (away from the boundary).

    For a pixel ``p`` away from the image border, ``blur_motion_field(I, u, v)[p] ==
    sum_q K_p[c + q] I(p - q)`` with ``c = (size // 2, size // 2)``: ``K_p`` is a true convolution
    kernel in ``scipy.signal.convolve`` orientation (non-negative, sums to 1), the bilinear
    rasterisation of the segment of length ``|M(p)|`` centred on the kernel centre. A constant
    field therefore gives one kernel for the whole image, which matches (to ~2 % of the blur,
    bilinear versus area rasterising) ``deblurkit.blur.kernels.linear_motion_kernel(|M| + 1,
    degrees(atan2(-v, u)))``: a pixel moving ``|M|`` px leaves a streak ``|M| + 1`` px long, and
    that kernel's angle is counter-clockwise on screen while ``v`` points down.

    Args:
        u, v: (H, W) motion field in pixels (numpy or torch).
        size: kernel side (odd or even; centre ``size // 2``); must hold the whole segment.
        samples: as for :func:`blur_motion_field` (default derived from the field).

    Returns:
        (H, W, size, size) kernels: numpy float32 for numpy input, else a tensor of ``u``'s dtype.
    """
    as_numpy = isinstance(u, np.ndarray)
    ut = torch.from_numpy(np.asarray(u, np.float64)) if as_numpy else u
    vt = torch.from_numpy(np.asarray(v, np.float64)) if isinstance(v, np.ndarray) else v
    if not isinstance(ut, torch.Tensor) or ut.ndim != 2:
        got = getattr(u, "shape", type(u).__name__)
        raise KernelError(f"u: expected an (H, W) array, got {got}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ConfigError(f"size={size!r}: expected a positive integer kernel side")
    h, w = ut.shape
    dtype = ut.dtype if ut.is_floating_point() else torch.float64
    ut, vt = _check_field(ut, vt, 1, h, w, torch.empty(0, dtype=dtype, device=ut.device))
    n = default_samples(ut, vt) if samples is None else _check_samples(samples)
    c = size // 2
    kernels = torch.zeros(h * w, size * size, dtype=dtype, device=ut.device)
    for t in _times(n):
        dx = (t * ut).reshape(-1)
        dy = (t * vt).reshape(-1)
        x0 = torch.floor(dx)
        y0 = torch.floor(dy)
        fx = dx - x0
        fy = dy - y0
        for oy, wy in ((0, 1 - fy), (1, fy)):
            for ox, wx in ((0, 1 - fx), (1, fx)):
                # The sample reads I(p + d): a kernel tap at offset q = -d (K[c + q] I(p - q)).
                qx = -(x0.long() + ox) + c
                qy = -(y0.long() + oy) + c
                wgt = wy * wx / n
                outside = (qx < 0) | (qx >= size) | (qy < 0) | (qy >= size)
                if bool((outside & (wgt > 0)).any()):
                    length = float(torch.sqrt(ut**2 + vt**2).max())
                    raise ConfigError(
                        f"size={size}: too small for the longest motion ({length:.2f} px); "
                        f"need at least {2 * int(math.ceil(length / 2)) + 3}"
                    )
                idx = qy.clamp(0, size - 1) * size + qx.clamp(0, size - 1)
                kernels.scatter_add_(1, idx.unsqueeze(1), (wgt * (~outside)).unsqueeze(1))
    kernels = kernels.reshape(h, w, size, size)
    return kernels.numpy().astype(np.float32) if as_numpy else kernels


def canonical_motion_field(
    u: torch.Tensor | np.ndarray, v: torch.Tensor | np.ndarray
) -> tuple[torch.Tensor | np.ndarray, torch.Tensor | np.ndarray]:
    """Gong et al.'s sign convention: flip ``(u, v) -> (-u, -v)`` where ``u < 0`` (or u = 0, v < 0).

    The blur of ``(u, v)`` and ``(-u, -v)`` is the same, so Gong et al. (survey eq. 15-16) predict
    ``U >= 0`` and ``V`` signed. Works on numpy or torch fields of any shape; returns the same type.
    """
    if isinstance(u, torch.Tensor):
        flip = (u < 0) | ((u == 0) & (v < 0))
        return torch.where(flip, -u, u), torch.where(flip, -v, v)
    u = np.asarray(u)
    v = np.asarray(v)
    flip = (u < 0) | ((u == 0) & (v < 0))
    return np.where(flip, -u, u).astype(u.dtype), np.where(flip, -v, v).astype(v.dtype)


# --------------------------------------------------------------------------------------------
# random motion fields (Gong et al.'s synthetic training set)
# --------------------------------------------------------------------------------------------

def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed={seed!r}: expected a non-negative integer")
    return int(seed)


def _check_positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name}={value!r}: expected a positive integer")
    return int(value)


def _check_nonneg(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name}={value!r}: expected a finite number >= 0")
    return float(value)


def _smooth_noise(
    rng: np.random.Generator, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Two smooth random fields: Gaussian noise on a coarse grid (3..6 cells), bicubic upsampled."""
    from scipy.ndimage import map_coordinates

    cells = int(rng.integers(3, 7))
    gh = max(2, int(round(cells * height / max(height, width))) + 1)
    gw = max(2, int(round(cells * width / max(height, width))) + 1)
    coarse = rng.standard_normal((2, gh, gw))
    yy, xx = np.meshgrid(np.linspace(0, gh - 1, height), np.linspace(0, gw - 1, width),
                         indexing="ij")
    return tuple(  # type: ignore[return-value]
        map_coordinates(coarse[i], [yy, xx], order=3, mode="nearest") for i in range(2)
    )


def _unit_max(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = float(np.sqrt(u * u + v * v).max())
    return (u / m, v / m) if m > 0 else (u, v)


def random_motion_field(
    height: int, width: int, seed: int, *,
    max_length: float = 16.0, kind: str = "smooth",
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random motion field like Gong et al.'s synthetic training flows (CVPR 2017 §4).

    Gong et al. synthesise motion flows from camera motion models; the kinds here:

    - "translation": constant field (uniform linear blur);
    - "rotation": in-plane camera rotation about a random centre (possibly outside the image):
      ``M(p) = omega * (-(y - cy), x - cx)``;
    - "zoom": forward/backward camera motion, radial from a random centre: ``M(p) = s (p - c)``;
    - "homography": out-of-plane rotation (pitch/yaw), roll and zoom of a pinhole camera,
      ``M(p) = H p - H^-1 p`` for a small random ``H = K R K^-1`` (perspective distortion);
    - "smooth": a translation plus a smooth random perturbation (coarse Gaussian noise, bicubic);
    - "mixed": random-weighted sum of translation, rotation, zoom, homography and perturbation.

    The field is scaled so that its longest vector is exactly ``max_length`` pixels (draw
    ``max_length`` at random yourself to vary the amount of blur; 0 gives a zero field).

    Args:
        height, width: field size in pixels (positive ints).
        seed: non-negative int; the same arguments always give the same field.
        max_length: length in pixels of the longest motion vector (finite, >= 0).
        kind: one of ``FIELD_KINDS``.

    Returns:
        ``(u, v)``: two (height, width) float32 arrays in pixels (u right, v down). Not
        canonicalised; use :func:`canonical_motion_field` for Gong's ``u >= 0`` labels.
    """
    height = _check_positive_int(height, "height")
    width = _check_positive_int(width, "width")
    seed = _check_seed(seed)
    max_length = _check_nonneg(max_length, "max_length")
    if kind not in FIELD_KINDS:
        raise ConfigError(
            f"kind={kind!r}: unknown motion field kind; choose one of {', '.join(FIELD_KINDS)}"
        )
    rng = np.random.default_rng([seed, FIELD_KINDS.index(kind)])
    scale = float(max(height, width))
    yy, xx = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64),
                         indexing="ij")

    def translation() -> tuple[np.ndarray, np.ndarray]:
        a = rng.uniform(0, 2 * np.pi)
        return np.full_like(xx, np.cos(a)), np.full_like(xx, np.sin(a))

    def centre() -> tuple[float, float]:
        # anywhere in the image or up to half its size outside it
        return (rng.uniform(-0.5, 1.5) * (width - 1), rng.uniform(-0.5, 1.5) * (height - 1))

    def rotation() -> tuple[np.ndarray, np.ndarray]:
        cx, cy = centre()
        sign = rng.choice([-1.0, 1.0])
        return _unit_max(sign * -(yy - cy) / scale, sign * (xx - cx) / scale)

    def zoom() -> tuple[np.ndarray, np.ndarray]:
        cx, cy = centre()
        sign = rng.choice([-1.0, 1.0])
        return _unit_max(sign * (xx - cx) / scale, sign * (yy - cy) / scale)

    def homography() -> tuple[np.ndarray, np.ndarray]:
        from scipy.spatial.transform import Rotation

        f = scale * rng.uniform(0.8, 2.0)
        k = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1.0]])
        rotvec = rng.standard_normal(3) * np.array([1.0, 1.0, 0.5]) * 1e-3
        z = 1.0 + rng.normal(0, 2e-3)
        hom = np.diag([z, z, 1.0]) @ k @ Rotation.from_rotvec(rotvec).as_matrix() @ np.linalg.inv(k)
        pts = np.stack([xx, yy, np.ones_like(xx)], axis=0).reshape(3, -1)
        fwd = hom @ pts
        bwd = np.linalg.inv(hom) @ pts
        m = fwd[:2] / fwd[2] - bwd[:2] / bwd[2]
        return _unit_max(m[0].reshape(height, width), m[1].reshape(height, width))

    def smooth() -> tuple[np.ndarray, np.ndarray]:
        tu, tv = translation()
        nu, nv = _unit_max(*_smooth_noise(rng, height, width))
        weight = rng.uniform(0.2, 1.0)
        return tu + weight * nu, tv + weight * nv

    if kind == "mixed":
        parts = [translation(), rotation(), zoom(), homography(),
                 _unit_max(*_smooth_noise(rng, height, width))]
        weights = rng.dirichlet(np.ones(len(parts)))
        u = sum(wt * p[0] for wt, p in zip(weights, parts))
        v = sum(wt * p[1] for wt, p in zip(weights, parts))
    else:
        u, v = {"translation": translation, "rotation": rotation, "zoom": zoom,
                "homography": homography, "smooth": smooth}[kind]()
    u, v = _unit_max(np.asarray(u, np.float64), np.asarray(v, np.float64))
    return (u * max_length).astype(np.float32), (v * max_length).astype(np.float32)
