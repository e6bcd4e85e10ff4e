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
from typing import Iterator

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
