"""Training pairs that look like real blur, made on the fly from sharp photos.

SPEC §3 asks for training data that looks like real blur: camera motion averaged in linear light,
moving objects over a sharp background, saturated lights, noise and JPEG, and pairs with little or no
blur so that a model learns to leave sharp content alone. Each generator here follows the
:class:`deblurkit.data.synthetic.BlurGenerator` protocol (``gen(window, rng) -> {"blur", "sharp"}``,
``window`` = crop plus ``margin`` context pixels each side) and works in *linear light*: the photo is
linearised with ``x ** 2.2`` (survey §III-C, the GoPro recipe), bright regions may be boosted above 1
(a lamp is brighter than the sensor's white), the blur integrates linear light, then the sensor clips
at 1 and the result is re-encoded with ``x ** (1 / 2.2)``. The sharp target is the clipped, re-encoded
middle exposure, so a saturated light is saturated in both.

Generators (names used in configs' ``data.mix``):

- ``camera``: 3-D camera shake (tilt, roll, translation, zoom) as a homography trajectory averaged
  pose by pose — spatially varying blur like real hand shake (Whyte et al. 2012; Köhler et al. 2012).
- ``shake``: uniform camera-shake / Gaussian-process kernels (survey eq. 1), the classic recipe.
- ``object``: a soft-edged object moving over a static or slightly shaken background, with the
  occlusion handled frame by frame: ``B = mean_t[M_t O_t + (1 - M_t) BG]`` (the non-uniform blur of
  survey eq. 13-16 with a motion boundary).
- ``frames``: GoPro-style averaging of a few *discrete* frames (5-11) of larger camera motion, so fast
  motion gives ghosting as in 25 fps video (survey §III-C).
- ``sharp``: no blur or a barely visible one (sub-pixel Gaussian, <= 1.5 px motion).

:class:`MixtureGenerator` draws one of them by weight, then applies the sensor and camera pipeline to
the blurred image only: Poisson-Gaussian noise, 8-bit quantisation and JPEG.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError

GAMMA = 2.2


def _lin(x: np.ndarray) -> np.ndarray:
    return np.power(np.clip(x, 0.0, 1.0), GAMMA, dtype=np.float32)


def _enc(x: np.ndarray) -> np.ndarray:
    return np.power(np.clip(x, 0.0, 1.0), 1.0 / GAMMA).astype(np.float32)


def _boost_highlights(lin: np.ndarray, rng: np.random.Generator, prob: float, gain: tuple[float, float]) -> np.ndarray:
    """With probability ``prob``, multiply the brightest regions (linear luminance above a random
    threshold in [0.55, 0.85], soft edge) by a gain in ``gain``: values above 1 that the sensor will
    clip, like lamps and specular highlights in night shots."""
    if rng.random() >= prob:
        return lin
    lum = lin.mean(axis=2, keepdims=True)
    thr = float(rng.uniform(0.55, 0.85))
    mask = np.clip((lum - thr) / 0.1, 0.0, 1.0)
    g = float(rng.uniform(*gain))
    return lin * (1.0 + (g - 1.0) * mask)


def _crop(x: np.ndarray, m: int) -> np.ndarray:
    return np.ascontiguousarray(x[m:x.shape[0] - m, m:x.shape[1] - m] if m else x)


def _to_t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]


def _from_t(t: torch.Tensor) -> np.ndarray:
    return t[0].permute(1, 2, 0).numpy()


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def _check_range(value, name: str, lo: float = 0.0) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(isinstance(v, (int, float)) for v in value):
        raise ConfigError(f"{name}: expected a pair [lo, hi] of numbers, got {value!r}")
    a, b = float(value[0]), float(value[1])
    if not (lo <= a <= b) or not math.isfinite(b):
        raise ConfigError(f"{name}: expected {lo} <= lo <= hi, got {value!r}")
    return a, b


@dataclass(frozen=True)
class CameraMotionBlur:
    """3-D camera shake: homography trajectory (:func:`deblurkit.blur.camera.random_homography_trajectory`)
    averaged in linear light; blur extent (largest displacement of any image point) drawn from
    ``extent`` pixels. ``margin`` context pixels each side are warped in and cropped away."""

    extent: tuple[float, float] = (2.0, 36.0)
    highlight_prob: float = 0.3
    highlight_gain: tuple[float, float] = (1.5, 6.0)
    margin: int = 24

    def __post_init__(self):
        object.__setattr__(self, "extent", _check_range(self.extent, "camera.extent"))
        object.__setattr__(self, "highlight_gain", _check_range(self.highlight_gain, "camera.highlight_gain", 1.0))

    def __call__(self, window: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        from ..blur.camera import blur_camera_trajectory, random_homography_trajectory

        h, w = window.shape[:2]
        lin = _boost_highlights(_lin(window), rng, self.highlight_prob, self.highlight_gain)
        ext = float(rng.uniform(*self.extent))
        focal = float(rng.uniform(0.6, 2.0)) * max(h, w) * 4  # a crop of a larger photo: long focal
        hom = random_homography_trajectory(
            _seed(rng), w, h, focal=focal, steps=32, max_translation=float(rng.uniform(0, 1)),
            max_tilt_deg=float(rng.uniform(0, 1)), max_roll_deg=float(rng.uniform(0, 1)),
            max_zoom=float(rng.uniform(0, 0.02)), max_displacement=ext, inertia=float(rng.uniform(0.5, 0.95)),
        )
        out = blur_camera_trajectory(_to_t(lin), hom, linear_light=False, boundary="reflection", max_step=2.0)
        return {"blur": _crop(_enc(_from_t(out)), self.margin), "sharp": _crop(_enc(lin), self.margin)}


@dataclass(frozen=True)
class ShakeKernelBlur:
    """Uniform blur by a random camera-shake or Gaussian-process kernel of ``size`` pixels, in linear
    light with highlights (survey eq. 1)."""

    size: tuple[int, int] = (5, 31)
    highlight_prob: float = 0.3
    highlight_gain: tuple[float, float] = (1.5, 6.0)
    margin: int = 16

    def __call__(self, window: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        from ..blur import kernels as K
        from ..blur.convolve import blur

        lin = _boost_highlights(_lin(window), rng, self.highlight_prob, self.highlight_gain)
        size = int(rng.integers(self.size[0], self.size[1] + 1))
        if rng.random() < 0.6:
            k = K.camera_shake_kernel(size, seed=_seed(rng))
        else:
            k = K.gp_trajectory_kernel(size, seed=_seed(rng))
        out = np.asarray(blur(lin, k, boundary="reflect"), dtype=np.float32)
        return {"blur": _crop(_enc(out), self.margin), "sharp": _crop(_enc(lin), self.margin),
                "kernel": np.asarray(k, dtype=np.float32)}


def _soft_ellipse(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A random soft-edged ellipse mask (H, W, 1) covering 5-40 % of the frame."""
    cy, cx = rng.uniform(0.25, 0.75) * h, rng.uniform(0.25, 0.75) * w
    ry, rx = rng.uniform(0.15, 0.4) * h, rng.uniform(0.15, 0.4) * w
    th = rng.uniform(0, math.pi)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    yy, xx = y - cy, x - cx
    u = (xx * math.cos(th) + yy * math.sin(th)) / rx
    v = (-xx * math.sin(th) + yy * math.cos(th)) / ry
    r = np.sqrt(u * u + v * v)
    edge = 1.5 / max(min(rx, ry), 1.0)
    return np.clip((1.0 - r) / edge, 0.0, 1.0)[:, :, None].astype(np.float32)


