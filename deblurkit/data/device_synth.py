"""The realistic training pairs of :mod:`deblurkit.data.realistic`, synthesised in batches on the
training device (a GPU), so that data keeps up with the network.

On a GPU a small deblurring network trains at tens of steps per second, while the per-sample numpy
generators of :mod:`deblurkit.data.realistic` make a 256 px camera-shake pair in ~0.2 s on one core.
This module splits the work:

- **recipes** (CPU, DataLoader workers): every random draw of a sample — photo, crop, dihedral
  transform, blur kind, the camera trajectory as sampling matrices, the shake kernel, the moving
  object's ellipse and path, highlight boost, noise and JPEG quality — made with the same generators
  and option names as :mod:`deblurkit.data.realistic` (``data.mix`` and ``data.generators``);
  deterministic per ``(seed, index)`` like every dataset here;
- **realisation** (the device, in the training process): all photos live on the device as uint8;
  a batch of windows is cut, linearised (``x ** 2.2``), blurred by batched ``grid_sample`` warps
  (camera motion, frame averaging, moving objects with occlusion, survey eq. 13-16) or grouped
  convolution (shake kernels, survey eq. 1), clipped by the sensor, re-encoded, and degraded by
  Poisson-Gaussian noise and a JPEG simulation (8x8 DCT quantisation with the IJG tables, 4:2:0
  chroma) — the same physics as the CPU generators, batched.

Use it with ``data.synthesis: device`` in a training config; the engine calls :meth:`collate` in the
loader and :meth:`realise` on the device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, ImageError
from .augment import ALL_CODES, item_rng

GAMMA = 2.2
KINDS = ("camera", "shake", "object", "frames", "sharp")


# ----------------------------------------------------------------------------- sampling matrices


def _normaliser(size: int) -> np.ndarray:
    """Pixel coordinates (centres at integers) -> grid_sample's [-1, 1] (align_corners=True)."""
    s = 2.0 / (size - 1)
    return np.array([[s, 0.0, -1.0], [0.0, s, -1.0], [0.0, 0.0, 1.0]])


def sampling_matrices(hom: np.ndarray, size: int, max_step: float | None) -> np.ndarray:
    """(T, 3, 3) pixel homographies of a trajectory (sharp image -> view at pose t) to the (P, 3, 3)
    float32 matrices ``N H_t^-1`` that map an output pixel ``[x, y, 1]`` to the normalised position
    grid_sample reads, re-centred on the middle pose and densified so no point of a ``size`` x
    ``size`` image moves more than ``max_step`` pixels between poses (as
    :func:`deblurkit.blur.camera.blur_camera_trajectory` does)."""
    from ..blur.camera import _interpolate, _pose_times

    hom = np.asarray(hom, dtype=np.float64)
    hom = hom / hom[:, 2:3, 2:3]
    mid = len(hom) // 2
    if not np.array_equal(hom[mid], np.eye(3)):
        hom = hom @ np.linalg.inv(hom[mid])
        hom = hom / hom[:, 2:3, 2:3]
    times = _pose_times(hom, size, size, max_step)
    inv = np.linalg.inv(_interpolate(hom, times))
    return (_normaliser(size)[None] @ inv).astype(np.float32)


def _translations(path: np.ndarray) -> np.ndarray:
    """(T, 2) pixel offsets -> (T, 3, 3) translation homographies."""
    out = np.tile(np.eye(3), (len(path), 1, 1))
    out[:, 0, 2] = path[:, 0]
    out[:, 1, 2] = path[:, 1]
    return out


# ----------------------------------------------------------------------------- recipes (CPU)


