"""Sensor noise and compression for synthetic blur: the ``N`` of ``B = K * I + N`` (survey eq. 1).

Every function takes numpy arrays (any shape, e.g. ``(H, W)`` or ``(H, W, C)``) or torch tensors
(e.g. ``(B, C, H, W)``, any device), floating point, values in ``[0, 1]``, and returns the same
type, shape, dtype and device.

Randomness: ``seed`` is an ``int >= 0``, a ``numpy.random.Generator`` or (torch images only) a
``torch.Generator``. An int or numpy Generator draws the noise with numpy in the image's own
memory layout, so the same seed gives the same noise bit for bit, on any device. A
``torch.Generator`` draws with torch on the generator's device (reproducible for that device).

Clipping: ``clip=True`` (the default) clips the noisy result to ``[0, 1]``, modelling sensor
saturation at both ends (a sensor cannot record less than no light, nor more than full well).
This biases the mean near 0 and 1. ``clip=False`` returns the unclipped values, e.g. for
variance-exact experiments.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch

from ..errors import ConfigError, ImageError

__all__ = ["add_gaussian_noise", "add_poisson_gaussian_noise", "jpeg_compress", "quantize"]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _check_image(image, name: str = "image"):
    if isinstance(image, np.ndarray):
        if image.dtype.kind != "f":
            raise ImageError(f"{name}: must be floating point in [0, 1], got dtype {image.dtype}")
        if image.size == 0:
            raise ImageError(f"{name}: is empty (shape {image.shape})")
        return
    if isinstance(image, torch.Tensor):
        if not image.dtype.is_floating_point:
            raise ImageError(f"{name}: must be a floating-point tensor, got dtype {image.dtype}")
        if image.numel() == 0:
            raise ImageError(f"{name}: is empty (shape {tuple(image.shape)})")
        return
    raise ImageError(f"{name}: must be a numpy array or torch tensor, got {type(image).__name__}")


def _number(value, name: str, *, minimum: float, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name}: must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or (v <= minimum if strict else v < minimum):
        rel = ">" if strict else ">="
        raise ConfigError(f"{name}: must be finite and {rel} {minimum:g}, got {v:g}")
    return v


def _integer(value, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or \
            not lo <= int(value) <= hi:
        raise ConfigError(f"{name}: must be an integer from {lo} to {hi}, got {value!r}")
    return int(value)


def _generator(seed, image):
    """A numpy Generator, or a torch.Generator for torch images."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, torch.Generator):
        if not isinstance(image, torch.Tensor):
            raise ConfigError("seed: a torch.Generator needs a torch image; give an int or a "
                              "numpy Generator for numpy images")
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise ConfigError(f"seed: must be a non-negative integer, numpy Generator or torch "
                          f"Generator, got {seed!r}")
    return np.random.default_rng(int(seed))


def _normal(image, gen):
    """Standard normal noise shaped and typed like ``image``."""
    if isinstance(gen, torch.Generator):
        z = torch.randn(image.shape, generator=gen, device=gen.device, dtype=image.dtype)
        return z.to(image.device)
    wide = image.dtype == (torch.float64 if isinstance(image, torch.Tensor) else np.float64)
    z = gen.standard_normal(tuple(image.shape), dtype=np.float64 if wide else np.float32)
    if isinstance(image, torch.Tensor):
        return torch.from_numpy(z).to(device=image.device, dtype=image.dtype)
    return z.astype(image.dtype, copy=False)


def _clip(x, clip: bool):
    if not clip:
        return x
    return x.clamp(0.0, 1.0) if isinstance(x, torch.Tensor) else np.clip(x, 0.0, 1.0)


def _range(image) -> tuple[float, float]:
    if isinstance(image, torch.Tensor):
        return float(image.min()), float(image.max())
    return float(image.min()), float(image.max())


def _check_unit_range(image, what: str, tol: float = 1e-6) -> None:
    lo, hi = _range(image)
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < -tol or hi > 1.0 + tol:
        raise ImageError(
            f"image: values must lie in [0, 1] for {what}, got min {lo:.4g} max {hi:.4g}; "
            "clip them first"
        )


# --------------------------------------------------------------------------------------------
# noise
# --------------------------------------------------------------------------------------------

def add_gaussian_noise(image, sigma: float, seed, *, clip: bool = True):
    """Additive white Gaussian noise: ``image + sigma * n``, ``n ~ N(0, 1)`` per value.

    Args:
        image: numpy array or torch tensor, float, values in ``[0, 1]``.
        sigma: standard deviation on the ``[0, 1]`` scale, finite, ``>= 0`` (e.g. 0.01 = 2.55
            grey levels of 8 bits). 0 returns a copy.
        seed: int, numpy Generator or (torch images) torch Generator.
        clip: clip the result to ``[0, 1]`` (sensor saturation, see the module docstring).

    Returns:
        same type, shape, dtype and device as ``image``.
    """
    _check_image(image)
    sigma = _number(sigma, "sigma", minimum=0.0)
    gen = _generator(seed, image)
    noisy = image + sigma * _normal(image, gen)
    return _clip(noisy, clip)


