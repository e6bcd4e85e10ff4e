"""On-the-fly synthetic training pairs from any folder of sharp photos.

Each item of :class:`SyntheticBlurDataset` takes one sharp photo, a random crop, a random mirror /
quarter turn (:mod:`deblurkit.data.augment`), and hands the crop to a *blur generator* that makes
the blurred partner following the survey's model (Sahu, Lenka, Sa, arXiv 1907.10128, eq. 1)::

    B = K * I + N

The generator protocol (:class:`BlurGenerator`) is deliberately small so that other generators
(camera motion, frame averaging, ...) can be added in other modules:

- ``generator(sharp, rng) -> dict``: ``sharp`` is ``(h + 2m) x (w + 2m) x C`` float32 in [0, 1]
  (a fresh array the generator may modify), ``rng`` a ``np.random.Generator`` that is the only
  source of randomness allowed. It returns ``{"blur": h x w x C, "sharp": h x w x C}`` float32 in
  [0, 1] (the centre of the input, aligned with the blur), optionally ``"kernel": (kh, kw)`` (true
  convolution orientation) and any other numpy arrays (passed on as tensors, unchanged).
- ``generator.margin`` (optional int, default 0): the ``m`` context pixels it needs on each side,
  so that the blur near the crop's border sees real image content rather than a padded boundary.

Determinism: item ``i`` draws all its numbers from
``np.random.SeedSequence([seed, epoch, i])`` (:func:`deblurkit.data.augment.item_rng`), so an item
is the same whatever the number of DataLoader workers or the order of requests;
:meth:`SyntheticBlurDataset.set_epoch` moves to another epoch's draws.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import ConfigError, DeblurkitError, ImageError
from .augment import ALL_CODES, SHAPE_KEEPING_CODES, crop_box, dihedral, item_rng, parse_size, to_chw
from .folders import _is_image, _key, list_images

#: ITU-R BT.601 luma weights (what Pillow's "L" conversion uses) for ``grey=True``.
LUMA_601 = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@runtime_checkable
class BlurGenerator(Protocol):
    """Makes a blurred/sharp pair from a sharp crop; see the module docstring for the contract.

    ``margin`` (int >= 0, optional attribute) is the context each side the generator needs.
    """

    def __call__(self, sharp: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]: ...


KERNEL_KINDS = ("shake", "gp", "motion", "gaussian", "disk")


@dataclass(frozen=True)
class UniformKernelBlur:
    """Uniform blur by one random kernel, then noise and optional JPEG (survey eq. 1).

    Attributes:
        kinds: kernels to draw from, uniformly: ``"shake"`` (random camera-shake trajectory,
            :func:`deblurkit.blur.kernels.camera_shake_kernel`), ``"gp"`` (Gaussian-process
            trajectory, ``gp_trajectory_kernel``), ``"motion"`` (linear motion of length ``size``,
            ``size - 1`` for even sizes, at a uniform angle in [0, 180) degrees), ``"gaussian"``
            (sigma ``(size - 1) / 6``, so +-3 sigma spans ``size``, truncated there), ``"disk"``
            (defocus, radius ``(size - 1) / 2``).
        size_range: ``(lo, hi)`` inclusive odd-or-even ints >= 1: the blur extent ``size`` in
            pixels is drawn uniformly from it.
        noise_sigma: ``(lo, hi)``: Gaussian noise standard deviation drawn uniformly (0 = none),
            on the [0, 1] scale; the noisy blur is clipped to [0, 1] as a sensor would.
        jpeg_quality: ``None`` (no JPEG) or ``(lo, hi)`` inclusive qualities in 1..100.
        sharp_prob: probability in [0, 1] of an unblurred pair (1x1 identity kernel; noise and
            JPEG still applied), so that a model also learns to leave sharp photos alone.

    Every kernel is ``size x size``. ``margin`` is ``hi // 2``: the blur of the returned centre is
    the exact ("valid") convolution of the input by :func:`deblurkit.blur.convolve.blur`, so it
    equals ``blur(input, kernel, boundary="reflect")`` cropped by the margin, with no boundary
    effect at all.
    Draw order from ``rng``: sharp-or-not (only if ``sharp_prob > 0``), kind, size, kernel
    parameters, noise sigma, noise seed, JPEG quality (only if set).

    Returns ``{"blur", "sharp": h x w x C float32, "kernel": (kh, kw) float32}``, with
    ``h = H - 2 * margin`` and ``w = W - 2 * margin`` for an ``H x W x C`` input.
    """

    kinds: tuple[str, ...] = KERNEL_KINDS
    size_range: tuple[int, int] = (11, 31)
    noise_sigma: tuple[float, float] = (0.0, 0.02)
    jpeg_quality: tuple[int, int] | None = None
    sharp_prob: float = 0.0

    def __post_init__(self) -> None:
        kinds = (self.kinds,) if isinstance(self.kinds, str) else tuple(self.kinds)
        bad = [k for k in kinds if k not in KERNEL_KINDS]
        if not kinds or bad:
            raise ConfigError(f"kinds: expected a non-empty subset of {', '.join(KERNEL_KINDS)}, "
                              f"got {self.kinds!r}")
        object.__setattr__(self, "kinds", kinds)
        lo_hi = _pair(self.size_range, "size_range", int)
        if lo_hi[0] < 1 or lo_hi[0] > lo_hi[1]:
            raise ConfigError(f"size_range: expected 1 <= lo <= hi, got {self.size_range!r}")
        object.__setattr__(self, "size_range", lo_hi)
        sig = _pair(self.noise_sigma, "noise_sigma", float)
        if not (0 <= sig[0] <= sig[1]) or not all(math.isfinite(s) for s in sig):
            raise ConfigError(f"noise_sigma: expected 0 <= lo <= hi, got {self.noise_sigma!r}")
        object.__setattr__(self, "noise_sigma", sig)
        if self.jpeg_quality is not None:
            q = _pair(self.jpeg_quality, "jpeg_quality", int)
            if not 1 <= q[0] <= q[1] <= 100:
                raise ConfigError(f"jpeg_quality: expected None or 1 <= lo <= hi <= 100, "
                                  f"got {self.jpeg_quality!r}")
            object.__setattr__(self, "jpeg_quality", q)
        p = self.sharp_prob
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ConfigError(f"sharp_prob: expected a probability in [0, 1], got {p!r}")

    @property
    def margin(self) -> int:
        return self.size_range[1] // 2

    def draw_kernel(self, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """One ``size x size`` float32 kernel (sum 1, ``size <= size_range[1]``) and its kind."""
        from ..blur import kernels as K

        if self.sharp_prob > 0 and rng.random() < self.sharp_prob:
            return np.ones((1, 1), dtype=np.float32), "identity"
        kind = self.kinds[int(rng.integers(0, len(self.kinds)))]
        size = int(rng.integers(self.size_range[0], self.size_range[1] + 1))
        if kind == "shake":
            k = K.camera_shake_kernel(size, seed=int(rng.integers(0, 2**31 - 1)))
        elif kind == "gp":
            k = K.gp_trajectory_kernel(size, seed=int(rng.integers(0, 2**31 - 1)))
        elif kind == "motion":
            # the streak must fit at any angle: an even size holds a streak one pixel shorter
            length = 2 * ((size - 1) // 2) + 1
            k = K.linear_motion_kernel(float(length), float(rng.uniform(0.0, 180.0)), size)
        elif kind == "gaussian":
            k = K.gaussian_kernel((size - 1) / 6.0, size)
        else:
            k = K.disk_kernel((size - 1) / 2.0, size)
        k = np.asarray(k, dtype=np.float32)
        return k, kind

    def __call__(self, sharp: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        from ..blur.convolve import blur
        from ..blur.noise import add_gaussian_noise, jpeg_compress

        m = self.margin
        sharp = np.asarray(sharp, dtype=np.float32)
        if sharp.ndim != 3 or sharp.shape[0] <= 2 * m or sharp.shape[1] <= 2 * m:
            raise ImageError(f"sharp: expected H x W x C with H, W > 2 * margin = {2 * m}, "
                             f"got {sharp.shape}")
        kernel, _ = self.draw_kernel(rng)
        h, w = sharp.shape[0] - 2 * m, sharp.shape[1] - 2 * m
        # "valid" output pixel (r, c) is "same" pixel (r + (kh - 1) // 2, c + (kw - 1) // 2) for
        # deblurkit's centre (kh // 2, kw // 2); the margin is real context, so no boundary rule
        # enters the result (and no padded copy is made)
        valid = np.asarray(blur(sharp, kernel, boundary="valid"), dtype=np.float32)
        top, left = m - (kernel.shape[0] - 1) // 2, m - (kernel.shape[1] - 1) // 2
        blurred = valid[top:top + h, left:left + w]
        blurred = np.clip(blurred, 0.0, 1.0)  # float rounding only: a blur kernel keeps [0, 1]
        sigma = float(rng.uniform(*self.noise_sigma))
        noise_seed = int(rng.integers(0, 2**31 - 1))
        if sigma > 0:  # clipped to [0, 1] by add_gaussian_noise (sensor saturation)
            blurred = np.asarray(add_gaussian_noise(blurred, sigma, noise_seed), dtype=np.float32)
        if self.jpeg_quality is not None:
            quality = int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1))
            blurred = np.asarray(jpeg_compress(blurred, quality), dtype=np.float32)
        return {"blur": np.ascontiguousarray(blurred),
                "sharp": np.ascontiguousarray(sharp[m:m + h, m:m + w]),
                "kernel": kernel}


def _pair(value, name: str, kind: type) -> tuple:
    if not isinstance(value, (tuple, list)) or len(value) != 2 or any(
            isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating))
            for v in value):
        raise ConfigError(f"{name}: expected a pair (lo, hi) of numbers, got {value!r}")
    if kind is int and any(float(v) != int(v) for v in value):
        raise ConfigError(f"{name}: expected integers, got {value!r}")
    return tuple(kind(v) for v in value)


class SyntheticBlurDataset(Dataset):
    """Blurred/sharp training pairs made on the fly from a folder of sharp photos.

    Args:
        sharp_root: a folder (searched recursively for images, sorted by relative path), or a
            sequence of image files and folders.
        crop: output size ``s`` or ``(h, w)``; every photo must be at least this large (else
            :class:`ImageError` naming it). The generator's ``margin`` is taken from the photo
            around the crop (mirrored where the crop touches the photo's border).
        length: items per epoch (default: the number of photos). Item ``i`` uses photo
            ``i % n_photos``, with its own random crop, so ``length = 10 * n`` gives ten crops
            of every photo.
        generator: a :class:`BlurGenerator` (default ``UniformKernelBlur()``).
        seed: non-negative int; with the epoch and the item index, the only source of randomness.
        grey: convert to one channel with BT.601 luma weights (:data:`LUMA_601`). Otherwise grey
            photos are repeated to 3 channels; an alpha channel is always dropped.
        flip: random mirror / quarter turn of the crop before blurring (quarter turns only for
            square crops, so batches keep one shape).
        cache_mb: decoded photos kept per process (least recently used dropped first); 0 = none.
        transform: callable ``dict -> dict`` applied last.

    Items: ``{"blur": (C,h,w), "sharp": (C,h,w)`` float32 in [0, 1], ``"kernel": (kh,kw)`` if the
    generator returns one, any other generator output as a tensor, ``"name"`` (photo's relative
    path without extension), ``"index"`` (int)}. Kernels vary in size, so batching them needs a
    custom collate (or drop them in ``transform``).

    With DataLoader workers, call :meth:`set_epoch` before creating each epoch's iterator (workers
    copy the dataset then; ``persistent_workers=True`` would keep the old epoch).
    """

    def __init__(
        self,
        sharp_root: str | os.PathLike | Sequence[str | os.PathLike],
        *,
        crop: int | tuple[int, int] = 256,
        length: int | None = None,
        generator: BlurGenerator | None = None,
        seed: int = 0,
        grey: bool = False,
        flip: bool = True,
        cache_mb: float = 256,
        transform: Callable[[dict], dict] | None = None,
    ) -> None:
        self.paths, self.names = _collect(sharp_root)
        crop_hw = parse_size(crop)
        if crop_hw is None:
            raise ConfigError("crop: expected a positive int or a pair (h, w), got None")
        self.crop = crop_hw
        if length is None:
            length = len(self.paths)
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1:
            raise ConfigError(f"length: expected a positive int, got {length!r}")
        self.length = int(length)
        self.generator = generator if generator is not None else UniformKernelBlur()
        if not callable(self.generator):
            raise ConfigError(f"generator: expected a BlurGenerator (callable), got {self.generator!r}")
        margin = getattr(self.generator, "margin", 0)
        if isinstance(margin, bool) or not isinstance(margin, (int, np.integer)) or margin < 0:
            raise ConfigError(f"generator.margin: expected a non-negative int, got {margin!r}")
        self.margin = int(margin)
        item_rng(seed, 0, 0)  # validates seed
        self.seed, self.epoch = int(seed), 0
        self.grey, self.flip = bool(grey), bool(flip)
        if isinstance(cache_mb, bool) or not isinstance(cache_mb, (int, float)) or cache_mb < 0:
            raise ConfigError(f"cache_mb: expected a non-negative number, got {cache_mb!r}")
        self.cache_bytes = int(cache_mb * 2**20)
        if transform is not None and not callable(transform):
            raise ConfigError(f"transform: expected a callable dict -> dict, got {transform!r}")
        self.transform = transform
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cached = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the draws of ``epoch`` (non-negative int) from now on."""
        item_rng(self.seed, epoch, 0)  # validates epoch
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __getstate__(self) -> dict:  # the cache does not travel to spawned workers
        state = self.__dict__.copy()
        state["_cache"], state["_cached"] = OrderedDict(), 0
        return state

    def photo(self, j: int) -> np.ndarray:
        """Photo ``j`` decoded, colour-converted as configured: ``H x W x C`` float32 (cached)."""
        if j in self._cache:
            self._cache.move_to_end(j)
            return self._cache[j]
        from ..io import read_image

        x = np.asarray(read_image(self.paths[j]).pixels, dtype=np.float32)
        if x.shape[2] in (2, 4):  # grey+alpha or RGBA: drop alpha
            x = x[:, :, :-1]
        if self.grey:
            x = x if x.shape[2] == 1 else (x @ LUMA_601)[:, :, None]
        elif x.shape[2] == 1:
            x = np.repeat(x, 3, axis=2)
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.nbytes <= self.cache_bytes:
            self._cache[j] = x
            self._cached += x.nbytes
            while self._cached > self.cache_bytes:
                _, old = self._cache.popitem(last=False)
                self._cached -= old.nbytes
        return x

    def __getitem__(self, index: int) -> dict:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index: expected an int, got {index!r}")
        if not -self.length <= index < self.length:
            raise IndexError(
                f"index {index} out of range for SyntheticBlurDataset of {self.length} items")
        index = int(index) % self.length
        rng = item_rng(self.seed, self.epoch, index)
        j = index % len(self.paths)
        photo = self.photo(j)
        h, w = self.crop
        top, left = crop_box(photo.shape[0], photo.shape[1], self.crop, rng, what=str(self.paths[j]))
        window = _window(photo, top, left, h, w, self.margin)
        if self.flip:
            codes = ALL_CODES if h == w else SHAPE_KEEPING_CODES
            window = dihedral(window, int(codes[int(rng.integers(0, len(codes)))]))
        out = self.generator(window, rng)
        if not isinstance(out, dict) or "blur" not in out or "sharp" not in out:
            raise DeblurkitError(f"generator {type(self.generator).__name__}: must return a dict with "
                                 f"'blur' and 'sharp', got {type(out).__name__}")
        item: dict = {}
        for key in ("blur", "sharp"):
            arr = np.asarray(out[key], dtype=np.float32)
            if arr.shape != (h, w, window.shape[2]):
                raise DeblurkitError(f"generator {type(self.generator).__name__}: {key!r} has shape "
                                     f"{arr.shape}, expected {(h, w, window.shape[2])}")
            item[key] = to_chw(arr)
        for key, value in out.items():
            if key not in item:
                item[key] = (torch.from_numpy(np.ascontiguousarray(value))
                             if isinstance(value, np.ndarray) else value)
        item["name"] = self.names[j]
        item["index"] = index
        return self.transform(item) if self.transform is not None else item


