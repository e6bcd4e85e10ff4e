"""Sun, Cao, Xu, Ponce, "Learning a Convolutional Neural Network for Non-uniform Motion Blur
Removal", CVPR 2015 (survey: Sahu, Lenka, Sa, arXiv 1907.10128, §II-A, eq. 9-12).

Pipeline (:class:`Sun2015Estimator`):

1. **Patch CNN** (:class:`Sun2015Net`, paper §3.1, survey eq. 9-10): a grey 30x30 patch goes
   through 6 layers, ``C1`` conv 7x7 -> ``M2`` 2x2 max-pool -> ``C3`` conv 5x5 -> ``M4`` 2x2
   max-pool -> ``F5`` fully connected -> ``S6`` softmax over the 73 linear motion kernels of
   :data:`BASE_KERNELS`: lengths ``l`` in {1, 3, ..., 25} px and orientations ``o`` in
   {0, 30, ..., 150} degrees, the 6 orientations sharing the single no-blur kernel ``l = 1``
   (12 x 6 + 1 = 73, paper §3.1).
2. **Rotation trick** (paper §3.2): the CNN only knows orientations 30 degrees apart. Rotating
   the patch by ``-theta`` for ``theta`` in {0, 6, 12, 18, 24} degrees turns a blur at
   ``o_b + theta`` into one at ``o_b``, so the 5 rotated predictions give a distribution over the
   361 kernels of :data:`EXTENDED_KERNELS` (12 lengths x 30 orientations 6 degrees apart + no
   blur): :func:`extend_probabilities`.
3. **Dense confidence** (survey eq. 11): the confidence of kernel ``m`` at pixel ``p`` is the
   Gaussian-weighted mean of the predictions of the patches ``Psi_q`` that contain ``p``::

       C(m_p = m) = 1/Z_p  sum_{q : p in Psi_q}  G_sigma(||p - q||)  P(m | Psi_q)

   (:func:`gaussian_confidence`).
4. **MRF** (survey eq. 12): a smooth motion field minimising::

       E(M) = sum_p -C(m_p)  +  lambda  sum_{(p, q) in N}  ||(u_p, v_p) - (u_q, v_q)||^2

   over the 361 labels on a 4-connected lattice, with ``(u, v)`` the motion vector of a label.
   Minimised with TRW-S (Kolmogorov, "Convergent tree-reweighted message passing for energy
   minimization", PAMI 2006; sequential passes vectorised over anti-diagonals, exact because
   nodes on one anti-diagonal are never neighbours) on the ``candidates`` most confident labels
   of each node, keeping the lowest-energy labelling seen (the unsmoothed arg-max field is the
   first), then polished by ICM, so the result's energy is never above the arg-max field's
   (:func:`solve_mrf`, :func:`mrf_energy`).
5. **Non-blind deconvolution** with the field: :func:`deblurkit.deconv.deconv_motion_field`
   (conjugate gradients with a gradient prior; the paper uses an EPLL-style patch prior instead).

Conventions (docs/CONVENTIONS.md): a kernel ``(l, o)`` is a streak ``l`` px long (as
:func:`deblurkit.blur.kernels.linear_motion_kernel`), ``o`` counter-clockwise from +x on screen;
its motion vector is ``(u, v) = ((l - 1) cos o, -(l - 1) sin o)`` (``u`` right, ``v`` down): a
pixel moving ``|M|`` px leaves a streak ``|M| + 1`` px long. ``(u, v)`` and ``(-u, -v)`` are the
same blur; with ``symmetric=True`` (the default, a deliberate deviation from the paper) the
pairwise term of eq. 12 uses ``min(||a - b||^2, ||a + b||^2)`` so that orientations 0 and 174
degrees are neighbours, as they are on the image.

Deviations from the paper, all options: grey (luminance) patches normalised to zero mean and unit
standard deviation over a 31x31 window (:func:`local_normalise`); patches centred every
``stride`` = 4 or 8 px (the CNN runs as convolutions over the whole image, exact for the patches
its two poolings align with; the paper evaluates every pixel) and MRF nodes every ``mrf_step`` px
(each pixel takes its nearest node's motion; ``mrf_step = 1`` is every pixel);
``size="cpu"`` (default) is a narrower network than the paper's (``size="paper"``: C1 96 filters
7x7, C3 256 filters 5x5, F5 1024 units, 4,889,609 parameters; ``"cpu"``: 24 / 32 / 128 units,
95,513 parameters).
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..deconv.wiener import L2_GRADIENT_WEIGHT
from ..errors import ConfigError, ImageError, WeightsError

__all__ = [
    "PATCH_SIZE", "LENGTHS", "BASE_ORIENTATIONS", "ROTATIONS", "EXTENDED_ORIENTATIONS",
    "BASE_KERNELS", "EXTENDED_KERNELS", "SIZES", "Sun2015Net", "Sun2015Estimator",
    "local_normalise", "kernel_motion", "label_to_motion", "motion_to_label", "rotation_label_map",
    "extend_probabilities", "patch_grid", "sample_patches", "rotated_canvas", "gaussian_confidence",
    "mrf_energy", "solve_mrf", "lattice", "grey", "load",
]

#: Side of the square patches the CNN classifies (paper: 30 x 30).
PATCH_SIZE = 30
#: Streak lengths in pixels (paper: 1, 3, ..., 25; length 1 is "no blur").
LENGTHS = tuple(range(1, 26, 2))
#: Orientations the CNN classifies, degrees counter-clockwise from +x (paper: 0, 30, ..., 150).
BASE_ORIENTATIONS = tuple(range(0, 180, 30))
#: Rotation angles of the rotation trick (paper: 6-degree steps within one 30-degree bin).
ROTATIONS = tuple(range(0, 30, 6))
#: Orientations of the extended kernel set: 0, 6, ..., 174 degrees.
EXTENDED_ORIENTATIONS = tuple(range(0, 180, 6))


def _kernel_set(orientations: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """``(length, orientation)`` pairs: index 0 is the no-blur kernel ``(1, 0)``, then every
    length > 1 (outer loop) with every orientation (inner loop)."""
    return ((1, 0),) + tuple((l, o) for l in LENGTHS[1:] for o in orientations)


#: The 73 classes of the CNN (paper §3.1).
BASE_KERNELS = _kernel_set(BASE_ORIENTATIONS)
#: The 361 labels of the rotation-extended set (paper §3.2) used by eq. 11-12.
EXTENDED_KERNELS = _kernel_set(EXTENDED_ORIENTATIONS)

#: Network sizes: conv1 / conv3 channels and F5 units.
SIZES: dict[str, dict[str, int]] = {
    "cpu": {"conv1": 24, "conv3": 32, "hidden": 128},
    "paper": {"conv1": 96, "conv3": 256, "hidden": 1024},
}


# --------------------------------------------------------------------------------------------
# labels
# --------------------------------------------------------------------------------------------

def kernel_motion(kernels: tuple[tuple[int, int], ...] = EXTENDED_KERNELS) -> np.ndarray:
    """Motion vectors of a kernel set: float64 ``(L, 2)`` of ``(u, v)`` in pixels,
    ``u = (l - 1) cos o``, ``v = -(l - 1) sin o`` (``v`` down, ``o`` counter-clockwise on screen)."""
    arr = np.asarray(kernels, dtype=np.float64)
    mag = arr[:, 0] - 1.0
    ang = np.deg2rad(arr[:, 1])
    return np.stack([mag * np.cos(ang), -mag * np.sin(ang)], axis=1)


def label_to_motion(labels: np.ndarray, kernels: tuple[tuple[int, int], ...] = EXTENDED_KERNELS
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Labels (integer array, any shape, in ``[0, len(kernels))``) -> ``(u, v)`` float32 arrays
    of the same shape, in pixels (see :func:`kernel_motion`)."""
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ConfigError(f"labels: expected an integer array, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(kernels)):
        raise ConfigError(f"labels: values must be in [0, {len(kernels)}), got "
                          f"[{labels.min()}, {labels.max()}]")
    vec = kernel_motion(kernels)
    return vec[labels, 0].astype(np.float32), vec[labels, 1].astype(np.float32)


def motion_to_label(u: np.ndarray, v: np.ndarray,
                    kernels: tuple[tuple[int, int], ...] = EXTENDED_KERNELS) -> np.ndarray:
    """Nearest kernel of the set to each motion vector (``(u, v)`` and ``(-u, -v)`` are the same
    blur, so the distance is ``min(||m - k||, ||m + k||)``). ``u, v``: float arrays of one shape;
    returns int64 labels of that shape. Inverse of :func:`label_to_motion` on the set's vectors."""
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    if u.shape != v.shape:
        raise ConfigError(f"v: shape {v.shape} differs from u {u.shape}")
    if not (np.isfinite(u).all() and np.isfinite(v).all()):
        raise ConfigError("u, v: motion vectors must be finite")
    vec = kernel_motion(kernels)
    m = np.stack([u.ravel(), v.ravel()], axis=1)[:, None, :]
    d = np.minimum(((m - vec) ** 2).sum(-1), ((m + vec) ** 2).sum(-1))
    return d.argmin(axis=1).reshape(u.shape).astype(np.int64)


def rotation_label_map() -> np.ndarray:
    """int64 ``(len(ROTATIONS), 73)``: the extended label (index into :data:`EXTENDED_KERNELS`)
    of base class ``b`` seen in the patch rotated by ``-ROTATIONS[k]``: a blur ``(l, o_b)`` in the
    rotated patch is ``(l, o_b + ROTATIONS[k])`` in the image (paper §3.2)."""
    index = {k: i for i, k in enumerate(EXTENDED_KERNELS)}
    out = np.zeros((len(ROTATIONS), len(BASE_KERNELS)), dtype=np.int64)
    for r, theta in enumerate(ROTATIONS):
        for b, (length, o) in enumerate(BASE_KERNELS):
            out[r, b] = index[(1, 0)] if length == 1 else index[(length, (o + theta) % 180)]
    return out


def extend_probabilities(probs: np.ndarray | torch.Tensor) -> np.ndarray:
    """Combine the CNN's distributions over the 73 base kernels for the ``R = len(ROTATIONS)``
    rotated copies of each patch into one distribution over the 361 extended kernels.

    ``probs``: ``(..., R, 73)``, each row a distribution. The result is their mixture with weight
    ``1/R``, each rotated copy's classes mapped by :func:`rotation_label_map` (every blurred
    extended kernel comes from exactly one (rotation, class) pair; the no-blur label collects
    the no-blur class of all ``R``): float64 ``(..., 361)`` summing to 1.
    """
    p = probs.detach().cpu().double().numpy() if isinstance(probs, torch.Tensor) else \
        np.asarray(probs, dtype=np.float64)
    r = len(ROTATIONS)
    if p.ndim < 2 or p.shape[-2:] != (r, len(BASE_KERNELS)):
        raise ConfigError(f"probs: expected shape (..., {r}, {len(BASE_KERNELS)}), got {p.shape}")
    lead = p.shape[:-2]
    raw = p.reshape(-1, r * len(BASE_KERNELS))
    target = rotation_label_map().ravel()
    hits = np.bincount(target, minlength=len(EXTENDED_KERNELS))
    if (hits == 0).any():  # pragma: no cover - every extended kernel has a source
        raise ConfigError("rotation_label_map: some extended kernels have no source class")
    # a label hit once is a copy of its column / r; the others (the no-blur label) are summed in
    # the column order of np.add.at(out.T, target, (raw / r).T), so the result is the same to
    # the bit, with one output allocation
    source = np.empty(len(EXTENDED_KERNELS), dtype=np.int64)
    source[target] = np.arange(len(target))
    out = np.take(raw, source, axis=1)
    out /= r
    for label in np.flatnonzero(hits > 1):
        acc = np.zeros(raw.shape[0], dtype=np.float64)
        for j in np.flatnonzero(target == label):
            acc = acc + raw[:, j] / r
        out[:, label] = acc
    return out.reshape(*lead, len(EXTENDED_KERNELS))


# --------------------------------------------------------------------------------------------
# the network
# --------------------------------------------------------------------------------------------

def local_normalise(images: torch.Tensor, radius: int = PATCH_SIZE // 2,
                    eps: float = 0.02) -> torch.Tensor:
    """Local contrast normalisation, the input of :class:`Sun2015Net`: each pixel minus the mean
    of the ``(2 radius + 1)^2`` window around it, divided by that window's standard deviation
    plus ``eps`` (reflection at the borders). Translation-equivariant, so normalising an image
    and then cutting a patch equals cutting the patch from a normalised image away from the
    borders (what makes the dense evaluation of :meth:`Sun2015Net.forward` exact).

    ``images``: ``(B, 1, H, W)`` float, ``H, W > radius``; returns the same shape and dtype."""
    k = 2 * radius + 1
    padded = F.pad(images, (radius,) * 4, mode="reflect")

    def box(x: torch.Tensor) -> torch.Tensor:  # separable k x k mean
        return F.avg_pool2d(F.avg_pool2d(x, (k, 1), stride=1), (1, k), stride=1)

    mean = box(padded)
    sq = box(padded * padded)
    sd = (sq - mean * mean).clamp_min(0.0).sqrt()
    return (images - mean) / (sd + eps)


def _max_pool2(x: torch.Tensor) -> torch.Tensor:
    """``F.max_pool2d(x, 2)``; without autograd as the maximum of the four strided 2x2 phases
    (the same values, exactly: a maximum does not round; ~3x faster on the CPU at one thread)."""
    if torch.is_grad_enabled() and x.requires_grad:
        return F.max_pool2d(x, 2)
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    return torch.maximum(torch.maximum(x[..., 0:h:2, 0:w:2], x[..., 0:h:2, 1:w:2]),
                         torch.maximum(x[..., 1:h:2, 0:w:2], x[..., 1:h:2, 1:w:2]))


class Sun2015Net(nn.Module):
    """The patch CNN of Sun et al. 2015 (paper Fig. 2), written fully convolutionally.

    C1 conv ``conv1`` 7x7 + ReLU -> M2 max-pool 2 -> C3 conv ``conv3`` 5x5 + ReLU -> M4 max-pool
    2 -> F5 ``hidden`` units + ReLU (a 4x4 convolution: the fully connected layer on the 4x4 map
    of a 30x30 patch) -> S6 (73 classes of :data:`BASE_KERNELS`; a 1x1 convolution; softmax over
    the channels).

    ``forward`` takes locally normalised images (:func:`local_normalise`) ``(N, 1, H, W)``,
    ``H, W >= 30``, and returns logits ``(N, classes, H', W')`` with ``H' = ((H - 6) // 2 - 4)
    // 2 - 3`` (for ``f5_stride = 1``): output ``(i, j)`` is exactly the classification of the
    30x30 patch whose top-left pixel is ``(4 i, 4 j)`` (``(4 f5_stride i, 4 f5_stride j)`` in
    general). A 30x30 input gives one output: the patch classifier of the paper.
    """

    def __init__(self, conv1: int = 24, conv3: int = 32, hidden: int = 128,
                 classes: int = len(BASE_KERNELS)) -> None:
        super().__init__()
        for name, value in (("conv1", conv1), ("conv3", conv3), ("hidden", hidden),
                            ("classes", classes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"sun2015 option {name}: expected an integer >= 1, got {value!r}")
        self.c1 = nn.Conv2d(1, conv1, 7)                 # 30 -> 24, pool -> 12
        self.c3 = nn.Conv2d(conv1, conv3, 5)             # 12 -> 8, pool -> 4
        self.f5 = nn.Conv2d(conv3, hidden, 4)            # 4 -> 1
        self.s6 = nn.Conv2d(hidden, classes, 1)

    def forward(self, x: torch.Tensor, f5_stride: int = 1) -> torch.Tensor:
        """``(N, 1, H, W)`` normalised images -> ``(N, classes, H', W')`` logits."""
        if x.dim() != 4 or x.shape[1] != 1 or x.shape[2] < PATCH_SIZE or x.shape[3] < PATCH_SIZE:
            raise ImageError(f"Sun2015Net input: expected (N, 1, H, W) with H, W >= "
                             f"{PATCH_SIZE}, got {tuple(x.shape)}")
        # relu(max_pool(.)) == max_pool(relu(.)) exactly (relu is monotone), on 4x fewer values
        x = F.relu(_max_pool2(self.c1(x)))
        x = F.relu(_max_pool2(self.c3(x)))
        x = F.relu(F.conv2d(x, self.f5.weight, self.f5.bias, stride=f5_stride))
        return self.s6(x)

    def classify(self, patches: torch.Tensor) -> torch.Tensor:
        """``(N, 1, 30, 30)`` normalised patches -> ``(N, classes)`` logits."""
        if patches.dim() != 4 or patches.shape[1:] != (1, PATCH_SIZE, PATCH_SIZE):
            raise ImageError(f"Sun2015Net patches: expected (N, 1, {PATCH_SIZE}, {PATCH_SIZE}), "
                             f"got {tuple(patches.shape)}")
        return self.forward(patches)[:, :, 0, 0]


def create_network(size: str = "cpu", **options: Any) -> Sun2015Net:
    """A :class:`Sun2015Net` of a named size (:data:`SIZES`), single options overriding it."""
    if size not in SIZES:
        raise ConfigError(f"sun2015 size={size!r}: choose one of {', '.join(SIZES)}")
    return Sun2015Net(**{**SIZES[size], **options})


# --------------------------------------------------------------------------------------------
# patches
# --------------------------------------------------------------------------------------------

def grey(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Luminance of an ``H x W``, ``H x W x 1`` or ``H x W x 3|4`` float image in [0, 1]
    (Rec. 601 weights; alpha ignored): float32 ``(H, W)``."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"{name}: expected a numpy array H x W x C, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] in (1, 3, 4):
        img = image[:, :, 0] if image.shape[2] == 1 else \
            image[:, :, :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float64)
    elif image.ndim == 2:
        img = image
    else:
        raise ImageError(f"{name}: expected shape H x W or H x W x C (C = 1, 3, 4), "
                         f"got {image.shape}")
    if img.size == 0:
        raise ImageError(f"{name}: empty array of shape {image.shape}")
    if not np.issubdtype(image.dtype, np.floating):
        raise ImageError(f"{name}: expected a float array in [0, 1], got dtype {image.dtype}")
    bad = int((~np.isfinite(img)).sum())
    if bad:
        raise ImageError(f"{name}: has {bad} non-finite values (NaN or inf)")
    return np.ascontiguousarray(img, dtype=np.float32)


def patch_grid(cy: np.ndarray, cx: np.ndarray, angle: np.ndarray | float,
               size: int = PATCH_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Pixel positions ``(x, y)``, each float64 ``(N, size, size)``, of ``N`` square patches
    centred at ``(cy, cx)`` (pixel ``(cy, cx)`` is row/column ``size // 2`` of the patch) whose
    content is rotated by ``angle`` degrees counter-clockwise on screen: patch pixel ``q``
    (offsets from the centre, ``y`` down) reads the image at ``c + R(-angle) q``, so a streak at
    orientation ``o`` in the image is at ``o + angle`` in the patch."""
    cy = np.asarray(cy, np.float64).reshape(-1, 1, 1)
    cx = np.asarray(cx, np.float64).reshape(-1, 1, 1)
    a = np.deg2rad(np.broadcast_to(np.asarray(angle, np.float64).reshape(-1), (cy.shape[0],)))
    c, s = np.cos(a).reshape(-1, 1, 1), np.sin(a).reshape(-1, 1, 1)
    off = np.arange(size, dtype=np.float64) - size // 2
    qy, qx = np.meshgrid(off, off, indexing="ij")
    # R(phi) on (x, y_down) is [[c, s], [-s, c]]; R(-phi) = [[c, -s], [s, c]]
    return cx + c * qx - s * qy, cy + s * qx + c * qy


def rotated_canvas(image: torch.Tensor, angle: float, margin: int, x: np.ndarray, y: np.ndarray
                   ) -> tuple[torch.Tensor, tuple[np.ndarray, np.ndarray]]:
    """The image ``(1, 1, H, W)`` rotated by ``angle`` degrees counter-clockwise on screen onto a
    canvas holding all of it plus ``margin`` px (reflection outside the image), and where the
    image positions ``x, y`` (float arrays) land on it.

    Canvas pixel ``P`` reads the image at ``c0 + R(-angle) (P - C)`` (``c0``, ``C`` the centres of
    the image and the canvas; :func:`patch_grid`'s convention), so a streak at orientation ``o``
    is at ``o + angle`` on the canvas. For ``angle = 0`` the canvas is the image padded by
    ``margin`` on every side, read exactly. Returns ``(canvas (1, 1, Hc, Wc), (X, Y))``."""
    h, w = image.shape[-2:]
    a = math.radians(angle)
    c, s = math.cos(a), math.sin(a)
    if abs(s) < 1e-12:
        c, s = math.copysign(1.0, c), 0.0
    bw = abs(c) * (w - 1) + abs(s) * (h - 1)
    bh = abs(s) * (w - 1) + abs(c) * (h - 1)
    wc = int(math.ceil(bw - 1e-9)) + 1 + 2 * margin
    hc = int(math.ceil(bh - 1e-9)) + 1 + 2 * margin
    ccx, ccy = (wc - 1) / 2.0, (hc - 1) / 2.0
    icx, icy = (w - 1) / 2.0, (h - 1) / 2.0
    dy, dx = np.meshgrid(np.arange(hc) - ccy, np.arange(wc) - ccx, indexing="ij")
    sx = icx + c * dx - s * dy
    sy = icy + s * dx + c * dy
    if s == 0.0:                 # pure translation: integer positions, read exactly
        sx, sy = np.rint(sx), np.rint(sy)
    canvas = sample_patches(image, sx[None], sy[None])
    ex = np.asarray(x, np.float64) - icx
    ey = np.asarray(y, np.float64) - icy
    return canvas, (ccx + c * ex + s * ey, ccy - s * ex + c * ey)


def _read_map(prob: torch.Tensor, fx: np.ndarray, fy: np.ndarray,
              out: np.ndarray | None = None) -> np.ndarray:
    """Bilinear reading of a ``(1, L, Ho, Wo)`` map at fractional output indices ``fx, fy``
    (``(Gy, Gx)`` arrays; clamped to the map): float64 ``(Gy, Gx, L)`` (written into ``out``
    when given). Integer indices read the map exactly.

    Computes ``(1 - ay) ((1 - ax) m00 + ax m01) + ay ((1 - ax) m10 + ax m11)`` with the same
    operations in the same order as that expression, in place (no full-size temporaries)."""
    _, l, ho, wo = prob.shape
    fx = np.clip(fx, 0, wo - 1)
    fy = np.clip(fy, 0, ho - 1)
    x0 = np.minimum(np.floor(fx).astype(np.int64), wo - 1)
    y0 = np.minimum(np.floor(fy).astype(np.int64), ho - 1)
    x1 = np.minimum(x0 + 1, wo - 1)
    y1 = np.minimum(y0 + 1, ho - 1)
    ax = (fx - x0)[..., None]
    ay = (fy - y0)[..., None]
    bx, by = 1 - ax, 1 - ay
    m = np.ascontiguousarray(prob[0].permute(1, 2, 0).numpy()).reshape(ho * wo, l)
    # indices are in range (clipped above): mode="clip" only skips numpy's buffered bounds check
    res = np.take(m, y0 * wo + x0, axis=0, mode="clip")
    tmp = np.take(m, y0 * wo + x1, axis=0, mode="clip")
    res *= bx
    tmp *= ax
    res += tmp
    res *= by                                   # (1 - ay) * ((1 - ax) m00 + ax m01)
    low = np.take(m, y1 * wo + x0, axis=0, mode="clip")
    np.take(m, y1 * wo + x1, axis=0, out=tmp, mode="clip")
    low *= bx
    tmp *= ax
    low += tmp
    low *= ay                                   # ay * ((1 - ax) m10 + ax m11)
    res += low
    if out is None:
        return res
    out[...] = res
    return out


def sample_patches(images: torch.Tensor, x: np.ndarray, y: np.ndarray,
                   which: np.ndarray | None = None) -> torch.Tensor:
    """Bilinear samples of ``images`` ``(B, 1, H, W)`` at positions ``x, y`` ``(N, Ph, Pw)``
    (e.g. :func:`patch_grid`; reflection outside the image, ``grid_sample(align_corners=True)``).
    ``which``: ``(N,)`` image index of each patch (default: all from image 0). Returns
    ``(N, 1, Ph, Pw)`` of the images' dtype; integer positions read pixels exactly (to an ulp)."""
    b, _, h, w = images.shape
    n, ph, pw = x.shape
    which = np.zeros(n, dtype=np.int64) if which is None else np.asarray(which, np.int64)
    gx = x * (2.0 / (w - 1)) - 1 if w > 1 else np.zeros_like(x)
    gy = y * (2.0 / (h - 1)) - 1 if h > 1 else np.zeros_like(y)
    grid = torch.from_numpy(np.stack([gx, gy], axis=-1)).to(images.dtype)
    out = torch.empty(n, 1, ph, pw, dtype=images.dtype)
    for i in range(b):
        sel = np.nonzero(which == i)[0]
        if sel.size == 0:
            continue
        g = grid[torch.from_numpy(sel)].reshape(1, sel.size * ph, pw, 2)
        s = F.grid_sample(images[i:i + 1], g, mode="bilinear", padding_mode="reflection",
                          align_corners=True)
        out[torch.from_numpy(sel)] = s.reshape(sel.size, ph, pw).unsqueeze(1)
    return out


def lattice(n: int, step: int) -> np.ndarray:
    """Positions ``0 <= x < n`` every ``step`` px, centred so both borders have the same margin
    (int64)."""
    return np.arange(((n - 1) % step) // 2, n, step, dtype=np.int64)


# --------------------------------------------------------------------------------------------
# eq. 11: Gaussian-weighted dense confidence
# --------------------------------------------------------------------------------------------

def _axis_weights(query: np.ndarray, centres: np.ndarray, sigma: float, half: float) -> np.ndarray:
    d = np.asarray(query, np.float64)[:, None] - np.asarray(centres, np.float64)[None, :]
    return np.exp(-0.5 * (d / sigma) ** 2) * (np.abs(d) <= half)


def gaussian_confidence(probs: np.ndarray, centres_y: np.ndarray, centres_x: np.ndarray,
                        query_y: np.ndarray, query_x: np.ndarray, *, sigma: float = 8.0,
                        half: float = PATCH_SIZE / 2) -> np.ndarray:
    """Survey eq. 11: ``C(p, m) = sum_q G(p - q) P_q(m) / sum_q G(p - q)`` over the patches ``q``
    containing ``p`` (``|p_y - q_y| <= half`` and ``|p_x - q_x| <= half``), with
    ``G(d) = exp(-||d||^2 / (2 sigma^2))``.

    Args:
        probs: ``(Gy, Gx, L)`` distributions of the patches centred on the grid
            ``centres_y x centres_x`` (1-D pixel positions, lengths ``Gy`` and ``Gx``).
        query_y, query_x: 1-D pixel positions of the query lattice (``Qy``, ``Qx``).
        sigma: Gaussian width in pixels (> 0); half: half the patch side.

    Returns:
        float64 ``(Qy, Qx, L)``; each query pixel must lie in at least one patch (else
        ConfigError). The Gaussian and the square window are separable, so the sums are two
        matrix products with banded weights (sparse: each query sees ``~2 half / stride``
        patches per axis).
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 3 or probs.shape[:2] != (len(centres_y), len(centres_x)):
        raise ConfigError(f"probs: expected shape ({len(centres_y)}, {len(centres_x)}, L), "
                          f"got {probs.shape}")
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise ConfigError(f"sigma={sigma!r}: expected a finite number > 0")
    wy = _axis_weights(query_y, centres_y, sigma, half)
    wx = _axis_weights(query_x, centres_x, sigma, half)
    zy, zx = wy.sum(1), wx.sum(1)
    if (zy <= 0).any() or (zx <= 0).any():
        raise ConfigError("query pixels: some lie in no patch (patch stride larger than the patch?)")
    import scipy.sparse

    gy, gx, labels = probs.shape
    num = scipy.sparse.csr_matrix(wy) @ probs.reshape(gy, gx * labels)   # sum over centres_y
    num = num.reshape(len(wy), gx, labels)
    sx = scipy.sparse.csr_matrix(wx)
    out = np.empty((len(wy), len(wx), labels), dtype=np.float64)
    for i in range(len(wy)):                                            # sum over centres_x
        out[i] = sx @ num[i]
    return out / (zy[:, None, None] * zx[None, :, None])


# --------------------------------------------------------------------------------------------
# eq. 12: the MRF and its optimiser
# --------------------------------------------------------------------------------------------

def _dist(a: np.ndarray, b: np.ndarray, symmetric: bool) -> np.ndarray:
    """Squared distance of motion vectors (broadcast over leading axes, last axis 2):
    ``|a|^2 + |b|^2 - 2 a.b``, or with ``symmetric`` the smaller of the distances to ``b`` and
    ``-b``: ``|a|^2 + |b|^2 - 2 |a.b|`` (clamped at 0 against rounding)."""
    dot = a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1]
    d = (a[..., 0] ** 2 + a[..., 1] ** 2) + (b[..., 0] ** 2 + b[..., 1] ** 2) \
        - 2.0 * (np.abs(dot) if symmetric else dot)
    return np.maximum(d, 0.0)


def _pair_cost(a: np.ndarray, b: np.ndarray, symmetric: bool) -> np.ndarray:
    """:func:`_dist` of every pair: ``a`` ``(n, K, 2)``, ``b`` ``(n, K', 2)`` -> ``(n, K, K')``
    (one batched matrix product)."""
    dot = a @ b.transpose(0, 2, 1)
    d = (a * a).sum(-1)[:, :, None] + (b * b).sum(-1)[:, None, :] \
        - 2.0 * (np.abs(dot) if symmetric else dot)
    return np.maximum(d, 0.0)


def mrf_energy(labels: np.ndarray, unary: np.ndarray, vectors: np.ndarray, smoothness: float,
               *, symmetric: bool = True) -> float:
    """Energy of survey eq. 12 on a 4-connected lattice::

        E = sum_p unary[p, labels[p]]
            + smoothness * sum_{p~q} d(vectors[labels[p]], vectors[labels[q]])

    with ``d`` the squared distance of the motion vectors (``min`` with the sign-flipped vector
    when ``symmetric``). ``labels``: int ``(H, W)``; ``unary``: ``(H, W, L)`` (eq. 12 uses
    ``-C``); ``vectors``: ``(L, 2)``. Returns a float (float64 sums)."""
    labels = np.asarray(labels)
    unary = np.asarray(unary, np.float64)
    vec = np.asarray(vectors, np.float64)[labels]
    e = float(np.take_along_axis(unary, labels[..., None], axis=2).sum())
    e += smoothness * float(_dist(vec[:, 1:], vec[:, :-1], symmetric).sum())
    e += smoothness * float(_dist(vec[1:], vec[:-1], symmetric).sum())
    return e


def _check_mrf_args(unary: object, vectors: object, smoothness: object
                    ) -> tuple[np.ndarray, np.ndarray, float]:
    unary = np.asarray(unary, dtype=np.float64)
    if unary.ndim != 3 or min(unary.shape) == 0:
        raise ConfigError(f"unary: expected a non-empty (H, W, L) array, got shape {unary.shape}")
    if not np.isfinite(unary).all():
        raise ConfigError("unary: has non-finite values")
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.shape != (unary.shape[2], 2):
        raise ConfigError(f"vectors: expected shape ({unary.shape[2]}, 2), got {vectors.shape}")
    if isinstance(smoothness, bool) or not isinstance(smoothness, (int, float)) or \
            not math.isfinite(smoothness) or smoothness < 0:
        raise ConfigError(f"smoothness={smoothness!r}: expected a finite number >= 0")
    return unary, vectors, float(smoothness)


def _diagonals(h: int, w: int) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for d in range(h + w - 1):
        hs = np.arange(max(0, d - w + 1), min(d, h - 1) + 1)
        out.append((hs, d - hs))
    return out


def _trws(unary: np.ndarray, vec: np.ndarray, lam: float, symmetric: bool, iterations: int
          ) -> tuple[np.ndarray, list[float]]:
    """TRW-S (Kolmogorov 2006) on a 4-connected ``(H, W)`` lattice with per-node candidate
    labels: ``unary`` ``(H, W, K)``, ``vec`` ``(H, W, K, 2)`` the candidates' motion vectors.
    Returns the lowest-energy labelling found (indices into the K candidates; the all-zeros
    labelling is the first considered) and the energies of the labellings of each iteration."""
    h, w, k = unary.shape

    def energy(lab: np.ndarray) -> float:
        sel = np.take_along_axis(vec, lab[..., None, None].repeat(2, -1), axis=2)[:, :, 0]
        e = float(np.take_along_axis(unary, lab[..., None], axis=2).sum())
        e += lam * float(_dist(sel[:, 1:], sel[:, :-1], symmetric).sum())
        return e + lam * float(_dist(sel[1:], sel[:-1], symmetric).sum())

    best = np.zeros((h, w), dtype=np.int64)
    best_e = energy(best)
    history = [best_e]
    if h * w == 1 or lam == 0 or iterations == 0:
        return best, history
    # messages, padded by one node on every side: node (i, j) is at [i + 1, j + 1]
    m_r = np.zeros((h + 2, w + 2, k))   # (i, j) -> (i, j + 1), over the right node's labels
    m_l = np.zeros((h + 2, w + 2, k))   # (i, j) -> (i, j - 1)
    m_d = np.zeros((h + 2, w + 2, k))   # (i, j) -> (i + 1, j)
    m_u = np.zeros((h + 2, w + 2, k))   # (i, j) -> (i - 1, j)
    ii, jj = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    n_in = (jj > 0).astype(int) + (ii > 0)
    n_out = (jj < w - 1).astype(int) + (ii < h - 1)
    gamma = 1.0 / np.maximum(np.maximum(n_in, n_out), 1)
    diags = _diagonals(h, w)

    def theta(hs: np.ndarray, ws: np.ndarray) -> np.ndarray:
        return (unary[hs, ws] + m_r[hs + 1, ws] + m_l[hs + 1, ws + 2]
                + m_d[hs, ws + 1] + m_u[hs + 2, ws + 1])

    def send(th: np.ndarray, g: np.ndarray, back: np.ndarray, src: tuple, dst: tuple
             ) -> np.ndarray:
        # min over the sender's labels a of  g * theta(a) - back(a) + lam * d(a, b)
        cost = lam * _pair_cost(vec[src], vec[dst], symmetric)
        msg = ((g[:, None] * th - back)[:, :, None] + cost).min(axis=1)
        return msg - msg.min(axis=1, keepdims=True)

    for _ in range(iterations):
        lab = np.zeros((h, w), dtype=np.int64)
        for hs, ws in diags:                                    # forward pass
            th = theta(hs, ws)
            g = gamma[hs, ws]
            # labelling: neighbours before this node are fixed, those after send messages
            cost = unary[hs, ws] + m_l[hs + 1, ws + 2] + m_u[hs + 2, ws + 1]
            for dh, dw in ((0, -1), (-1, 0)):
                ok = (hs + dh >= 0) & (ws + dw >= 0)
                if ok.any():
                    a, b = hs[ok], ws[ok]
                    nb = vec[a + dh, b + dw, lab[a + dh, b + dw]]
                    cost[ok] += lam * _dist(nb[:, None, :], vec[a, b], symmetric)
            lab[hs, ws] = cost.argmin(axis=1)
            ok = ws < w - 1
            if ok.any():
                a, b = hs[ok], ws[ok]
                m_r[a + 1, b + 1] = send(th[ok], g[ok], m_l[a + 1, b + 2], (a, b), (a, b + 1))
            ok = hs < h - 1
            if ok.any():
                a, b = hs[ok], ws[ok]
                m_d[a + 1, b + 1] = send(th[ok], g[ok], m_u[a + 2, b + 1], (a, b), (a + 1, b))
        for hs, ws in reversed(diags):                          # backward pass
            th = theta(hs, ws)
            g = gamma[hs, ws]
            ok = ws > 0
            if ok.any():
                a, b = hs[ok], ws[ok]
                m_l[a + 1, b + 1] = send(th[ok], g[ok], m_r[a + 1, b], (a, b), (a, b - 1))
            ok = hs > 0
            if ok.any():
                a, b = hs[ok], ws[ok]
                m_u[a + 1, b + 1] = send(th[ok], g[ok], m_d[a, b + 1], (a, b), (a - 1, b))
        e = energy(lab)
        history.append(e)
        if e < best_e:
            best, best_e = lab, e
    return best, history


def _icm(unary: np.ndarray, vec: np.ndarray, lam: float, symmetric: bool, lab: np.ndarray,
         sweeps: int = 20) -> np.ndarray:
    """Iterated conditional modes on the two colours of a checkerboard (nodes of one colour are
    never neighbours, so each half-sweep is exact coordinate descent and never raises E)."""
    h, w, _ = unary.shape
    lab = lab.copy()
    ii, jj = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    for _ in range(sweeps):
        changed = False
        for colour in (0, 1):
            mask = (ii + jj) % 2 == colour
            hs, ws = ii[mask], jj[mask]
            cost = unary[hs, ws].copy()
            for dh, dw in ((0, -1), (0, 1), (-1, 0), (1, 0)):
                ok = (hs + dh >= 0) & (hs + dh < h) & (ws + dw >= 0) & (ws + dw < w)
                a, b = hs[ok], ws[ok]
                nb = vec[a + dh, b + dw, lab[a + dh, b + dw]]
                cost[ok] += lam * _dist(nb[:, None, :], vec[a, b], symmetric)
            cur = lab[hs, ws]
            new = cost.argmin(axis=1)
            better = cost[np.arange(len(hs)), new] < cost[np.arange(len(hs)), cur] - 1e-12
            if better.any():
                lab[hs[better], ws[better]] = new[better]
                changed = True
        if not changed:
            break
    return lab


def _smallest(values: np.ndarray, k: int) -> np.ndarray:
    """``np.argsort(values, axis=2, kind="stable")[:, :, :k]`` (the ``k`` smallest of each
    node, ties by index) without sorting all labels: a partial selection, a sort of the ``k``
    chosen by (value, index), and the full stable sort only at nodes where a tie at the
    ``k``-th value straddles the cut (the selection may then have kept a later index)."""
    if k >= values.shape[2]:
        return np.argsort(values, axis=2, kind="stable")
    part = np.argpartition(values, k - 1, axis=2)[:, :, :k]
    vals = np.take_along_axis(values, part, axis=2)
    part = np.take_along_axis(part, np.lexsort((part, vals), axis=2), axis=2)
    kth = vals.max(axis=2, keepdims=True)
    straddle = np.nonzero((values == kth).sum(axis=2) > (vals == kth).sum(axis=2))
    if straddle[0].size:
        part[straddle] = np.argsort(values[straddle], axis=1, kind="stable")[:, :k]
    return part


def solve_mrf(unary: np.ndarray, vectors: np.ndarray, smoothness: float, *,
              candidates: int = 12, iterations: int = 6, symmetric: bool = True
              ) -> tuple[np.ndarray, dict[str, Any]]:
    """Minimise the eq. 12 energy (:func:`mrf_energy`) over label fields.

    Each node keeps its ``candidates`` lowest-unary labels (all when ``candidates >= L``); TRW-S
    (:func:`_trws`, ``iterations`` forward + backward passes) runs on them, the lowest-energy
    labelling seen is kept (the first is the per-node arg-min of ``unary``, i.e. the unsmoothed
    arg-max-confidence field) and ICM polishes it. The returned energy is therefore never above
    the unsmoothed field's.

    Args:
        unary: float ``(H, W, L)`` (eq. 12: minus the confidence of eq. 11).
        vectors: ``(L, 2)`` motion vector ``(u, v)`` of each label.
        smoothness: ``lambda >= 0``.
        candidates: labels kept per node (>= 1); iterations: TRW-S iterations (>= 0).
        symmetric: sign-invariant squared distance (see the module docstring).

    Returns:
        ``(labels, info)``: int64 ``(H, W)`` in ``[0, L)``; ``info`` has ``"energy"`` (final),
        ``"energy_argmax"`` (the unsmoothed field's) and ``"history"`` (per TRW-S iteration).
    """
    unary, vectors, lam = _check_mrf_args(unary, vectors, smoothness)
    for name, value, lo in (("candidates", candidates, 1), ("iterations", iterations, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
            raise ConfigError(f"{name}={value!r}: expected an integer >= {lo}")
    k = min(int(candidates), unary.shape[2])
    order = _smallest(unary, k)                                    # column 0 = arg-min
    cu = np.take_along_axis(unary, order, axis=2)
    cv = vectors[order]                                            # (H, W, K, 2)
    lab, history = _trws(cu, cv, lam, symmetric, int(iterations))
    lab = _icm(cu, cv, lam, symmetric, lab)
    labels = np.take_along_axis(order, lab[..., None], axis=2)[..., 0]
    info = {"energy": mrf_energy(labels, unary, vectors, lam, symmetric=symmetric),
            "energy_argmax": mrf_energy(order[..., 0], unary, vectors, lam, symmetric=symmetric),
            "history": history}
    return labels, info


# --------------------------------------------------------------------------------------------
# the estimator
# --------------------------------------------------------------------------------------------

def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"sun2015 option {name}: expected an integer >= 1, got {value!r}")
    return int(value)


def _positive_float(value: object, name: str, *, zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0 or (value == 0 and not zero):
        raise ConfigError(f"sun2015 option {name}: expected a finite number "
                          f"{'>=' if zero else '>'} 0, got {value!r}")
    return float(value)


class Sun2015Estimator:
    """Non-uniform motion-blur estimation and removal after Sun et al. 2015 (``kind =
    "nonuniform"``); see the module docstring for the pipeline.

    Args:
        network: a :class:`Sun2015Net` (trained); ``None`` builds an untrained one of ``size``
            (seeded: the same untrained weights every time; use :meth:`from_pretrained`).
        size: "cpu" or "paper" when ``network`` is None.
        stride: pixels between patch centres, 4 (default) or 8 (the network is evaluated
            densely through its two 2x poolings; the paper: every pixel).
        mrf_step: pixels between MRF nodes (default 4; 1 = every pixel).
        sigma: width of eq. 11's Gaussian in pixels.
        smoothness: ``lambda`` of eq. 12 (confidences are in [0, 1], vectors in pixels; 5e-3
            chosen on held-out synthetic fields: lower values leave the CNN's noise in the field,
            higher ones make it nearly constant).
        candidates, iterations, symmetric: as :func:`solve_mrf`.
        rotations: use the rotation trick (361 labels) or only the CNN's 73 classes.
        deconv_weight, deconv_iterations: :func:`deblurkit.deconv.deconv_motion_field` options
            (default weight: the package's ``L2_GRADIENT_WEIGHT``; on held-out synthetic images a
            stronger prior than the best one for the true field is safer with an estimated one).
        batch: patches per CNN forward pass.
        device: where the CNN runs.
    """

    kind = "nonuniform"

    def __init__(self, network: Sun2015Net | None = None, *, size: str = "cpu", stride: int = 4,
                 mrf_step: int = 4, sigma: float = 8.0, smoothness: float = 5e-3,
                 candidates: int = 12, iterations: int = 4, symmetric: bool = True,
                 rotations: bool = True, deconv_weight: float = L2_GRADIENT_WEIGHT,
                 deconv_iterations: int = 20, batch: int = 2048, device: str = "cpu") -> None:
        if network is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                network = create_network(size)
        if not isinstance(network, Sun2015Net):
            raise ConfigError(f"network: expected a Sun2015Net, got {type(network).__name__}")
        self.network = network.eval().to(device)
        self.device = device
        if stride not in (4, 8) or isinstance(stride, bool):
            raise ConfigError(f"sun2015 option stride: expected 4 or 8 (the network's two 2x "
                              f"poolings, F5 at stride 1 or 2), got {stride!r}")
        self.stride = int(stride)
        self.mrf_step = _positive_int(mrf_step, "mrf_step")
        self.sigma = _positive_float(sigma, "sigma")
        self.smoothness = _positive_float(smoothness, "smoothness", zero=True)
        self.candidates = _positive_int(candidates, "candidates")
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
            raise ConfigError(f"sun2015 option iterations: expected an integer >= 0, "
                              f"got {iterations!r}")
        self.iterations = iterations
        self.symmetric = bool(symmetric)
        self.rotations = bool(rotations)
        self.deconv_weight = _positive_float(deconv_weight, "deconv_weight")
        self.deconv_iterations = _positive_int(deconv_iterations, "deconv_iterations")
        self.batch = _positive_int(batch, "batch")
        self.last_info: dict[str, Any] = {}

    # ---- construction from weights ---------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | os.PathLike, *, sha256: str | None = None,
                  **options: Any) -> "Sun2015Estimator":
        """Load a network saved by :func:`deblurkit.models.weights.save_weights` whose metadata
        holds ``{"model": "sun2015", "options": {...}}``; ``options`` go to the estimator."""
        from ..models.weights import load_weights, read_metadata

        meta = read_metadata(path)
        if meta.get("model", "sun2015") != "sun2015":
            raise WeightsError(f"weights {path}: are for model {meta.get('model')!r}, not sun2015")
        net = Sun2015Net(**(meta.get("options") or {}))
        load_weights(net, path, sha256=sha256)
        return cls(net, **options)

    @classmethod
    def from_pretrained(cls, name: str = "sun2015", **options: Any) -> "Sun2015Estimator":
        """The shipped weights ``name`` of ``deblurkit/weights/registry.json`` (sha256 checked)."""
        from .. import paths
        from ..models.registry import weights_registry

        reg = weights_registry()
        if name not in reg:
            raise WeightsError(f"weights {name!r}: not in the weights registry "
                               f"({paths.weights_dir() / 'registry.json'}); train them with "
                               "`python -m deblurkit.estimation.train_nonuniform sun2015`")
        entry = reg[name]
        if entry.get("model") != "sun2015":
            raise WeightsError(f"weights {name!r}: are for model {entry.get('model')!r}, "
                               "not sun2015")
        net = Sun2015Net(**(entry.get("options") or {}))
        from ..models.weights import load_weights

        load_weights(net, paths.weights_dir() / entry["file"], sha256=entry["sha256"])
        return cls(net, **options)

    # ---- the pipeline ---------------------------------------------------------------------
    @torch.no_grad()
    def patch_probabilities(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CNN distributions of the 30x30 patches centred every ``stride`` px.

        For each rotation ``theta`` of :data:`ROTATIONS` the image is rotated by ``-theta`` onto
        a canvas (:func:`rotated_canvas`), normalised (:func:`local_normalise`) and classified
        densely (:meth:`Sun2015Net.forward`); the class maps are read back at the rotated
        positions of the patch centres (bilinear between the 4 nearest patches; exact for
        ``theta = 0``) and combined by :func:`extend_probabilities`.

        Returns ``(probs, cy, cx)``: float64 ``(Gy, Gx, L)`` with ``L = 361`` (rotation trick)
        or 73, and the 1-D patch-centre positions ``0, stride, 2 stride, ...``."""
        g = grey(image)
        h, w = g.shape
        cy = np.arange(0, h, self.stride)
        cx = np.arange(0, w, self.stride)
        angles = [-t for t in ROTATIONS] if self.rotations else [0]
        margin = PATCH_SIZE // 2 + self.stride
        img = torch.from_numpy(g)[None, None]
        yy, xx = np.meshgrid(cy.astype(np.float64), cx.astype(np.float64), indexing="ij")
        probs = None
        for k, angle in enumerate(angles):
            canvas, (px, py) = rotated_canvas(img, angle, margin, xx, yy)
            logits = self.network(local_normalise(canvas).to(self.device),
                                  f5_stride=self.stride // 4)
            prob = torch.softmax(logits.double(), dim=1).cpu()
            # output (i, j) is the patch centred on canvas (stride j + 15, stride i + 15)
            fx = (px - PATCH_SIZE // 2) / self.stride
            fy = (py - PATCH_SIZE // 2) / self.stride
            if probs is None:
                probs = np.empty((len(cy), len(cx), len(angles), prob.shape[1]), np.float64)
            _read_map(prob, fx, fy, out=probs[:, :, k])           # (Gy, Gx, 73)
        if self.rotations:
            return extend_probabilities(probs), cy, cx
        return probs[:, :, 0], cy, cx

    def label_set(self) -> tuple[tuple[int, int], ...]:
        """The kernels the labels index: :data:`EXTENDED_KERNELS` or :data:`BASE_KERNELS`."""
        return EXTENDED_KERNELS if self.rotations else BASE_KERNELS

    def estimate_labels(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Kernel labels on the MRF lattice: ``(labels (Qy, Qx) int64, qy, qx)``."""
        probs, cy, cx = self.patch_probabilities(image)
        h, w = image.shape[:2]
        qy, qx = lattice(h, self.mrf_step), lattice(w, self.mrf_step)
        conf = gaussian_confidence(probs, cy, cx, qy, qx, sigma=self.sigma)
        labels, info = solve_mrf(-conf, kernel_motion(self.label_set()), self.smoothness,
                                 candidates=self.candidates, iterations=self.iterations,
                                 symmetric=self.symmetric)
        self.last_info = info
        return labels, qy, qx

    def estimate_motion_field(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``image`` ``H x W x C`` / ``H x W`` float32 in [0, 1] -> ``(u, v)``, float32 ``(H, W)``
        each, pixels (``u`` right, ``v`` down); each pixel takes its nearest MRF node's label."""
        g = grey(image)
        labels, qy, qx = self.estimate_labels(g)
        h, w = g.shape
        iy = np.clip(np.rint((np.arange(h) - qy[0]) / self.mrf_step), 0, len(qy) - 1).astype(int)
        ix = np.clip(np.rint((np.arange(w) - qx[0]) / self.mrf_step), 0, len(qx) - 1).astype(int)
        u, v = label_to_motion(labels[np.ix_(iy, ix)], self.label_set())
        return u, v

    def deblur(self, image: np.ndarray) -> np.ndarray:
        """Estimate the field, then deconvolve every channel with it; same shape as ``image``,
        float32 clipped to [0, 1] (the documented last step)."""
        grey(image)  # validates
        u, v = self.estimate_motion_field(image)
        return _deconvolve(image, u, v, self.deconv_weight, self.deconv_iterations)


def _check_options(cls: type, options: dict[str, Any]) -> None:
    """Refuse estimator options that ``cls.__init__`` does not take (one line naming them)."""
    import inspect

    valid = [n for n, p in inspect.signature(cls.__init__).parameters.items()
             if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(f"{cls.__name__} options: unknown {', '.join(unknown)}; "
                          f"valid: {', '.join(valid)}")


def load(weights: str | os.PathLike | None = "shipped", **options: Any) -> Sun2015Estimator:
    """Registry factory (``deblurkit.estimation.create_estimator("sun2015", ...)``).

    ``weights``: ``"shipped"`` (the ``sun2015`` entry of ``deblurkit/weights/registry.json``,
    sha256 checked; :class:`WeightsError` when not shipped), a safetensors path written by
    :mod:`deblurkit.estimation.train_nonuniform`, or ``None`` for an untrained network.
    ``options``: keyword options of :class:`Sun2015Estimator` (unknown ones raise ConfigError).
    """
    _check_options(Sun2015Estimator, options)
    if weights is None:
        return Sun2015Estimator(**options)
    if "size" in options:
        raise ConfigError(f"size={options['size']!r}: only for weights=None (trained weights "
                          "carry their own network options)")
    if isinstance(weights, str) and weights == "shipped":
        return Sun2015Estimator.from_pretrained("sun2015", **options)
    return Sun2015Estimator.from_file(weights, **options)


def _deconvolve(image: np.ndarray, u: np.ndarray, v: np.ndarray, weight: float,
                iterations: int) -> np.ndarray:
    """Non-uniform deconvolution of an ``H x W [x C]`` image with the field ``(u, v)``, clipped."""
    from ..deconv import deconv_motion_field

    arr = image if image.ndim == 3 else image[:, :, None]
    x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).permute(2, 0, 1)[None]
    out = deconv_motion_field(x, torch.from_numpy(u)[None], torch.from_numpy(v)[None],
                              weight=weight, iterations=iterations)
    res = out[0].permute(1, 2, 0).numpy()
    res = res if image.ndim == 3 else res[:, :, 0]
    return np.clip(res, 0.0, 1.0).astype(np.float32)
