"""Spatially varying blur from a camera trajectory (camera shake).

During the exposure the camera moves; each pose ``t`` sees the sharp scene warped by a homography
``H_t`` (Whyte et al., "Non-uniform Deblurring for Shaken Images", IJCV 2012; Köhler et al.,
"Recording and Playback of Camera Shake", ECCV 2012), and the sensor integrates light over time::

    B(p) = g^-1( 1/T sum_t g( I(H_t^-1 p) ) ),   g(x) = x ** gamma  (linear light, survey §III-C)

In-plane trajectories ``(T, 3)`` hold ``[tx, ty, theta]`` per pose: a rotation by ``theta`` radians
about the rotation centre (default the image centre) followed by a translation ``(tx, ty)`` in
pixels (x right, y down; with y down a positive ``theta`` turns the picture clockwise on screen).
General trajectories ``(T, 3, 3)`` hold homographies in pixel coordinates (pixel centres at
integers, ``[x, y, 1]`` homogeneous) mapping the sharp image onto the image seen at pose ``t``.

A pure translation trajectory ``d_t`` is a uniform blur by the kernel that puts mass ``1/T`` at each
``d_t`` (``scipy.signal.convolve`` orientation): the kernel *is* the trajectory.

**Re-centring.** The trajectory is re-centred on its middle pose ``m = T // 2``
(``H_t <- H_t H_m^-1``), so the sharp image, the view at the middle of the exposure, is aligned with
the input: the input *is* the sharp reference of the blurred output.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import ConfigError, ImageError, KernelError
# shared validators of deblurkit.blur (private to the sub-package)
from .nonuniform import (
    BOUNDARIES, _check_boundary, _check_image_array, _check_image_tensor, _check_nonneg,
    _check_positive_int, _check_seed,
)

#: Most poses a trajectory is densified to (see ``max_step`` of :func:`blur_camera_trajectory`).
MAX_POSES = 2048


# --------------------------------------------------------------------------------------------
# random trajectories
# --------------------------------------------------------------------------------------------

def _smooth_walk(
    rng: np.random.Generator, steps: int, dims: int, inertia: float = 0.8
) -> np.ndarray:
    """A smooth random path (steps, dims): Gaussian accelerations, AR(1) velocity, integrated.

    Re-centred so the middle sample ``steps // 2`` is 0.
    """
    acc = rng.standard_normal((steps, dims))
    vel = np.zeros_like(acc)
    for t in range(steps):
        vel[t] = (inertia * vel[t - 1] if t else 0.0) + acc[t]
    pos = np.cumsum(vel, axis=0)
    return pos - pos[steps // 2]


def _normalise(path: np.ndarray, amplitude: float) -> np.ndarray:
    """Scale a (steps, dims) path so its largest vector norm is ``amplitude``."""
    peak = float(np.sqrt((path**2).sum(axis=1)).max())
    return path * (amplitude / peak) if peak > 0 else np.zeros_like(path)


def random_camera_trajectory(
    seed: int, *, steps: int = 64, max_translation: float = 8.0, max_rotation_deg: float = 1.0,
    inertia: float = 0.8,
) -> np.ndarray:
    """A seeded smooth random in-plane camera trajectory (translation + rotation), like Köhler's.

    Each component is a random walk of the velocity (Gaussian accelerations, velocity inertia
    ``inertia``), integrated to a smooth path and re-centred so the middle pose ``steps // 2`` is
    the identity ``[0, 0, 0]``. The translation path is scaled so that its largest offset from the
    middle pose is exactly ``max_translation`` pixels, the rotation so that its largest angle is
    exactly ``max_rotation_deg`` (draw these at random yourself to vary the amount of blur; 0
    switches a component off).

    Args:
        seed: non-negative int; the same arguments always give the same trajectory.
        steps: number of poses T (>= 1).
        max_translation: pixels (>= 0).
        max_rotation_deg: degrees (>= 0).
        inertia: velocity memory in [0, 1): larger gives longer, straighter strokes.

    Returns:
        (T, 3) float64 array of ``[tx, ty, theta]``: pixels (x right, y down) and radians.
    """
    seed = _check_seed(seed)
    steps = _check_positive_int(steps, "steps")
    max_translation = _check_nonneg(max_translation, "max_translation")
    max_rotation_deg = _check_nonneg(max_rotation_deg, "max_rotation_deg")
    inertia = _check_nonneg(inertia, "inertia")
    if inertia >= 1:
        raise ConfigError(f"inertia={inertia!r}: expected a value in [0, 1)")
    rng = np.random.default_rng([seed, 3])
    shift = _normalise(_smooth_walk(rng, steps, 2, inertia), max_translation)
    angle = _normalise(_smooth_walk(rng, steps, 1, inertia), math.radians(max_rotation_deg))
    return np.concatenate([shift, angle], axis=1)


def intrinsics(width: int, height: int, focal: float) -> np.ndarray:
    """Pinhole camera matrix ``K`` (3, 3) with principal point at the image centre, in pixels."""
    return np.array([[focal, 0.0, (width - 1) / 2],
                     [0.0, focal, (height - 1) / 2],
                     [0.0, 0.0, 1.0]])


def _params_to_homographies(params: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(T, 6) ``[tx, ty, rx, ry, rz, zoom]`` -> (T, 3, 3) ``H = Tr Z K R K^-1``."""
    from scipy.spatial.transform import Rotation

    k_inv = np.linalg.inv(k)
    cx, cy = k[0, 2], k[1, 2]
    rot = Rotation.from_rotvec(params[:, 2:5]).as_matrix()
    out = k[None] @ rot @ k_inv[None]
    s = 1.0 + params[:, 5]
    zoom = np.zeros_like(out)
    zoom[:, 0, 0] = s
    zoom[:, 1, 1] = s
    zoom[:, 0, 2] = cx * (1 - s) + params[:, 0]
    zoom[:, 1, 2] = cy * (1 - s) + params[:, 1]
    zoom[:, 2, 2] = 1.0
    out = zoom @ out
    return out / out[:, 2:3, 2:3]


