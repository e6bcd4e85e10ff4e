"""Blur kernels for uniform blur ``B = K * I + N`` (survey eq. 1; Sahu, Lenka, Sa, 1907.10128).

Every generator returns a numpy ``(k, k)`` float32 array that is a *true convolution kernel*:
finite, non-negative, summing to 1, in ``scipy.signal.convolve`` orientation, with its centre at
index ``(k // 2, k // 2)`` (see ``docs/CONVENTIONS.md``). Geometry follows image coordinates:
``x`` runs to the right along columns and ``y`` runs *down* along rows; angles are measured in
degrees counter-clockwise from the ``+x`` axis *as seen on screen*, so a direction at angle ``a`` is
the vector ``(dx, dy) = (cos a, -sin a)`` in (column, row) steps.

Random generators take ``seed: int | numpy.random.Generator`` and are reproducible: the same seed
gives the same kernel, bit for bit.

Generators:

* :func:`linear_motion_kernel` -- straight motion of a given length and angle, anti-aliased.
* :func:`camera_shake_kernel` -- random hand-shake trajectory after Boracchi & Foi 2012.
* :func:`gp_trajectory_kernel` -- smooth random trajectory drawn from a Gaussian process.
* :func:`gaussian_kernel`, :func:`disk_kernel` -- Gaussian blur and defocus (pillbox).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..errors import KernelError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "validate_kernel",
    "validate_kernel_tensor",
    "linear_motion_kernel",
    "camera_shake_kernel",
    "gp_trajectory_kernel",
    "gaussian_kernel",
    "disk_kernel",
    "kernel_to_image",
]

# Sub-samples per pixel side used to compute the area a shape covers in each pixel cell.
_SUPERSAMPLE = 32
# Negative entries down to this value are floating-point noise, not a wrong kernel.
_NEG_TOL = 1e-7
# Boracchi & Foi's reference trajectory: path length 60 px on a 64 px canvas.
_BF_LENGTH = 60.0
_BF_CANVAS = 64.0


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------

def validate_kernel(kernel: np.ndarray, name: str = "kernel", *, atol: float = 1e-3) -> np.ndarray:
    """Check that ``kernel`` is a true blur kernel and return it as a float32 copy.

    Args:
        kernel: numpy array ``(kh, kw)`` of real numbers (any float or integer dtype).
        name: what to call the kernel in the error (an argument name or a file name).
        atol: allowed deviation of the sum from 1.

    Returns:
        float32 ``(kh, kw)`` copy; entries in ``[-1e-7, 0)`` (floating-point noise) are set to 0.
        The sum is *not* renormalised: it is within ``atol`` of 1.

    Raises:
        KernelError: one line naming ``name``, the problem and the offending value, when the kernel
            is not a numpy array, is not 2-D, is empty, has non-finite or negative entries, or
            does not sum to 1 within ``atol``.
    """
    if not isinstance(kernel, np.ndarray):
        kind = type(kernel).__module__.split(".")[0] + "." + type(kernel).__name__
        hint = "; use validate_kernel_tensor for torch tensors" if kind.startswith("torch.") else ""
        raise KernelError(f"{name}: must be a numpy array (kh, kw), got {kind}{hint}")
    if kernel.dtype.kind not in "fiu":
        raise KernelError(f"{name}: must hold real numbers, got dtype {kernel.dtype}")
    if kernel.ndim != 2:
        raise KernelError(f"{name}: must be 2-D (kh, kw), got shape {tuple(kernel.shape)}")
    if kernel.size == 0:
        raise KernelError(f"{name}: is empty (shape {tuple(kernel.shape)})")
    k = np.asarray(kernel, dtype=np.float64)
    bad = ~np.isfinite(k)
    if bad.any():
        raise KernelError(f"{name}: has {int(bad.sum())} non-finite entries (NaN or inf)")
    neg = k < -_NEG_TOL
    if neg.any():
        raise KernelError(
            f"{name}: has {int(neg.sum())} negative entries (min {k.min():.4g}); "
            "a blur kernel must be non-negative"
        )
    total = float(k.sum())
    if abs(total - 1.0) > atol:
        raise KernelError(f"{name}: sums to {total:.6g}, not 1 (tolerance {atol:g})")
    out = np.maximum(k, 0.0).astype(np.float32)
    return out


def validate_kernel_tensor(kernel: "torch.Tensor", name: str = "kernel", *,
                           atol: float = 1e-3) -> "torch.Tensor":
    """Check a torch kernel ``(kh, kw)`` (shared) or ``(B, kh, kw)`` (one per image).

    The same rules as :func:`validate_kernel` apply to each ``(kh, kw)`` slice: floating dtype,
    finite, non-negative (down to -1e-7), sum within ``atol`` of 1.

    Returns:
        the same tensor object, unchanged (so autograd graphs and devices are kept).

    Raises:
        KernelError: one line naming ``name``, the problem and the value.
    """
    import torch

    if not isinstance(kernel, torch.Tensor):
        raise KernelError(f"{name}: must be a torch tensor, got {type(kernel).__name__}")
    if not kernel.dtype.is_floating_point:
        raise KernelError(f"{name}: must be a floating-point tensor, got dtype {kernel.dtype}")
    if kernel.ndim not in (2, 3):
        raise KernelError(
            f"{name}: must be (kh, kw) or (B, kh, kw), got shape {tuple(kernel.shape)}"
        )
    if kernel.numel() == 0:
        raise KernelError(f"{name}: is empty (shape {tuple(kernel.shape)})")
    k = kernel.detach()
    bad = ~torch.isfinite(k)
    if bool(bad.any()):
        raise KernelError(f"{name}: has {int(bad.sum())} non-finite entries (NaN or inf)")
    neg = k < -_NEG_TOL
    if bool(neg.any()):
        raise KernelError(
            f"{name}: has {int(neg.sum())} negative entries (min {float(k.min()):.4g}); "
            "a blur kernel must be non-negative"
        )
    sums = k.reshape(-1, k.shape[-2] * k.shape[-1]).double().sum(dim=1)
    dev = (sums - 1.0).abs()
    worst = int(dev.argmax())
    if float(dev[worst]) > atol:
        where = f" (kernel {worst} of the batch)" if kernel.ndim == 3 else ""
        raise KernelError(
            f"{name}: sums to {float(sums[worst]):.6g}{where}, not 1 (tolerance {atol:g})"
        )
    return kernel


# --------------------------------------------------------------------------------------------
# argument checks and helpers
# --------------------------------------------------------------------------------------------

def _real(value: object, name: str, *, minimum: float | None = None,
          strict: bool = False, maximum: float | None = None) -> float:
    """``value`` as a finite float within bounds, else KernelError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise KernelError(f"{name}: must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise KernelError(f"{name}: must be finite, got {v}")
    if minimum is not None and (v <= minimum if strict else v < minimum):
        rel = ">" if strict else ">="
        raise KernelError(f"{name}: must be {rel} {minimum:g}, got {v:g}")
    if maximum is not None and v > maximum:
        raise KernelError(f"{name}: must be <= {maximum:g}, got {v:g}")
    return v


def _size(value: object, name: str = "size") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise KernelError(f"{name}: must be an integer, got {value!r}")
    v = int(value)
    if v < 1:
        raise KernelError(f"{name}: must be >= 1, got {v}")
    return v


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise KernelError(f"seed: must be a non-negative integer or numpy Generator, got {seed!r}")
    return np.random.default_rng(int(seed))


def _delta(size: int) -> np.ndarray:
    k = np.zeros((size, size), dtype=np.float32)
    k[size // 2, size // 2] = 1.0
    return k


def _room(size: int) -> tuple[int, int]:
    """Pixels between the centre ``size // 2`` and the first / last index."""
    c = size // 2
    return c, size - 1 - c


def _coverage(size: int, inside) -> np.ndarray:
    """Area of each pixel cell covered by a shape, by ``_SUPERSAMPLE``**2 sub-samples per pixel.

    ``inside(x, y)`` takes float64 offsets from the centre pixel ``(size // 2, size // 2)`` (``x``
    right, ``y`` down) and returns a boolean mask. Sub-sample offsets are symmetric about each
    pixel centre, so shapes symmetric about the centre give exactly symmetric kernels.
    Returns float64 ``(size, size)`` coverage fractions in [0, 1].
    """
    s = _SUPERSAMPLE
    sub = (np.arange(s) + 0.5) / s - 0.5
    c = size // 2
    cols = (np.arange(size) - c)[:, None] + sub[None, :]            # (size, s)
    xs = np.broadcast_to(cols.reshape(1, size * s), (s, size * s))   # one pixel row of sub-samples
    out = np.empty((size, size), dtype=np.float64)
    for r in range(size):
        ys = np.broadcast_to((r - c + sub)[:, None], (s, size * s))
        mask = inside(xs, ys)
        out[r] = mask.reshape(s, size, s).sum(axis=(0, 2)) / (s * s)
    return out


def _normalised(k: np.ndarray) -> np.ndarray:
    total = k.sum()
    if not total > 0:  # pragma: no cover - callers make sure some mass lands in the kernel
        raise KernelError("kernel: no mass landed inside the kernel")
    return (k / total).astype(np.float32)


# --------------------------------------------------------------------------------------------
# analytic kernels
# --------------------------------------------------------------------------------------------

def linear_motion_kernel(length: float, angle: float, size: int | None = None) -> np.ndarray:
    """Straight (linear) motion blur, anti-aliased.

    The kernel is the streak a one-pixel-wide point leaves when it moves ``length - 1`` pixels at
    constant speed: the set of points within 0.5 px of a segment of length ``length - 1`` centred
    on the kernel centre (a "capsule"), and each pixel holds the area of its cell that the streak
    covers (computed by 32x32 supersampling), normalised to sum 1. So ``length`` is the total
    extent of the streak in pixels, ``length <= 1`` gives a delta (no blur), and at angle 0 an
    integer ``length`` ``L`` fills ``L`` pixels of the centre row, with the two end pixels at
    ``0.5 + pi/8`` of the weight of the inner ones (the round ends of the streak). Like MATLAB's
    ``fspecial('motion', L, angle)`` up to the anti-aliasing of the ends.

    Args:
        length: streak length in pixels, finite, ``>= 0``.
        angle: direction in degrees, counter-clockwise from the ``+x`` axis (columns, to the
            right) as seen on screen; image ``y`` points down, so angle 90 is a vertical streak
            and angle 45 runs from the lower left to the upper right. Any finite value (mod 180).
        size: odd or even side of the square kernel; default ``(ceil(length) + 2) | 1`` (odd).

    Returns:
        float32 ``(size, size)``, non-negative, sums to 1, centroid at ``(size//2, size//2)``.

    Raises:
        KernelError: naming ``length``, ``angle`` or ``size`` for a non-finite or negative value,
            or a ``size`` too small to hold the streak.
    """
    length = _real(length, "length", minimum=0.0)
    angle = _real(angle, "angle")
    if size is None:
        size = (math.ceil(length) + 2) | 1
    size = _size(size)
    half = max(length - 1.0, 0.0) / 2.0
    if half == 0.0:
        return _delta(size)
    a = math.radians(angle % 180.0)
    dx, dy = math.cos(a), -math.sin(a)
    # endpoints at +-half*(dx, dy) must be within the pixel centres of the kernel
    room = min(_room(size))
    need = max(abs(dx), abs(dy)) * half
    if need > room + 1e-9:
        needed = 2 * math.ceil(need - 1e-9) + 1
        raise KernelError(
            f"size: {size} is too small for a linear motion of length {length:g} at angle "
            f"{angle:g} (needs at least {needed})"
        )

    def inside(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        t = np.clip(x * dx + y * dy, -half, half)      # closest point on the segment
        ex, ey = x - t * dx, y - t * dy
        return ex * ex + ey * ey <= 0.25

    return _normalised(_coverage(size, inside))


def gaussian_kernel(sigma: float, size: int | None = None) -> np.ndarray:
    """Isotropic Gaussian blur ``exp(-(x^2 + y^2) / (2 sigma^2))`` sampled at pixel centres.

    Args:
        sigma: standard deviation in pixels, finite, ``>= 0``; 0 gives a delta.
        size: side of the square kernel; default ``2 * ceil(4 sigma) + 1`` (truncation at 4 sigma,
            which removes under 0.1 % of the variance). A smaller explicit ``size`` truncates the
            Gaussian there (and renormalises to sum 1).

    Returns:
        float32 ``(size, size)``, non-negative, sums to 1, centred at ``(size//2, size//2)``.
    """
    sigma = _real(sigma, "sigma", minimum=0.0)
    if size is None:
        size = 2 * math.ceil(4.0 * sigma) + 1
    size = _size(size)
    if sigma == 0.0:
        return _delta(size)
    r = np.arange(size, dtype=np.float64) - size // 2
    g = np.exp(-0.5 * (r / sigma) ** 2)
    return _normalised(np.outer(g, g))


def disk_kernel(radius: float, size: int | None = None) -> np.ndarray:
    """Defocus blur: a uniform disk ("pillbox") of ``radius`` pixels, anti-aliased.

    Each pixel holds the area of its cell inside the disk (32x32 supersampling), normalised to sum
    1. The kernel has the symmetry of the square (flips and transpose). A radius ``<= 0.5`` lies
    inside the centre pixel and gives a delta.

    Args:
        radius: disk radius in pixels, finite, ``>= 0``.
        size: side of the square kernel; default ``2 * ceil(radius - 0.5) + 1``, the smallest odd
            size holding the disk. A smaller explicit size is refused.

    Returns:
        float32 ``(size, size)``, non-negative, sums to 1, centred at ``(size//2, size//2)``.
    """
    radius = _real(radius, "radius", minimum=0.0)
    reach = max(math.ceil(radius - 0.5), 0)
    if size is None:
        size = 2 * reach + 1
    size = _size(size)
    if radius <= 0.5:
        return _delta(size)
    if reach > min(_room(size)):
        raise KernelError(
            f"size: {size} is too small for a disk of radius {radius:g} (needs at least "
            f"{2 * reach + 1})"
        )
    r2 = radius * radius
    return _normalised(_coverage(size, lambda x, y: x * x + y * y <= r2))


# --------------------------------------------------------------------------------------------
# trajectory kernels
# --------------------------------------------------------------------------------------------

def _splat(points: np.ndarray, size: int) -> np.ndarray:
    """Bilinear splatting of equally weighted points ``(N, 2)`` = (x, y) in pixel indices.

    Every point must lie in ``[0, size - 1]`` on both axes. Bilinear weights keep the centroid of
    the points exactly. Returns float64 ``(size, size)`` summing to 1.
    """
    x, y = points[:, 0], points[:, 1]
    x0 = np.clip(np.floor(x), 0, size - 1).astype(np.int64)
    y0 = np.clip(np.floor(y), 0, size - 1).astype(np.int64)
    fx, fy = x - x0, y - y0
    x1 = np.minimum(x0 + 1, size - 1)
    y1 = np.minimum(y0 + 1, size - 1)
    w = 1.0 / len(points)
    k = np.zeros(size * size, dtype=np.float64)
    np.add.at(k, y0 * size + x0, w * (1 - fx) * (1 - fy))
    np.add.at(k, y0 * size + x1, w * fx * (1 - fy))
    np.add.at(k, y1 * size + x0, w * (1 - fx) * fy)
    np.add.at(k, y1 * size + x1, w * fx * fy)
    return k.reshape(size, size)


def _densify(path: np.ndarray, step: float = 0.1) -> np.ndarray:
    """Linearly interpolate a path ``(N, 2)`` sampled uniformly in time so that consecutive
    samples are at most ``step`` pixels apart (still uniform in time)."""
    if len(path) < 2:
        return path
    gaps = np.hypot(*np.diff(path, axis=0).T)
    factor = max(1, math.ceil(float(gaps.max()) / step))
    if factor == 1:
        return path
    t = np.arange(len(path), dtype=np.float64)
    tt = np.linspace(0.0, len(path) - 1, (len(path) - 1) * factor + 1)
    return np.stack([np.interp(tt, t, path[:, 0]), np.interp(tt, t, path[:, 1])], axis=1)


def _rasterise_trajectory(path: np.ndarray, size: int, fill: float | None = None) -> np.ndarray:
    """Kernel of a camera trajectory ``(N, 2)`` (x right, y down, pixels), uniform in time.

    The trajectory is moved so that its centre of mass (its time average) lands on the kernel
    centre ``(size//2, size//2)``. If ``fill`` is given it is scaled so that its largest offset
    from the centre of mass is ``fill`` times the room between the centre and the kernel border;
    otherwise it is scaled down (never up) only if it would not fit. Each time sample then adds
    equal mass by bilinear splatting, so slow parts of the motion get more weight, as they do on a
    sensor. Returns float32 ``(size, size)`` summing to 1, centroid exactly at the centre.
    """
    path = np.asarray(path, dtype=np.float64)
    room = float(min(_room(size)))
    rel = path - path.mean(axis=0)
    reach = float(np.abs(rel).max())
    if room == 0.0 or reach == 0.0:
        return _delta(size)
    # first bring it to about its final scale, so that densifying uses a step in kernel pixels
    rel = rel * (fill * room / reach if fill is not None else min(1.0, room / reach))
    rel = _densify(rel)
    rel = rel - rel.mean(axis=0)            # the mean of the densified (still time-uniform) path
    reach = float(np.abs(rel).max())
    if fill is not None:
        rel = rel * (fill * room / reach)
    elif reach > room:
        rel = rel * (room / reach)
    c = size // 2
    pts = np.clip(rel + c, 0.0, size - 1.0)  # clip only removes rounding overshoot (<1e-12)
    return _normalised(_splat(pts, size))


def camera_shake_kernel(
    size: int,
    seed: int | np.random.Generator,
    *,
    exposure: float | None = None,
    anxiety: float | None = None,
    length: float | None = None,
    steps: int = 2000,
) -> np.ndarray:
    """Random camera-shake kernel after Boracchi & Foi 2012 ("Modeling the performance of image
    restoration from motion blur", IEEE TIP 21(8); their ``createTrajectory`` / ``createPSFs``).

    A particle moves at constant speed for ``steps`` time samples. At each step its velocity gets a
    Gaussian random component (strength ``anxiety * gaussian_term``), a pull back towards the start
    (``centripetal`` inertia term), and, with probability ``big_shake_freq * anxiety``, an abrupt
    impulse that turns it roughly backwards (a hand jerk); the velocity is then renormalised to
    ``length / (steps - 1)`` per step. ``gaussian_term ~ U(0, 10)``, ``centripetal ~ U(0, 0.7)``,
    ``big_shake_freq ~ U(0, 0.2)`` and the initial direction are drawn from the seed, as in the
    paper's code. The first ``exposure`` fraction of the trajectory is rasterised by bilinear
    splatting (equal mass per time sample), centred by its centre of mass and, if it does not fit
    in ``size``, scaled down to fit.

    Args:
        size: side of the square kernel, ``>= 1``.
        seed: int ``>= 0`` or ``numpy.random.Generator`` (same seed, same kernel).
        exposure: fraction of the trajectory the shutter is open, in ``(0, 1]``; default drawn
            ``U(0.5, 1)`` (the paper uses 1/100, 1/10, 1/2, 1).
        anxiety: amount of shake in ``[0, 1]``; 0 gives a straight line, 1e-3 gently curved
            paths, 1e-2 and above tight scribbles. Default drawn log-uniformly in
            ``[1e-4, 1e-2]`` (median extent on a 31 px kernel: 26 px at 1e-4, 16 at 1e-3, 6 at
            1e-2). The paper's code draws ``U(0, 0.1)``, which mostly gives 2-4 px blobs;
            DeblurGAN (Kupyn et al. 2018) drew from ``[3e-5, 3e-3]``.
        length: total path length in pixels at full exposure, ``> 0``; default
            ``size * 60 / 64`` (the paper: 60 for a 64-pixel kernel). The random walk is simulated
            at the paper's scale (length 60) and then scaled to ``length``, so the shape
            statistics do not depend on ``size``.
        steps: number of time samples, ``>= 2`` (the paper: 2000).

    Returns:
        float32 ``(size, size)``, non-negative, sums to 1, centroid at ``(size//2, size//2)``.
    """
    size = _size(size)
    rng = _rng(seed)
    steps = _size(steps, "steps")
    if steps < 2:
        raise KernelError(f"steps: must be >= 2, got {steps}")
    # draw every random number in a fixed order so that the result depends only on the seed
    draw_exposure = rng.uniform(0.5, 1.0)
    draw_anxiety = 10.0 ** rng.uniform(-4.0, -2.0)
    centripetal = 0.7 * rng.random()
    gaussian_term = 10.0 * rng.random()
    big_shake_freq = 0.2 * rng.random()
    init_angle = 2.0 * math.pi * rng.random()
    u_shake = rng.random(steps - 1)
    u_turn = rng.random(steps - 1)
    gauss = rng.standard_normal((steps - 1, 2))

    exposure = draw_exposure if exposure is None else _real(
        exposure, "exposure", minimum=0.0, strict=True, maximum=1.0)
    anxiety = draw_anxiety if anxiety is None else _real(anxiety, "anxiety", minimum=0.0,
                                                         maximum=1.0)
    if length is None:
        length = size * _BF_LENGTH / _BF_CANVAS
    else:
        length = _real(length, "length", minimum=0.0, strict=True)

    # simulate in the paper's units (path length 60) so that the shape statistics do not depend on
    # the kernel size, then scale the path to ``length``
    step_len = _BF_LENGTH / (steps - 1)
    v0 = complex(math.cos(init_angle), math.sin(init_angle))
    v = v0 * (anxiety if anxiety > 0 else step_len)
    x = np.zeros(steps, dtype=np.complex128)
    pos = 0j
    p_big = big_shake_freq * anxiety
    for t in range(steps - 1):
        if u_shake[t] < p_big:  # impulsive shake, likely opposite to the current direction
            turn = math.pi + u_turn[t] - 0.5
            nxt = 2.0 * v * complex(math.cos(turn), math.sin(turn))
        else:
            nxt = 0j
        dv = nxt + anxiety * (gaussian_term * complex(gauss[t, 0], gauss[t, 1])
                              - centripetal * pos) * step_len
        v = v + dv
        mag = abs(v)
        v = (v / mag if mag > 0 else v0) * step_len
        pos = pos + v
        x[t + 1] = pos
    x *= length / _BF_LENGTH
    n = max(2, math.ceil(exposure * (steps - 1)) + 1)
    seg = x[:n]
    path = np.stack([seg.real, seg.imag], axis=1)
    return _rasterise_trajectory(path, size)


def gp_trajectory_kernel(
    size: int,
    seed: int | np.random.Generator,
    *,
    length_scale: float = 0.3,
    fill: float | None = None,
    samples: int = 128,
) -> np.ndarray:
    """Smooth random motion kernel from a Gaussian-process trajectory.

    ``x(t)`` and ``y(t)``, ``t`` in ``[0, 1]`` (the exposure), are independent zero-mean Gaussian
    processes with squared-exponential covariance ``k(t, t') = exp(-(t - t')^2 / (2 l^2))``, the
    kind of smooth synthetic camera path used for training kernels by Schuler et al. 2016
    ("Learning to deblur") and Sun et al. 2013. Each is drawn on ``samples`` equally spaced times
    (through an eigendecomposition of the covariance, which is exact even where the matrix is
    numerically singular), interpolated linearly, centred by its centre of mass, scaled so that
    its largest offset from the centre fills ``fill`` of the room to the kernel border, and
    rasterised by bilinear splatting with equal mass per time sample.

    Args:
        size: side of the square kernel, ``>= 1``.
        seed: int ``>= 0`` or ``numpy.random.Generator``.
        length_scale: ``l`` in units of the exposure time, ``> 0`` and ``<= 10``; small values
            give wiggly paths, large values nearly straight ones.
        fill: in ``(0, 1]``; default drawn ``U(0.4, 1)`` from the seed.
        samples: number of GP time samples, ``>= 2``.

    Returns:
        float32 ``(size, size)``, non-negative, sums to 1, centroid at ``(size//2, size//2)``.
    """
    size = _size(size)
    rng = _rng(seed)
    length_scale = _real(length_scale, "length_scale", minimum=0.0, strict=True, maximum=10.0)
    samples = _size(samples, "samples")
    if samples < 2:
        raise KernelError(f"samples: must be >= 2, got {samples}")
    draw_fill = rng.uniform(0.4, 1.0)
    z = rng.standard_normal((samples, 2))
    fill = draw_fill if fill is None else _real(fill, "fill", minimum=0.0, strict=True, maximum=1.0)
    t = np.linspace(0.0, 1.0, samples)
    cov = np.exp(-0.5 * ((t[:, None] - t[None, :]) / length_scale) ** 2)
    lam, vec = np.linalg.eigh(cov)
    path = vec @ (np.sqrt(np.clip(lam, 0.0, None))[:, None] * z)
    return _rasterise_trajectory(path, size, fill=fill)


# --------------------------------------------------------------------------------------------
# viewing
# --------------------------------------------------------------------------------------------

def kernel_to_image(kernel: np.ndarray) -> np.ndarray:
    """Scale a kernel for viewing: float32 ``(kh, kw)`` in ``[0, 1]`` with its maximum at 1.

    Raises KernelError (via :func:`validate_kernel`, tolerance 1e-2 on the sum) for a kernel that
    is not a blur kernel.
    """
    k = validate_kernel(kernel, atol=1e-2)
    return (k / k.max()).astype(np.float32)