def add_poisson_gaussian_noise(image, peak: float, sigma: float, seed, *, clip: bool = True):
    """Photon (shot) noise plus Gaussian read noise, the usual raw-sensor model.

    ``y = Poisson(peak * x) / peak + sigma * n``: a value of 1 collects ``peak`` photons on
    average, so the shot-noise variance is ``x / peak``; ``n ~ N(0, 1)`` is the read noise.
    The Poisson draw is made first, then the Gaussian one.

    Args:
        image: numpy array or torch tensor, float, values in ``[0, 1]`` (must be ``>= 0``:
            a photon count rate cannot be negative; values down to -1e-6 count as 0).
        peak: photons at value 1, finite, ``> 0`` (smaller = noisier; e.g. 1000 is a bright
            scene, 30 a dark one).
        sigma: read-noise standard deviation on the ``[0, 1]`` scale, finite, ``>= 0``.
        seed: int, numpy Generator or (torch images) torch Generator.
        clip: clip the result to ``[0, 1]`` (sensor saturation, see the module docstring).

    Returns:
        same type, shape, dtype and device as ``image``.
    """
    _check_image(image)
    peak = _number(peak, "peak", minimum=0.0, strict=True)
    sigma = _number(sigma, "sigma", minimum=0.0)
    lo, _ = _range(image)
    if not math.isfinite(lo) or lo < -1e-6:
        raise ImageError(f"image: Poisson noise needs non-negative values, got min {lo:.4g}")
    gen = _generator(seed, image)
    if isinstance(gen, torch.Generator):
        rate = (image.to(gen.device, torch.float64).clamp_min(0.0) * peak)
        counts = torch.poisson(rate, generator=gen).to(device=image.device, dtype=image.dtype)
    else:
        if isinstance(image, torch.Tensor):
            rate = image.detach().cpu().double().clamp_min(0.0).numpy() * peak
            counts = torch.from_numpy(gen.poisson(rate)).to(device=image.device,
                                                            dtype=image.dtype)
        else:
            rate = np.maximum(image.astype(np.float64), 0.0) * peak
            counts = gen.poisson(rate).astype(image.dtype)
    noisy = counts / peak + sigma * _normal(image, gen)
    return _clip(noisy, clip)


# --------------------------------------------------------------------------------------------
# compression and quantisation
# --------------------------------------------------------------------------------------------

def _jpeg_plane_stack(arr: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip of a float ``(H, W, C)`` array, C in {1, 3}, values in [0, 1]."""
    from PIL import Image

    u8 = np.round(arr * 255.0).astype(np.uint8)
    img = Image.fromarray(u8[..., 0] if u8.shape[-1] == 1 else u8)  # mode L or RGB
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as dec:
        out = np.asarray(dec, dtype=np.float32) / 255.0
    return out[..., None] if out.ndim == 2 else out


def jpeg_compress(image, quality: int):
    """JPEG compression round trip through Pillow (baseline JPEG, Pillow's default 4:2:0 chroma
    subsampling for colour), the compression artefacts of photos from phones and the web.

    The image is rounded to 8 bits, encoded at ``quality`` and decoded.

    Args:
        image: numpy ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``, or torch ``(B, C, H, W)`` with
            ``C`` in {1, 3} (each sample compressed on its own); float, values in ``[0, 1]``
            (values outside are refused: clip or add noise with ``clip=True`` first).
        quality: JPEG quality, integer 1-100 (Pillow's scale; 75 is its default, 95 is near
            lossless).

    Returns:
        same type, shape, dtype and device as ``image``; values are multiples of 1/255.
    """
    _check_image(image)
    quality = _integer(quality, "quality", 1, 100)
    if isinstance(image, np.ndarray):
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] not in (1, 3)):
            raise ImageError(f"image: JPEG needs (H, W), (H, W, 1) or (H, W, 3), got shape "
                             f"{image.shape}")
        _check_unit_range(image, "JPEG")
        arr = image[..., None] if image.ndim == 2 else image
        out = _jpeg_plane_stack(arr.astype(np.float64), quality)
        out = out[..., 0] if image.ndim == 2 else out
        return out.astype(image.dtype)
    if image.ndim != 4 or image.shape[1] not in (1, 3):
        raise ImageError(f"image: JPEG needs a (B, C, H, W) tensor with C = 1 or 3, got shape "
                         f"{tuple(image.shape)}")
    _check_unit_range(image, "JPEG")
    arr = image.detach().cpu().double().permute(0, 2, 3, 1).numpy()
    out = np.stack([_jpeg_plane_stack(a, quality) for a in arr])
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(device=image.device, dtype=image.dtype)


def quantize(image, bits: int = 8):
    """Round to ``2**bits`` evenly spaced levels in ``[0, 1]``: ``round(x * L) / L``, ``L =
    2**bits - 1`` (round half to even), as storing the image at that bit depth would.

    Args:
        image: numpy array or torch tensor, float, values in ``[0, 1]`` (others are refused).
        bits: integer 1-16.

    Returns:
        same type, shape, dtype and device as ``image``.
    """
    _check_image(image)
    bits = _integer(bits, "bits", 1, 16)
    _check_unit_range(image, f"{bits}-bit quantisation")
    levels = float(2 ** bits - 1)
    if isinstance(image, torch.Tensor):
        return (torch.round(image.double() * levels) / levels).to(image.dtype)
    return (np.round(image.astype(np.float64) * levels) / levels).astype(image.dtype)