def _window(photo: np.ndarray, top: int, left: int, h: int, w: int, m: int) -> np.ndarray:
    """The crop ``[top:top+h, left:left+w]`` with ``m`` extra pixels each side, taken from the photo
    where it exists and mirrored beyond its border (edge pixel included, as deblurkit's "reflect"
    boundary). Always a fresh array."""
    H, W = photo.shape[:2]
    t0, l0, t1, l1 = top - m, left - m, top + h + m, left + w + m
    inner = photo[max(t0, 0):min(t1, H), max(l0, 0):min(l1, W)]
    pads = ((max(-t0, 0), max(t1 - H, 0)), (max(-l0, 0), max(l1 - W, 0)), (0, 0))
    if any(p for pair in pads for p in pair):
        return np.pad(inner, pads, mode="symmetric")
    return inner.copy()


def _collect(sharp_root) -> tuple[list[Path], list[str]]:
    roots = [sharp_root] if isinstance(sharp_root, (str, os.PathLike)) else list(sharp_root)
    if not roots:
        raise ConfigError("sharp_root: expected a folder or a non-empty list of images/folders, got []")
    paths: list[Path] = []
    names: list[str] = []
    for root in roots:
        root = Path(root)
        if root.is_dir():
            found = list_images(root)
            paths += found
            names += [_key(p, root) for p in found]
        elif root.is_file() and _is_image(root.name):
            paths.append(root)
            names.append(root.with_suffix("").name)
        else:
            raise DeblurkitError(f"sharp_root {root}: not a folder or an image file")
    if not paths:
        raise DeblurkitError(f"sharp_root {sharp_root}: no images found")
    return paths, names