@dataclass(frozen=True)
class Recipe:
    """Draws the random parameters of one sample. ``mix``: the :class:`~deblurkit.data.realistic.
    MixtureGenerator` whose members' options (extents, kernel sizes, highlights, noise) are used."""

    mix: object
    crop: int

    @property
    def margin(self) -> int:
        return int(self.mix.margin)

    @property
    def window(self) -> int:
        return self.crop + 2 * self.margin

    def __call__(self, rng: np.random.Generator, photo: int, shape: tuple[int, int]) -> dict:
        from ..blur import kernels as K
        from ..blur.camera import random_camera_trajectory, random_homography_trajectory

        win = self.window
        h, w = max(shape[0], win), max(shape[1], win)
        weights = np.array([wt for _, _, wt in self.mix.members], dtype=np.float64)
        name, gen, _ = self.mix.members[int(rng.choice(len(weights), p=weights / weights.sum()))]
        r = {"photo": photo, "top": int(rng.integers(0, h - win + 1)), "left": int(rng.integers(0, w - win + 1)),
             "code": int(ALL_CODES[int(rng.integers(0, len(ALL_CODES)))]), "kind": KINDS.index(name)}
        eye = _normaliser(win)[None].astype(np.float32)
        warp, bgwarp, kernel = eye, eye, np.ones((1, 1), np.float32)
        soft = np.ones((1, 1), np.float32)  # sharp pairs: the softening of the photo (input and target)
        ellipse = np.zeros(5, np.float32)
        hl = (0.0, 1.0)
        if name in ("camera", "shake", "object", "frames") and rng.random() < gen.highlight_prob:
            hl = (float(rng.uniform(0.55, 0.85)), float(rng.uniform(*gen.highlight_gain)))
        seed = lambda: int(rng.integers(0, 2**31 - 1))  # noqa: E731
        if name == "camera":
            ext = float(rng.uniform(*gen.extent))
            hom = random_homography_trajectory(
                seed(), win, win, focal=float(rng.uniform(0.6, 2.0)) * win * 4, steps=32,
                max_translation=float(rng.uniform(0, 1)), max_tilt_deg=float(rng.uniform(0, 1)),
                max_roll_deg=float(rng.uniform(0, 1)), max_zoom=float(rng.uniform(0, 0.02)),
                max_displacement=ext, inertia=float(rng.uniform(0.5, 0.95)))
            warp = sampling_matrices(hom, win, 2.0)
        elif name == "frames":
            n = int(rng.integers(gen.frames[0] // 2, gen.frames[1] // 2 + 1)) * 2 + 1
            hom = random_homography_trajectory(
                seed(), win, win, focal=4.0 * win, steps=n, max_translation=1.0,
                max_tilt_deg=float(rng.uniform(0, 1)), max_roll_deg=float(rng.uniform(0, 1)),
                max_zoom=float(rng.uniform(0, 0.02)), max_displacement=float(rng.uniform(*gen.extent)), inertia=0.9)
            warp = sampling_matrices(hom, win, None)
        elif name == "shake":
            size = int(rng.integers(gen.size[0], gen.size[1] + 1))
            kernel = (K.camera_shake_kernel(size, seed=seed()) if rng.random() < 0.6
                      else K.gp_trajectory_kernel(size, seed=seed()))
        elif name == "sharp":  # draws in the order of realistic.SharpPair
            drawn = gen.draw_soft_kernel(rng)
            soft = soft if drawn is None else drawn
            if rng.random() >= gen.identity_prob:
                kernel = (K.gaussian_kernel(float(rng.uniform(0.2, 0.5)), 5) if rng.random() < gen.gaussian_prob
                          else K.linear_motion_kernel(float(rng.uniform(1.0, 1.5)), float(rng.uniform(0, 180)), 5))
        else:  # object
            # ellipse: centre, radii, angle (as realistic._soft_ellipse)
            ellipse = np.array([rng.uniform(0.25, 0.75) * win, rng.uniform(0.25, 0.75) * win,
                                rng.uniform(0.15, 0.4) * win, rng.uniform(0.15, 0.4) * win,
                                rng.uniform(0, math.pi)], np.float32)
            r["objrot"] = int(rng.integers(0, 4))
            from .realistic import object_path

            warp = sampling_matrices(_translations(object_path(gen.extent, rng)), win, 1.0)
            if rng.random() < 0.4:
                bg = random_camera_trajectory(seed(), steps=16, max_translation=float(rng.uniform(1.0, 6.0)) / 2,
                                              max_rotation_deg=0.0)
                bgwarp = sampling_matrices(_translations(bg[:, :2]), win, 1.0)
        r.setdefault("objrot", 0)
        r.update(warp=warp, bgwarp=bgwarp, kernel=np.asarray(kernel, np.float32),
                 soft=np.asarray(soft, np.float32), ellipse=ellipse,
                 highlight=np.array(hl, np.float32), noise=self._noise(rng))
        return r

    def _noise(self, rng: np.random.Generator) -> np.ndarray:
        """[peak photons at white (0: no shot noise), read sigma, JPEG quality (0: 8-bit PNG)]."""
        nz = self.mix.noise
        peak = sigma = 0.0
        if rng.random() < nz.noise_prob:
            peak = float(math.exp(rng.uniform(math.log(nz.peak[0]), math.log(nz.peak[1]))))
            sigma = float(rng.uniform(*nz.read_sigma))
        q = int(rng.integers(nz.jpeg_quality[0], nz.jpeg_quality[1] + 1)) if rng.random() < nz.jpeg_prob else 0
        return np.array([peak, sigma, q], np.float32)


def _pad_poses(mats: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (P_i, 3, 3) matrices to (B, P, 3, 3) and weights (B, P): padding poses weigh 0."""
    p = max(len(m) for m in mats)
    out = np.zeros((len(mats), p, 3, 3), np.float32)
    wts = np.zeros((len(mats), p), np.float32)
    for i, m in enumerate(mats):
        out[i, :len(m)] = m
        out[i, len(m):] = m[:1]
        wts[i, :len(m)] = 1.0
    return torch.from_numpy(out), torch.from_numpy(wts)


def _pad_kernels(ks: list[np.ndarray]) -> torch.Tensor:
    """Centre square odd kernels of different sizes in one (B, k, k) stack."""
    k = max(max(x.shape) for x in ks) | 1
    out = np.zeros((len(ks), k, k), np.float32)
    for i, x in enumerate(ks):
        t, l = (k - x.shape[0]) // 2, (k - x.shape[1]) // 2
        out[i, t:t + x.shape[0], l:l + x.shape[1]] = x
    return torch.from_numpy(out)


def collate_recipes(items: list[dict]) -> dict[str, torch.Tensor]:
    """Batch recipes: ints to tensors, poses and kernels padded (see :func:`_pad_poses`)."""
    out = {key: torch.tensor([it[key] for it in items]) for key in ("photo", "top", "left", "code", "kind", "objrot")}
    out["warp"], out["warp_w"] = _pad_poses([it["warp"] for it in items])
    out["bgwarp"], out["bgwarp_w"] = _pad_poses([it["bgwarp"] for it in items])
    out["kernel"] = _pad_kernels([it["kernel"] for it in items])
    out["soft"] = _pad_kernels([it["soft"] for it in items])
    for key in ("ellipse", "highlight", "noise"):
        out[key] = torch.from_numpy(np.stack([it[key] for it in items]))
    return out


# ----------------------------------------------------------------------------- device operations


def warp_average(img: torch.Tensor, mats: torch.Tensor, wts: torch.Tensor, padding: str,
                 chunk: int = 16) -> torch.Tensor:
    """Weighted average of per-sample warps: ``out_b = sum_p w_bp I_b(M_bp [x, y, 1]) / sum_p w_bp``.

    Args:
        img: (B, C, H, W) float tensor (H == W).
        mats: (B, P, 3, 3) matrices from :func:`sampling_matrices` (output pixel -> normalised
            sampling position), same device.
        wts: (B, P) non-negative pose weights with a positive sum per sample.
        padding: grid_sample's padding mode ("reflection", "zeros", "border").
    Returns:
        (B, C, H, W) tensor, bilinear sampling.
    """
    b, c, h, w = img.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32, device=img.device),
                            torch.arange(w, dtype=torch.float32, device=img.device), indexing="ij")
    acc = torch.zeros_like(img)
    for p0 in range(0, mats.shape[1], chunk):
        m = mats[:, p0:p0 + chunk, :, :, None, None]  # (B, p, 3, 3, 1, 1)
        p = m.shape[1]
        z = xs * m[:, :, 2, 0] + ys * m[:, :, 2, 1] + m[:, :, 2, 2]
        gx = (xs * m[:, :, 0, 0] + ys * m[:, :, 0, 1] + m[:, :, 0, 2]) / z
        gy = (xs * m[:, :, 1, 0] + ys * m[:, :, 1, 1] + m[:, :, 1, 2]) / z
        grid = torch.stack([gx, gy], dim=-1).reshape(b, p * h, w, 2)
        s = F.grid_sample(img, grid, mode="bilinear", padding_mode=padding, align_corners=True)
        acc = acc + (s.view(b, c, p, h, w) * wts[:, None, p0:p0 + p, None, None]).sum(dim=2)
    return acc / wts.sum(dim=1).view(b, 1, 1, 1)


def convolve_kernels(img: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Per-sample true convolution (scipy orientation) with reflect boundary.

    img: (B, C, H, W) float; kernels: (B, k, k), k odd, each summing to 1. Returns (B, C, H, W)."""
    b, c, h, w = img.shape
    k = kernels.shape[-1]
    r = k // 2
    x = F.pad(img, (r, r, r, r), mode="reflect").reshape(1, b * c, h + 2 * r, w + 2 * r)
    weight = kernels.flip(-1, -2).repeat_interleave(c, dim=0)[:, None]  # conv2d correlates: flip
    return F.conv2d(x, weight, groups=b * c).view(b, c, h, w)


def soft_ellipse(ellipse: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 5) [cy, cx, ry, rx, angle] -> (B, 1, size, size) soft masks (1.5 px edge at the short
    radius), as :func:`deblurkit.data.realistic._soft_ellipse`."""
    y, x = torch.meshgrid(torch.arange(size, dtype=torch.float32, device=ellipse.device),
                          torch.arange(size, dtype=torch.float32, device=ellipse.device), indexing="ij")
    cy, cx, ry, rx, th = (ellipse[:, i, None, None] for i in range(5))
    yy, xx = y - cy, x - cx
    u = (xx * torch.cos(th) + yy * torch.sin(th)) / rx
    v = (-xx * torch.sin(th) + yy * torch.cos(th)) / ry
    edge = 1.5 / torch.clamp(torch.minimum(rx, ry), min=1.0)
    return torch.clamp((1.0 - torch.sqrt(u * u + v * v)) / edge, 0.0, 1.0)[:, None]


_LUMA_Q = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
           14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
           49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
_CHROMA_Q = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
             47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32


def _quant_tables(quality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """IJG quality scaling of the JPEG Annex K tables: (B,) qualities -> two (B, 8, 8) tables."""
    q = quality.clamp(1, 100)
    scale = torch.where(q < 50, 5000.0 / q, 200.0 - 2.0 * q)[:, None, None]
    out = []
    for base in (_LUMA_Q, _CHROMA_Q):
        t = torch.tensor(base, dtype=torch.float32, device=quality.device).view(1, 8, 8)
        out.append(torch.clamp(torch.floor((t * scale + 50.0) / 100.0), 1.0, 255.0))
    return out[0], out[1]


def _dct_matrix(device) -> torch.Tensor:
    n = torch.arange(8, dtype=torch.float32, device=device)
    d = torch.cos((2 * n[None, :] + 1) * n[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return d


def _block_quantise(plane: torch.Tensor, table: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """(B, H, W) level-shifted plane (H, W multiples of 8) -> DCT, quantise with (B, 8, 8), inverse."""
    b, h, w = plane.shape
    blocks = plane.view(b, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)  # (B, h8, w8, 8, 8)
    coef = d @ blocks @ d.T
    t = table[:, None, None]
    coef = torch.round(coef / t) * t
    return (d.T @ coef @ d).permute(0, 1, 3, 2, 4).reshape(b, h, w)


def jpeg_simulate(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """Baseline JPEG's loss, simulated: BT.601 YCbCr, 4:2:0 chroma (2x2 mean, bilinear back),
    8x8 DCT quantisation with the IJG-scaled tables, rounding to 8 bits.

    x: (B, 3, H, W) float in [0, 1], H and W multiples of 16; quality: (B,) in 1..100.
    Returns (B, 3, H, W) float in [0, 1] on the 8-bit grid."""
    b, _, h, w = x.shape
    if h % 16 or w % 16:
        raise ImageError(f"jpeg_simulate: H and W must be multiples of 16, got {h}x{w}")
    v = x.clamp(0, 1) * 255.0
    r, g, bl = v[:, 0], v[:, 1], v[:, 2]
    y = 0.299 * r + 0.587 * g + 0.114 * bl
    cb = -0.168736 * r - 0.331264 * g + 0.5 * bl + 128.0
    cr = 0.5 * r - 0.418688 * g - 0.081312 * bl + 128.0
    qy, qc = _quant_tables(quality.float())
    d = _dct_matrix(x.device)
    y = _block_quantise(y - 128.0, qy, d) + 128.0
    chroma = F.avg_pool2d(torch.stack([cb, cr], 1), 2)
    chroma = torch.stack([_block_quantise(chroma[:, i] - 128.0, qc, d) + 128.0 for i in range(2)], 1)
    chroma = F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False)
    cb, cr = chroma[:, 0] - 128.0, chroma[:, 1] - 128.0
    rgb = torch.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], 1)
    return torch.round(rgb.clamp(0, 255)) / 255.0


class PhotoBank:
    """All training photos on one device as uint8 (C, H, W) tensors, reflect-padded up to
    ``min_side`` where smaller, for fast batched window cuts."""

    def __init__(self, paths: list[Path], device, min_side: int):
        from ..io import read_image

        self.device = torch.device(device)
        self.photos: list[torch.Tensor] = []
        for p in paths:
            x = np.asarray(read_image(p).pixels, dtype=np.float32)
            x = x[:, :, :3] if x.shape[2] >= 3 else np.repeat(x[:, :, :1], 3, axis=2)
            t = torch.from_numpy(np.round(x * 255.0).astype(np.uint8)).permute(2, 0, 1)
            ph, pw = max(0, min_side - t.shape[1]), max(0, min_side - t.shape[2])
            if ph or pw:
                t = F.pad(t[None].float(), (0, pw, 0, ph), mode="reflect")[0].round().to(torch.uint8)
            self.photos.append(t.to(self.device))

    def windows(self, photo, top, left, size: int, codes) -> torch.Tensor:
        """(B,) photo indices and window corners, dihedral codes -> (B, 3, size, size) float in [0, 1]."""
        from .augment import dihedral_torch

        out = [dihedral_torch(self.photos[int(j)][:, int(t):int(t) + size, int(l):int(l) + size], int(c))
               for j, t, l, c in zip(photo.tolist(), top.tolist(), left.tolist(), codes.tolist())]
        return torch.stack(out).float() / 255.0


class DeviceSynthesisSet(torch.utils.data.Dataset):
    """Training set of recipes, realised into ``(blur, sharp)`` batches on the device.

    Args:
        paths: sharp photos. crop: output side (a multiple of 16). length: items.
        mix: a :class:`~deblurkit.data.realistic.MixtureGenerator` (its members' options are used).
        seed: non-negative int; item ``i`` draws only from ``(seed, i)``.

    Items are recipe dicts (:class:`Recipe`); the engine batches them with :meth:`collate` and calls
    :meth:`realise` on the training device, which returns ``blur, sharp`` of shape
    (B, 3, crop, crop), float32 in [0, 1].
    """

    def __init__(self, paths: list[Path], *, crop: int, length: int, mix, seed: int = 0):
        if crop % 16:
            raise ConfigError(f"data.crop: device synthesis needs a multiple of 16, got {crop}")
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise ConfigError("data.train_dir: no images found")
        self.recipe = Recipe(mix, crop)
        self.length, self.seed = int(length), int(seed)
        from PIL import Image

        self.shapes = []
        for p in self.paths:  # upright sizes (EXIF orientations 5-8 swap width and height)
            with Image.open(p) as im:
                w, h = im.size
                if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                    w, h = h, w
            self.shapes.append((h, w))
        self._bank: PhotoBank | None = None

    def __len__(self) -> int:
        return self.length

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_bank"] = None
        return state

    def __getitem__(self, index: int) -> dict:
        rng = item_rng(self.seed, 0, int(index))
        j = int(index) % len(self.paths)
        return self.recipe(rng, j, self.shapes[j])

    collate = staticmethod(collate_recipes)

    def bank(self, device) -> PhotoBank:
        if self._bank is None or self._bank.device != torch.device(device):
            self._bank = PhotoBank(self.paths, device, self.recipe.window)
        return self._bank

    @torch.no_grad()
    def realise(self, batch: dict[str, torch.Tensor], device) -> tuple[torch.Tensor, torch.Tensor]:
        """Recipes -> (blur, sharp), each (B, 3, crop, crop) float32 in [0, 1] on ``device``."""
        device = torch.device(device)
        bt = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        win, m = self.recipe.window, self.recipe.margin
        x = self.bank(device).windows(batch["photo"], batch["top"], batch["left"], win, batch["code"])
        lin = x ** GAMMA
        thr, gain = bt["highlight"][:, 0, None, None, None], bt["highlight"][:, 1, None, None, None]
        mask = torch.clamp((lin.mean(dim=1, keepdim=True) - thr) / 0.1, 0.0, 1.0)
        lin = lin * (1.0 + (gain - 1.0) * mask)
        blur, sharp = lin.clone(), lin.clone()
        kind = batch["kind"]

        def idx(*names):
            sel = torch.zeros_like(kind, dtype=torch.bool)
            for n in names:
                sel |= kind == KINDS.index(n)
            return sel.nonzero().flatten().to(device)

        i = idx("camera", "frames")
        if len(i):
            blur[i] = warp_average(lin[i], bt["warp"][i], bt["warp_w"][i], "reflection")
        i = idx("sharp")
        if len(i) and bt["soft"].shape[-1] > 1:  # soft sharp pairs: the softened photo is the target too
            sharp[i] = convolve_kernels(lin[i], bt["soft"][i])
            lin[i] = sharp[i]
        i = idx("shake", "sharp")
        if len(i):
            blur[i] = convolve_kernels(lin[i], bt["kernel"][i])
        i = idx("object")
        if len(i):
            bg_img = lin[i]
            obj = torch.stack([torch.rot90(t.flip(-2), int(r), dims=(-2, -1))
                               for t, r in zip(bg_img, batch["objrot"][i.cpu()].tolist())])
            mk = soft_ellipse(bt["ellipse"][i], win)
            moved = warp_average(torch.cat([obj * mk, mk], 1), bt["warp"][i], bt["warp_w"][i], "zeros")
            bg = warp_average(bg_img, bt["bgwarp"][i], bt["bgwarp_w"][i], "reflection")
            blur[i] = moved[:, :3] + (1.0 - moved[:, 3:]) * bg
            sharp[i] = obj * mk + (1.0 - mk) * bg_img
        sl = (slice(None), slice(None), slice(m, win - m), slice(m, win - m))
        blur = blur[sl].clamp(0.0, 1.0) ** (1.0 / GAMMA)
        sharp = sharp[sl].clamp(0.0, 1.0) ** (1.0 / GAMMA)
        # camera pipeline on the blurred image: Poisson-Gaussian noise, then JPEG or 8-bit
        peak, sigma, q = (bt["noise"][:, k, None, None, None] for k in range(3))
        shot = torch.sqrt(blur / peak.clamp(min=1.0)) * torch.randn_like(blur) * (peak > 0)
        blur = (blur + shot + sigma * torch.randn_like(blur)).clamp(0.0, 1.0)
        jq = bt["noise"][:, 2]
        j = (jq > 0).nonzero().flatten()
        out = torch.round(blur * 255.0) / 255.0
        if len(j):
            out[j] = jpeg_simulate(blur[j], jq[j])
        return out.contiguous(), sharp.contiguous()


def build_device_set(cfg) -> DeviceSynthesisSet:
    """The engine's training set for ``data.synthesis: device``."""
    from ..train.config import resolve_path
    from .realistic import build_generator
    from .synthetic import _collect

    paths, _ = _collect(resolve_path(cfg, cfg.data.train_dir))
    mix = build_generator(cfg.data.mix, cfg.data.generators)
    return DeviceSynthesisSet(paths, crop=cfg.data.crop, length=cfg.steps * cfg.data.batch_size, mix=mix,
                              seed=cfg.seed)