def _probe_points(width: int, height: int) -> np.ndarray:
    """(3, 9) homogeneous points: corners, edge midpoints and centre of the image."""
    xs, ys = np.meshgrid(np.linspace(0, width - 1, 3), np.linspace(0, height - 1, 3))
    return np.stack([xs.ravel(), ys.ravel(), np.ones(9)])


def _apply(hom: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(T, 3, 3) applied to (3, N) -> (T, 2, N) inhomogeneous points."""
    q = hom @ pts
    return q[:, :2] / q[:, 2:3]


def trajectory_displacement(homographies: np.ndarray, width: int, height: int) -> float:
    """Largest distance in pixels any probe point (corners, edge midpoints, centre) moves from its
    place at the identity, over all poses of a (T, 3, 3) trajectory."""
    pts = _probe_points(width, height)
    return float(np.sqrt(((_apply(homographies, pts) - pts[None, :2]) ** 2).sum(axis=1)).max())


def random_homography_trajectory(
    seed: int, width: int, height: int, *, focal: float | None = None, steps: int = 64,
    max_translation: float = 4.0, max_tilt_deg: float = 0.3, max_roll_deg: float = 0.5,
    max_zoom: float = 0.005, max_displacement: float | None = None, inertia: float = 0.8,
) -> np.ndarray:
    """A seeded smooth random 3-D camera-shake trajectory as homographies (Whyte et al. 2012).

    Pose ``t``: ``H_t = Tr(tx, ty) Z(1 + z) K R(rx, ry, rz) K^-1`` with ``K`` = :func:`intrinsics`
    (focal length ``focal`` px, principal point at the image centre), ``R`` a small 3-D rotation
    (``rx, ry``: out-of-plane tilt, pitch/yaw; ``rz``: in-plane roll), ``Z`` a zoom about the
    principal point (forward/backward motion) and ``Tr`` an image-plane translation (camera
    translation for a distant scene). Each component is a smooth random walk, re-centred so the
    middle pose is the identity, and scaled so its largest value is exactly its ``max_*``
    (0 switches it off). If ``max_displacement`` is given, all components are then scaled together
    so that the largest displacement of the image corners / edge midpoints / centre over the
    trajectory (:func:`trajectory_displacement`) is ``max_displacement`` pixels (to 1 %).

    Args:
        seed: non-negative int; the same arguments always give the same trajectory.
        width, height: image size in pixels.
        focal: focal length in pixels; default ``max(width, height)`` (about 53 degrees of view).
        steps: number of poses T (>= 1).
        max_translation: pixels; max_tilt_deg, max_roll_deg: degrees; max_zoom: relative scale.
        max_displacement: optional target extent of the blur in pixels (>= 0).
        inertia: velocity memory in [0, 1), as in :func:`random_camera_trajectory`.

    Returns:
        (T, 3, 3) float64 homographies (``H[2, 2] == 1``), pose ``T // 2`` the identity; usable
        directly by :func:`blur_camera_trajectory`.
    """
    seed = _check_seed(seed)
    width = _check_positive_int(width, "width")
    height = _check_positive_int(height, "height")
    steps = _check_positive_int(steps, "steps")
    focal = float(max(width, height)) if focal is None else _check_nonneg(focal, "focal")
    if focal <= 0:
        raise ConfigError(f"focal={focal!r}: expected a focal length > 0 pixels")
    amps = [_check_nonneg(max_translation, "max_translation"),
            math.radians(_check_nonneg(max_tilt_deg, "max_tilt_deg")),
            math.radians(_check_nonneg(max_roll_deg, "max_roll_deg")),
            _check_nonneg(max_zoom, "max_zoom")]
    inertia = _check_nonneg(inertia, "inertia")
    if inertia >= 1:
        raise ConfigError(f"inertia={inertia!r}: expected a value in [0, 1)")
    rng = np.random.default_rng([seed, 4])
    params = np.concatenate([
        _normalise(_smooth_walk(rng, steps, 2, inertia), amps[0]),
        _normalise(_smooth_walk(rng, steps, 2, inertia), amps[1]),
        _normalise(_smooth_walk(rng, steps, 1, inertia), amps[2]),
        _normalise(_smooth_walk(rng, steps, 1, inertia), amps[3]),
    ], axis=1)
    k = intrinsics(width, height, focal)
    hom = _params_to_homographies(params, k)
    if max_displacement is not None:
        target = _check_nonneg(max_displacement, "max_displacement")
        for _ in range(8):
            current = trajectory_displacement(hom, width, height)
            if current == 0:
                if target == 0:
                    break
                raise ConfigError(
                    f"max_displacement={target!r}: cannot be reached, every max_* amplitude is 0"
                )
            if abs(current - target) <= 1e-3 * target:
                break
            params = params * (target / current)
            hom = _params_to_homographies(params, k)
    return hom


# --------------------------------------------------------------------------------------------
# blur along a trajectory
# --------------------------------------------------------------------------------------------

def _rigid_homographies(traj: np.ndarray, cx: float, cy: float) -> np.ndarray:
    """(T, 3) [tx, ty, theta] -> (T, 3, 3): rotate by theta about (cx, cy), then translate."""
    c, s = np.cos(traj[:, 2]), np.sin(traj[:, 2])
    out = np.zeros((len(traj), 3, 3))
    out[:, 0, 0] = c
    out[:, 0, 1] = -s
    out[:, 1, 0] = s
    out[:, 1, 1] = c
    out[:, 0, 2] = traj[:, 0] + cx - (c * cx - s * cy)
    out[:, 1, 2] = traj[:, 1] + cy - (s * cx + c * cy)
    out[:, 2, 2] = 1.0
    return out


def _check_trajectory(trajectory: object) -> np.ndarray:
    if isinstance(trajectory, torch.Tensor):
        trajectory = trajectory.detach().cpu().double().numpy()
    if not isinstance(trajectory, np.ndarray):
        raise KernelError(
            f"trajectory: expected an array (T, 3) or (T, 3, 3), got {type(trajectory).__name__}"
        )
    traj = np.asarray(trajectory, dtype=np.float64)
    if not (traj.ndim == 2 and traj.shape[1] == 3 or traj.ndim == 3 and traj.shape[1:] == (3, 3)) \
            or traj.shape[0] < 1:
        raise KernelError(
            f"trajectory: expected shape (T, 3) or (T, 3, 3) with T >= 1, got {traj.shape}"
        )
    bad = int((~np.isfinite(traj)).sum())
    if bad:
        raise KernelError(f"trajectory: has {bad} non-finite values (NaN or inf)")
    if traj.ndim == 3:
        det = np.linalg.det(traj)
        if np.any(np.abs(traj[:, 2, 2]) < 1e-12) or np.any(np.abs(det) < 1e-12):
            i = int(np.argmin(np.abs(det)))
            raise KernelError(
                f"trajectory: homography {i} is singular or has H[2, 2] = 0 (det {det[i]:.3g})"
            )
    return traj


def _pose_times(hom: np.ndarray, width: int, height: int, max_step: float | None) -> np.ndarray:
    """Fractional pose indices, uniform in time, so no probe point moves > max_step px per pose.

    Returns ``linspace(0, T - 1, (T - 1) k + 1)`` with the smallest ``k >= 1`` that keeps the
    largest per-pose motion of the corners / edge midpoints / centre within ``max_step`` (at most
    ``MAX_POSES`` poses); ``max_step=None`` keeps the given poses (``k = 1``).
    """
    t = len(hom)
    if t < 2 or max_step is None:
        return np.arange(t, dtype=np.float64)
    pts = _probe_points(width, height)
    moved = _apply(hom[1:], pts) - _apply(hom[:-1], pts)
    step = float(np.sqrt((moved**2).sum(axis=1)).max())
    k = max(1, math.ceil(step / max_step - 1e-9))
    k = min(k, max(1, (MAX_POSES - 1) // (t - 1)))
    return np.linspace(0, t - 1, (t - 1) * k + 1)


def _interpolate(values: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``values`` (T, ...) at fractional indices ``times``."""
    if len(values) < 2:
        return values
    i0 = np.minimum(np.floor(times).astype(int), len(values) - 2)
    frac = (times - i0).reshape(-1, *([1] * (values.ndim - 1)))
    return values[i0] * (1 - frac) + values[i0 + 1] * frac


def _rigid_inverse(params: np.ndarray, cx: float, cy: float) -> np.ndarray:
    """Closed-form inverse of :func:`_rigid_homographies`: ``q = R(-theta)(p - d - c) + c``."""
    c, s = np.cos(params[:, 2]), np.sin(params[:, 2])
    out = np.zeros((len(params), 3, 3))
    out[:, 0, 0] = c
    out[:, 0, 1] = s
    out[:, 1, 0] = -s
    out[:, 1, 1] = c
    ox = -params[:, 0] - cx
    oy = -params[:, 1] - cy
    out[:, 0, 2] = c * ox + s * oy + cx
    out[:, 1, 2] = -s * ox + c * oy + cy
    out[:, 2, 2] = 1.0
    return out


def blur_camera_trajectory(
    image: torch.Tensor | np.ndarray, trajectory: np.ndarray | torch.Tensor, *,
    linear_light: bool = True, gamma: float = 2.2, boundary: str = "reflection",
    center: tuple[float, float] | None = None, max_step: float | None = 1.0,
) -> torch.Tensor | np.ndarray:
    """Camera-shake blur: the average of the image warped by every pose of a trajectory.

    ``B(p) = g^-1(1/N sum_t g(I(H_t^-1 p)))`` with bilinear sampling, ``g(x) = x ** gamma`` when
    ``linear_light`` (the sensor integrates linear light; photos are gamma-encoded, survey §III-C),
    else ``g`` the identity. The trajectory is re-centred on its middle pose ``T // 2`` so the input
    is the sharp reference aligned with the output (see the module docstring).

    Args:
        image: (B, C, H, W) float tensor, or H x W x C / H x W float numpy array; values in [0, 1]
            (must be >= 0 when ``linear_light``).
        trajectory: (T, 3) ``[tx, ty, theta]`` (pixels, radians) or (T, 3, 3) homographies in
            pixel coordinates, numpy or torch; shared by the whole batch.
        linear_light: average ``image ** gamma`` and return ``mean ** (1 / gamma)``.
        gamma: display gamma (> 0), used only when ``linear_light``.
        boundary: "reflection" (default), "replicate" or "zeros": content outside the frame.
        center: rotation centre ``(cx, cy)`` in pixels for (T, 3) trajectories; default the image
            centre ``((W - 1) / 2, (H - 1) / 2)``.
        max_step: if not None, poses are inserted uniformly in time (linear interpolation) so
            that no image point moves more than ``max_step`` pixels between consecutive poses
            (smooth streaks instead of ghost copies; at most ``MAX_POSES`` poses). None averages
            exactly the given poses.

    Returns:
        The blurred image, same type, shape and dtype as ``image`` (numpy: float32).
    """
    is_numpy = isinstance(image, np.ndarray)
    if is_numpy:
        arr = _check_image_array(image)
        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        t = t[None, None] if arr.ndim == 2 else t.permute(2, 0, 1)[None]
    else:
        t = _check_image_tensor(image)
    _check_boundary(boundary)
    traj = _check_trajectory(trajectory)
    if not isinstance(linear_light, bool):
        raise ConfigError(f"linear_light={linear_light!r}: expected True or False")
    if linear_light:
        gamma = _check_nonneg(gamma, "gamma")
        if gamma == 0:
            raise ConfigError("gamma=0: expected a gamma > 0")
        low = float(t.min())
        if low < 0:
            raise ImageError(
                f"image: has negative values (min {low:.4g}); linear light needs values in [0, 1]"
            )
    if max_step is not None:
        max_step = _check_nonneg(max_step, "max_step")
        if max_step == 0:
            raise ConfigError("max_step=0: expected a step > 0 pixels, or None")
    b, c, h, w = t.shape
    if center is None:
        centre = ((w - 1) / 2, (h - 1) / 2)
    else:
        try:
            centre = (float(center[0]), float(center[1]))
        except (TypeError, IndexError, ValueError):
            raise ConfigError(f"center={center!r}: expected a pair (cx, cy) of pixels") from None
        if len(center) != 2 or not all(math.isfinite(x) for x in centre):
            raise ConfigError(f"center={center!r}: expected a pair (cx, cy) of finite pixels")

    mid = len(traj) // 2
    params = None
    if traj.ndim == 2:
        # Re-centre exactly in parameter space: H_t H_mid^-1 = Tr(d_t - R(th_t - th_m) d_m)
        # R_c(th_t - th_m), so the path stays a rigid [tx, ty, theta] path (exact interpolation).
        dth = traj[:, 2] - traj[mid, 2]
        cos, sin = np.cos(dth), np.sin(dth)
        dx, dy = traj[mid, 0], traj[mid, 1]
        params = np.stack([traj[:, 0] - (cos * dx - sin * dy),
                           traj[:, 1] - (sin * dx + cos * dy), dth], axis=1)
        hom = _rigid_homographies(params, *centre)
    else:
        hom = traj / traj[:, 2:3, 2:3]
        if not np.array_equal(hom[mid], np.eye(3)):
            hom = hom @ np.linalg.inv(hom[mid])
            hom = hom / hom[:, 2:3, 2:3]
    times = _pose_times(hom, w, h, max_step)
    if params is not None:
        inv = _rigid_inverse(_interpolate(params, times), *centre)
    else:
        inv = np.linalg.inv(_interpolate(hom, times))

    work = t ** gamma if linear_light else t
    # Sampling positions q = H_t^-1 p, straight in grid_sample's normalised coordinates
    # (align_corners=True), computed in float64 (float32 where the device has none).
    cdtype = torch.float32 if t.device.type == "mps" or t.dtype == torch.float32 else torch.float64
    ys, xs = torch.meshgrid(torch.arange(h, dtype=cdtype, device=t.device),
                            torch.arange(w, dtype=cdtype, device=t.device), indexing="ij")
    normalise = np.array([[2.0 / (w - 1) if w > 1 else 0.0, 0.0, -1.0 if w > 1 else 0.0],
                          [0.0, 2.0 / (h - 1) if h > 1 else 0.0, -1.0 if h > 1 else 0.0],
                          [0.0, 0.0, 1.0]])
    padding = BOUNDARIES[boundary]
    eye = np.eye(3)
    is_identity = np.array([np.array_equal(pose, eye) for pose in inv])
    acc = work * float(is_identity.sum())  # the identity pose reads every pixel exactly
    moving = inv[~is_identity]
    # Poses are sampled in chunks with one grid_sample call each: the chunk's grids are stacked
    # along the height, so the image is read once per call without being copied per pose.
    chunk = max(1, min(len(moving), (1 << 22) // max(1, h * w)))
    for start in range(0, len(moving), chunk):
        m = torch.as_tensor(normalise[None] @ moving[start:start + chunk], dtype=cdtype, device=t.device)
        p = m.shape[0]
        m = m[:, :, :, None, None]  # (p, 3, 3, 1, 1) against (h, w) pixel grids
        gx = xs * m[:, 0, 0] + ys * m[:, 0, 1] + m[:, 0, 2]
        gy = xs * m[:, 1, 0] + ys * m[:, 1, 1] + m[:, 1, 2]
        z = xs * m[:, 2, 0] + ys * m[:, 2, 1] + m[:, 2, 2]
        grid = torch.stack([gx / z, gy / z], dim=-1).to(t.dtype).reshape(1, p * h, w, 2).expand(b, p * h, w, 2)
        s = torch.nn.functional.grid_sample(work, grid, mode="bilinear",
                                            padding_mode=padding, align_corners=True)
        acc = acc + s.view(b, c, p, h, w).sum(dim=2)
    out = acc / len(inv)
    if linear_light:
        out = out.clamp_min(0) ** (1.0 / gamma)
    if is_numpy:
        out = out[0, 0] if image.ndim == 2 else out[0].permute(1, 2, 0)
        return np.ascontiguousarray(out.numpy(), dtype=np.float32)
    return out