def object_path(extent: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """A moving object's path: ``(T, 2)`` pixel offsets ``[x, y]``, T odd, the middle one 0; a
    straight or slightly bent stroke of length drawn from ``extent`` in a random direction."""
    ext = float(rng.uniform(*extent))
    ang = float(rng.uniform(0, 2 * math.pi))
    steps = max(3, int(math.ceil(ext)) + 1) | 1
    t = np.linspace(-0.5, 0.5, steps)
    bend = float(rng.uniform(-0.15, 0.15)) * ext
    return np.stack([t * ext * math.cos(ang) - 4 * bend * t * t * math.sin(ang),
                     t * ext * math.sin(ang) + 4 * bend * t * t * math.cos(ang)], axis=1)


@dataclass(frozen=True)
class ObjectMotionBlur:
    """A moving object over a background (non-uniform blur with a motion boundary).

    The object's texture is a mirrored/rotated copy of the window (different content at each pixel),
    its shape a soft ellipse; it moves along a straight or slightly curved path of ``extent`` pixels
    while the background is static (60 %) or lightly shaken. Frames are composited with occlusion
    and averaged in linear light: ``B = mean_t[M_t O_t + (1 - M_t) BG_t]``; the sharp target is the
    middle frame.
    """

    extent: tuple[float, float] = (4.0, 40.0)
    highlight_prob: float = 0.2
    highlight_gain: tuple[float, float] = (1.5, 4.0)
    margin: int = 24

    def __call__(self, window: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        from ..blur.camera import blur_camera_trajectory, random_camera_trajectory

        h, w = window.shape[:2]
        lin = _boost_highlights(_lin(window), rng, self.highlight_prob, self.highlight_gain)
        obj = np.ascontiguousarray(np.rot90(lin[::-1], k=int(rng.integers(0, 4)))) if h == w else lin[::-1, ::-1].copy()
        mask = _soft_ellipse(h, w, rng)
        path = object_path(self.extent, rng)
        traj = np.concatenate([path, np.zeros((len(path), 1))], axis=1)
        stack = np.concatenate([obj * mask, mask], axis=2)
        moved = _from_t(blur_camera_trajectory(_to_t(stack), traj, linear_light=False, boundary="zeros", max_step=1.0))
        fg, cover = moved[:, :, :-1], moved[:, :, -1:]
        bg = lin
        if rng.random() < 0.4:
            hom_ext = float(rng.uniform(1.0, 6.0))
            traj_bg = random_camera_trajectory(_seed(rng), steps=16, max_translation=hom_ext / 2,
                                               max_rotation_deg=0.0)
            bg = _from_t(blur_camera_trajectory(_to_t(lin), traj_bg, linear_light=False, boundary="reflection"))
        blurred = fg + (1.0 - cover) * bg
        sharp = obj * mask + (1.0 - mask) * lin
        return {"blur": _crop(_enc(blurred), self.margin), "sharp": _crop(_enc(sharp), self.margin)}


@dataclass(frozen=True)
class FrameAverageBlur:
    """GoPro-style frame averaging of ``frames`` discrete exposures of a moving camera (no pose
    interpolation), so fast motion gives ghost copies as in 25 fps video (survey §III-C)."""

    frames: tuple[int, int] = (5, 11)
    extent: tuple[float, float] = (3.0, 30.0)
    highlight_prob: float = 0.2
    highlight_gain: tuple[float, float] = (1.5, 4.0)
    margin: int = 24

    def __call__(self, window: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        from ..blur.camera import blur_camera_trajectory, random_homography_trajectory

        h, w = window.shape[:2]
        lin = _boost_highlights(_lin(window), rng, self.highlight_prob, self.highlight_gain)
        n = int(rng.integers(self.frames[0] // 2, self.frames[1] // 2 + 1)) * 2 + 1
        hom = random_homography_trajectory(
            _seed(rng), w, h, focal=4.0 * max(h, w), steps=n, max_translation=1.0,
            max_tilt_deg=float(rng.uniform(0, 1)), max_roll_deg=float(rng.uniform(0, 1)),
            max_zoom=float(rng.uniform(0, 0.02)), max_displacement=float(rng.uniform(*self.extent)),
            inertia=0.9,
        )
        out = blur_camera_trajectory(_to_t(lin), hom, linear_light=False, boundary="reflection", max_step=None)
        return {"blur": _crop(_enc(_from_t(out)), self.margin), "sharp": _crop(_enc(lin), self.margin)}


@dataclass(frozen=True)
class SharpPair:
    """No blur (``identity_prob``) or a barely visible one: Gaussian sigma <= 0.5 px (a share
    ``gaussian_prob`` of those) or linear motion <= 1.5 px. Teaches a model to leave sharp content
    alone.

    ``soft_prob``: with this probability the photo is first softened by a Gaussian of sigma drawn
    from ``soft_sigma`` (linear light) and that soft image is the *target* as well: isotropic
    softness, as in video frames and downscaled or defocused photos, is to be kept, not sharpened
    (the shipped default sharpens the still, already soft background of frame-averaged GoPro
    video; docs/training.md). 0 (default) draws nothing extra, so older recipes are unchanged.
    """

    identity_prob: float = 0.5
    margin: int = 4
    gaussian_prob: float = 0.5
    soft_prob: float = 0.0
    soft_sigma: tuple[float, float] = (0.5, 1.2)

    def __post_init__(self):
        for name in ("identity_prob", "gaussian_prob", "soft_prob"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise ConfigError(f"sharp.{name}: expected a probability in [0, 1], got {v!r}")
        sig = _check_range(self.soft_sigma, "sharp.soft_sigma")
        if sig[0] <= 0 or 3.0 * sig[1] > self.margin:
            raise ConfigError(f"sharp.soft_sigma: expected 0 < lo <= hi <= margin / 3 = {self.margin / 3:g} "
                              f"(the kernel's reach must fit the margin), got {self.soft_sigma!r}")
        object.__setattr__(self, "soft_sigma", sig)

    def draw_soft_kernel(self, rng: np.random.Generator) -> np.ndarray | None:
        """The Gaussian that softens this pair's photo, or None (no draw at all when ``soft_prob``
        is 0). Shared with device synthesis, so both draw alike."""
        from ..blur import kernels as K

        if self.soft_prob > 0 and rng.random() < self.soft_prob:
            sigma = float(rng.uniform(*self.soft_sigma))
            return K.gaussian_kernel(sigma, 2 * math.ceil(3 * sigma) + 1)
        return None

    def __call__(self, window: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        from ..blur import kernels as K
        from ..blur.convolve import blur

        sharp = window.astype(np.float32)
        soft = self.draw_soft_kernel(rng)
        if soft is not None:
            sharp = _enc(np.asarray(blur(_lin(sharp), soft, boundary="reflect"), dtype=np.float32))
        if rng.random() < self.identity_prob:
            out = sharp
        else:
            if rng.random() < self.gaussian_prob:
                k = K.gaussian_kernel(float(rng.uniform(0.2, 0.5)), 5)
            else:
                k = K.linear_motion_kernel(float(rng.uniform(1.0, 1.5)), float(rng.uniform(0, 180)), 5)
            out = _enc(np.asarray(blur(_lin(sharp), k, boundary="reflect"), dtype=np.float32))
        return {"blur": _crop(out, self.margin), "sharp": _crop(sharp, self.margin)}


GENERATORS: dict[str, type] = {
    "camera": CameraMotionBlur,
    "shake": ShakeKernelBlur,
    "object": ObjectMotionBlur,
    "frames": FrameAverageBlur,
    "sharp": SharpPair,
}


@dataclass(frozen=True)
class SensorNoise:
    """The camera pipeline after the blur, applied to the blurred image only: Poisson-Gaussian noise
    (``peak`` photons at white, read noise ``read_sigma``) with probability ``noise_prob``, 8-bit
    quantisation, and JPEG at a quality in ``jpeg_quality`` with probability ``jpeg_prob``."""

    noise_prob: float = 0.7
    peak: tuple[float, float] = (300.0, 5000.0)
    read_sigma: tuple[float, float] = (0.0, 0.01)
    jpeg_prob: float = 0.5
    jpeg_quality: tuple[int, int] = (60, 95)

    def __call__(self, blurred: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        from ..blur.noise import add_poisson_gaussian_noise, jpeg_compress, quantize

        x = blurred
        if rng.random() < self.noise_prob:
            peak = float(math.exp(rng.uniform(math.log(self.peak[0]), math.log(self.peak[1]))))
            x = np.asarray(add_poisson_gaussian_noise(x, peak, float(rng.uniform(*self.read_sigma)), _seed(rng)),
                           dtype=np.float32)
        if rng.random() < self.jpeg_prob:
            x = np.asarray(jpeg_compress(x, int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1))),
                           dtype=np.float32)
        else:
            x = np.asarray(quantize(x, 8), dtype=np.float32)
        return x


@dataclass(frozen=True)
class MixtureGenerator:
    """Draw one generator by weight, then :class:`SensorNoise` on the blurred image.

    ``margin`` is the largest of the members' margins; each member gets the window cropped to its
    own margin. The draw order from ``rng`` is: member, member's draws, noise draws.
    """

    members: tuple[tuple[str, Any, float], ...]
    noise: SensorNoise = field(default_factory=SensorNoise)

    @property
    def margin(self) -> int:
        return max(int(getattr(g, "margin", 0)) for _, g, _ in self.members)

    def __call__(self, window: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        weights = np.array([wt for _, _, wt in self.members], dtype=np.float64)
        i = int(rng.choice(len(self.members), p=weights / weights.sum()))
        name, gen, _ = self.members[i]
        d = self.margin - int(getattr(gen, "margin", 0))
        out = gen(_crop(window, d), rng)
        out = dict(out)
        out["blur"] = self.noise(np.clip(out["blur"], 0.0, 1.0), rng)
        out.pop("kernel", None)  # kernels differ in size between members; not batched
        return out


def build_generator(mix: dict[str, float], options: dict[str, dict[str, Any]] | None = None) -> MixtureGenerator:
    """A :class:`MixtureGenerator` from ``{name: weight}`` and optional ``{name: {option: value}}``
    (``noise`` options go to :class:`SensorNoise`). Unknown names list the choices."""
    options = dict(options or {})
    noise_opts = options.pop("noise", {})
    for name in list(mix) + list(options):
        if name not in GENERATORS:
            raise ConfigError(f"data.mix: unknown generator {name!r}; choose from {', '.join(GENERATORS)} "
                              "(and 'noise' in data.generators)")
    members = []
    for name, weight in mix.items():
        if weight <= 0:
            continue
        try:
            gen = GENERATORS[name](**{k: tuple(v) if isinstance(v, list) else v for k, v in options.get(name, {}).items()})
        except TypeError as exc:
            raise ConfigError(f"data.generators.{name}: {exc}") from None
        members.append((name, gen, float(weight)))
    try:
        noise = SensorNoise(**{k: tuple(v) if isinstance(v, list) else v for k, v in noise_opts.items()})
    except TypeError as exc:
        raise ConfigError(f"data.generators.noise: {exc}") from None
    return MixtureGenerator(tuple(members), noise)


def build_training_set(cfg):
    """The engine's default training set for a :class:`~deblurkit.train.config.TrainConfig`: a
    :class:`~deblurkit.data.synthetic.SyntheticBlurDataset` over ``data.train_dir`` with the
    configured mixture, long enough for every step of the run."""
    from ..train.config import resolve_path
    from .synthetic import SyntheticBlurDataset

    if cfg.data.synthesis == "device":
        from .device_synth import build_device_set

        return build_device_set(cfg)
    gen = build_generator(cfg.data.mix, cfg.data.generators)
    return SyntheticBlurDataset(
        resolve_path(cfg, cfg.data.train_dir), crop=cfg.data.crop, length=cfg.steps * cfg.data.batch_size,
        generator=gen, seed=cfg.seed, grey=cfg.data.grey, cache_mb=1024 if cfg.data.cache_images else 0,
    )
