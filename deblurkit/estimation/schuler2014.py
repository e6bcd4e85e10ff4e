"""Schuler et al., "Learning to Deblur" (TPAMI 2016, arXiv 1406.7444): a learned multi-scale,
multi-stage blind deconvolution network (survey §II-A, eq. 2, 3, 4; Sahu, Lenka, Sa, arXiv
1907.10128).

Blur model ``y = k * x + n`` (survey eq. 1; ``y`` blurred, ``x`` latent sharp image). Each *stage*
refines a kernel and a latent estimate from the blurred image ``y`` and the current latent
estimate ``x``:

1. **Feature extraction** (survey eq. 2): a small CNN ``conv -> tanh [-> conv -> tanh]`` sees both
   ``y`` and ``x``; a linear recombination (1x1 conv) of its ``tanh`` maps gives ``N`` feature
   images ``x_i`` (the latent image's, "sharp" features) and ``N`` feature images ``y_i`` (the
   blurred image's), trained so that ``y_i ~ k * x_i``.
2. **Kernel estimation** (survey eq. 3): the regularised least-squares kernel
   ``argmin_k sum_i ||k * x_i - y_i||^2 + beta_k ||k||^2``, in closed form in the Fourier domain
   (circular convolution)::

       k = F^-1( sum_i conj(F(x_i)) F(y_i) / (sum_i |F(x_i)|^2 + beta_k) )

   cropped to the kernel's support (:func:`kernel_estimate`), then made non-negative and
   normalised to sum 1 (:func:`project_kernel`; the paper crops the kernel to its size; the
   projection is deblurkit's, so that every stage hands a true blur kernel on).
3. **Image estimation** (survey eq. 4): Wiener / Tikhonov deconvolution of the *blurred image* by
   the current kernel, ``x = F^-1( conj(F(k)) F(y) / (|F(k)|^2 + beta_x) )``, with a learned
   ``beta_x`` per stage (:func:`image_estimate`, which runs :func:`deblurkit.deconv.wiener` with
   its edge-tapered boundary, differentiable in image, kernel and weight).

Later stages take the blurred image with the previous stage's latent estimate. Coarse to fine
(multi-scale): the blurred image is downsampled by 2 per scale (kernel sizes ``31, 15, 7`` for a
31-px kernel); the coarsest scale starts from the blurred image itself as its latent estimate,
every finer scale from the Wiener deconvolution by the kernel of the scale below, upsampled
(:func:`resample_kernels`). The stages' weights are shared by all scales (deblurkit's choice: the
features are local and the same at every scale; the paper trains one network per setting).

Feature images are computed on the whole (grey) image; before the Fourier solve of eq. 3 they are
multiplied by a raised-cosine taper of one kernel width at the borders and zero-padded by one kernel
width (:func:`taper_window`), so that the circular correlation of eq. 3 sees no wrap-around seam.
``beta_k`` is learned relative to the features' mean power (``beta_k = exp(log_beta_k) *
mean_w sum_i |F(x_i)|^2``), so it does not depend on the features' scale.

The estimator (:class:`Schuler2014Estimator`) runs the network on the grey (luma,
:func:`deblurkit.estimation._common.to_grey`) image, or its central ``max_side`` crop (the kernel
of a uniform blur is the same everywhere), moves the kernel's centroid to its centre
(:func:`~deblurkit.estimation._common.center_kernel`: a blind kernel is known up to a
translation) and deblurs each channel with it by :func:`deblurkit.deconv.hyper_laplacian`
(Krishnan & Fergus 2009). Training: :mod:`deblurkit.estimation.train_estimators`.
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..blur.kernels import validate_kernel
from ..errors import ConfigError, ImageError, KernelError, WeightsError
from ._common import center_kernel, check_image, to_grey

__all__ = [
    "MODEL_NAME", "DEFAULT_OPTIONS", "SIZES",
    "MIN_SIDE", "centre_crop", "delta_kernel", "pad_kernel", "resample_kernels",
    "project_kernel", "kernel_estimate", "image_estimate", "taper_window", "scale_kernel_sizes",
    "deconvolve_image", "FeatureExtractor", "SchulerStage", "Schuler2014Net",
    "Schuler2014Estimator", "load_estimator_weights",
]

MODEL_NAME = "schuler2014"

#: Network options (:class:`Schuler2014Net`) and their defaults: the CPU-sized network.
DEFAULT_OPTIONS: dict[str, Any] = {
    "stages": 3, "features": 8, "filters": 16, "filter_size": 5, "hidden_layers": 1,
    "min_kernel_size": 7,
}
#: Named presets: ``tiny`` for tests, ``small`` (the default) for CPU training, ``paper`` a
#: larger network for a GPU (more and larger filters; it does not copy the paper's exact layer
#: sizes, which differ between its experiments).
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"stages": 1, "features": 2, "filters": 4, "filter_size": 3, "hidden_layers": 0},
    "small": {},
    "paper": {"stages": 3, "features": 16, "filters": 32, "filter_size": 9, "hidden_layers": 1},
}

#: Smallest image side an estimator accepts.
MIN_SIDE = 16


# --------------------------------------------------------------------------------------------
# image and kernel helpers (input checks and luma: :mod:`deblurkit.estimation._common`)
# --------------------------------------------------------------------------------------------

def centre_crop(grey: np.ndarray, max_side: int | None) -> np.ndarray:
    """The central ``min(H, max_side) x min(W, max_side)`` region of ``grey`` (``None``: all)."""
    if max_side is None:
        return grey
    h, w = grey.shape[:2]
    ch, cw = min(h, max_side), min(w, max_side)
    top, left = (h - ch) // 2, (w - cw) // 2
    return grey[top:top + ch, left:left + cw]


def delta_kernel(size: int, dtype=np.float32) -> np.ndarray:
    """The identity kernel: ``(size, size)`` zeros with 1 at the centre ``(size // 2, size // 2)``."""
    k = np.zeros((size, size), dtype=dtype)
    k[size // 2, size // 2] = 1
    return k


def pad_kernel(kernel: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad a ``(kh, kw)`` kernel to ``(size, size)`` keeping its centre ``(kh//2, kw//2)`` at
    ``(size//2, size//2)`` (so the blur it describes is unchanged). ``kh, kw <= size``, else
    :class:`KernelError`. Returns float32."""
    kh, kw = kernel.shape
    c = size // 2
    top, left = c - kh // 2, c - kw // 2
    if top < 0 or left < 0 or top + kh > size or left + kw > size:
        raise KernelError(f"kernel: {kh}x{kw} does not fit in {size}x{size} with its centre kept")
    out = np.zeros((size, size), dtype=np.float32)
    out[top:top + kh, left:left + kw] = kernel
    return out


def scale_kernel_sizes(kernel_size: int, min_kernel_size: int, height: int, width: int) -> list[int]:
    """Kernel sizes of the coarse-to-fine pyramid, finest first: ``2 * ((kernel_size // 2) >> s)
    + 1`` for scale ``s`` (image downsampled by ``2**s``), as long as the size is at least
    ``min_kernel_size`` and the downsampled image is at least twice the kernel."""
    sizes = [kernel_size]
    s = 1
    while True:
        ks = 2 * ((kernel_size // 2) >> s) + 1
        h, w = height >> s, width >> s
        if ks < min_kernel_size or min(h, w) < 2 * ks:
            break
        sizes.append(ks)
        s += 1
    return sizes


def resample_kernels(kernel: torch.Tensor, size: int, factor: float) -> torch.Tensor:
    """Resample kernels ``(B, kh, kw)`` to ``(B, size, size)`` with pixel spacing ``factor``
    (output pixel ``u`` samples the input at ``centre_in + factor * (u - centre_out)``; 2 halves the
    kernel's extent, for the next coarser scale, 0.5 doubles it), bilinear, keeping the centres
    aligned, then clamped to >= 0 and normalised to sum 1. Downsampling first smooths with
    ``[1, 2, 1] / 4`` (anti-aliasing). Differentiable; a delta stays a delta."""
    b, kh, kw = kernel.shape
    k = kernel[:, None]
    if factor > 1:
        g = kernel.new_tensor([0.25, 0.5, 0.25])
        k = F.conv2d(F.pad(k, (1, 1, 1, 1)), (g[:, None] * g[None, :])[None, None])
    c_out = size // 2
    offs = (torch.arange(size, dtype=kernel.dtype, device=kernel.device) - c_out) * factor
    ys = (kh // 2 + offs) / max(kh - 1, 1) * 2 - 1
    xs = (kw // 2 + offs) / max(kw - 1, 1) * 2 - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)[None].expand(b, -1, -1, -1)
    out = F.grid_sample(k, grid, mode="bilinear", padding_mode="zeros", align_corners=True)[:, 0]
    return project_kernel(out)


def project_kernel(kernel: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Make kernels ``(B, kh, kw)`` true blur kernels: ``k = (relu(k) + eps * delta) / (sum +
    eps)``. Non-negative, summing to 1; a kernel with no positive mass becomes the identity
    (delta). Differentiable; same dtype and device."""
    kh, kw = kernel.shape[-2:]
    delta = torch.zeros_like(kernel)
    delta[..., kh // 2, kw // 2] = 1
    pos = F.relu(kernel) + eps * delta
    return pos / pos.sum(dim=(-2, -1), keepdim=True)


# --------------------------------------------------------------------------------------------
# survey eq. 3 and eq. 4
# --------------------------------------------------------------------------------------------

def kernel_estimate(x_feats: torch.Tensor, y_feats: torch.Tensor, beta: "float | torch.Tensor",
                    kernel_size: int | tuple[int, int]) -> torch.Tensor:
    """Survey eq. 3 (Schuler et al.'s kernel estimation module), circular convolution:
    ``k = F^-1( sum_i conj(F(x_i)) F(y_i) / (sum_i |F(x_i)|^2 + beta) )``, the minimiser of
    ``sum_i ||k (*) x_i - y_i||^2 + beta ||k||^2`` over kernels on the whole canvas, then cropped to
    ``kernel_size`` around its centre.

    Args:
        x_feats: ``(B, N, H, W)`` float32/float64: the latent ("sharp") feature images ``x_i``.
        y_feats: ``(B, N, H, W)``, same dtype: the blurred feature images ``y_i``, modelled as
            ``y_i = k (*) x_i`` (circular convolution, kernel centre at the origin).
        beta: regulariser ``> 0``: a float, or a tensor ``()`` / ``(B,)`` (differentiable).
        kernel_size: ``kh`` (square) or ``(kh, kw)``, at most ``(H, W)``.

    Returns:
        ``(B, kh, kw)`` kernels in true convolution orientation (centre ``(kh // 2, kw // 2)``),
        same dtype and device; raw least-squares values (may be negative, not normalised: see
        :func:`project_kernel`). Differentiable in ``x_feats``, ``y_feats`` and ``beta``.
    """
    if not isinstance(x_feats, torch.Tensor) or not isinstance(y_feats, torch.Tensor):
        raise ImageError("x_feats, y_feats: must be torch tensors (B, N, H, W)")
    if x_feats.ndim != 4 or x_feats.shape != y_feats.shape:
        raise ImageError(f"x_feats, y_feats: must both be (B, N, H, W) of one shape, got "
                         f"{tuple(x_feats.shape)} and {tuple(y_feats.shape)}")
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, numbers.Integral) else tuple(kernel_size)
    h, w = x_feats.shape[-2:]
    if not (1 <= kh <= h and 1 <= kw <= w):
        raise KernelError(f"kernel_size: {kh}x{kw} must be between 1x1 and the {h}x{w} feature size")
    if isinstance(beta, torch.Tensor):
        if beta.ndim > 1 or (beta.ndim == 1 and beta.shape[0] not in (1, x_feats.shape[0])):
            raise ConfigError(f"beta: tensor must have shape () or ({x_feats.shape[0]},), got {tuple(beta.shape)}")
        if not bool((beta.detach() > 0).all()):
            raise ConfigError(f"beta: must be > 0, got {beta.detach().flatten().tolist()}")
        beta = beta.reshape(-1, 1, 1)
    elif isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not beta > 0 or not math.isfinite(beta):
        raise ConfigError(f"beta: must be a finite number > 0, got {beta!r}")
    X = torch.fft.rfft2(x_feats)
    Y = torch.fft.rfft2(y_feats)
    num = (torch.conj(X) * Y).sum(dim=1)
    den = (X.real ** 2 + X.imag ** 2).sum(dim=1) + beta
    k_full = torch.fft.irfft2(num / den, s=(h, w))
    k_full = torch.roll(k_full, shifts=(kh // 2, kw // 2), dims=(-2, -1))
    return k_full[:, :kh, :kw]


def image_estimate(blurred: torch.Tensor, kernel: torch.Tensor, beta: "float | torch.Tensor", *,
                   boundary: str = "taper") -> torch.Tensor:
    """Survey eq. 4 (Schuler et al.'s image estimation module): Wiener / Tikhonov deconvolution
    ``x = F^-1( conj(F(k)) F(y) / (|F(k)|^2 + beta) )``.

    Runs :func:`deblurkit.deconv.wiener`: ``blurred`` ``(B, C, H, W)`` float32/float64, ``kernel``
    a true blur kernel ``(kh, kw)`` or ``(B, kh, kw)`` (non-negative, sum 1), ``beta > 0`` a float
    or a tensor ``()`` / ``(B,)``; ``boundary`` ``"circular"`` (the exact circular model),
    ``"taper"`` or ``"reflect"``. Returns ``(B, C, H, W)``, not clipped; differentiable in all three.
    """
    from ..deconv import wiener

    return wiener(blurred, kernel, weight=beta, boundary=boundary)


def taper_window(height: int, width: int, ramp: int, *, dtype=torch.float32,
                 device: "torch.device | str" = "cpu") -> torch.Tensor:
    """Separable raised-cosine window ``(H, W)``: 1 inside, falling to 0 over ``ramp`` pixels at
    each border (ramp clipped to a third of the side). Used to taper feature images before the
    circular solve of eq. 3."""
    def one(n: int) -> torch.Tensor:
        r = max(1, min(ramp, n // 3))
        t = torch.ones(n, dtype=dtype, device=device)
        edge = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(r, dtype=dtype, device=device) + 0.5) / r)
        t[:r] = edge
        t[n - r:] = edge.flip(0)
        return t
    return one(height)[:, None] * one(width)[None, :]


# --------------------------------------------------------------------------------------------
# the network
# --------------------------------------------------------------------------------------------

def _int_option(name: str, value: object, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo:
        raise ConfigError(f"schuler2014 option {name}: expected an integer >= {lo}, got {value!r}")
    return int(value)


class FeatureExtractor(nn.Module):
    """Survey eq. 2: ``(y, x) (B, 2, H, W) -> (x_feats, y_feats)``, each ``(B, N, H, W)``.

    ``conv(filter_size) -> tanh``, then ``hidden_layers`` times ``conv(filter_size) -> tanh``, then
    a linear recombination (1x1 conv, no bias) to ``2N`` maps: the first ``N`` are the latent
    features ``x_i``, the last ``N`` the blurred features ``y_i``. Convolutions pad by edge
    replication (same size out)."""

    def __init__(self, features: int, filters: int, filter_size: int, hidden_layers: int) -> None:
        super().__init__()
        pad = filter_size // 2
        layers: list[nn.Module] = [nn.Conv2d(2, filters, filter_size, padding=pad, padding_mode="replicate"),
                                   nn.Tanh()]
        for _ in range(hidden_layers):
            layers += [nn.Conv2d(filters, filters, filter_size, padding=pad, padding_mode="replicate"),
                       nn.Tanh()]
        self.body = nn.Sequential(*layers)
        self.recombine = nn.Conv2d(filters, 2 * features, 1, bias=False)
        self.features = features

    def forward(self, blurred: torch.Tensor, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.recombine(self.body(torch.cat([blurred, latent], dim=1)))
        return f[:, :self.features], f[:, self.features:]


class SchulerStage(nn.Module):
    """One stage: features (eq. 2) -> kernel (eq. 3, then :func:`project_kernel`) -> latent (eq. 4).

    Learned: the feature extractor, ``log_beta_k`` (eq. 3 regulariser relative to the features'
    mean power) and ``log_beta_x`` (eq. 4 Wiener weight)."""

    def __init__(self, features: int, filters: int, filter_size: int, hidden_layers: int) -> None:
        super().__init__()
        self.extract = FeatureExtractor(features, filters, filter_size, hidden_layers)
        self.log_beta_k = nn.Parameter(torch.tensor(math.log(1e-2)))
        self.log_beta_x = nn.Parameter(torch.tensor(math.log(1e-2)))

    def kernel(self, blurred: torch.Tensor, latent: torch.Tensor, kernel_size: int) -> torch.Tensor:
        """``(B, 1, H, W)`` blurred and latent -> projected kernel ``(B, ks, ks)``."""
        xf, yf = self.extract(blurred, latent)
        h, w = xf.shape[-2:]
        win = taper_window(h, w, kernel_size, dtype=xf.dtype, device=xf.device)
        pad = (kernel_size, kernel_size, kernel_size, kernel_size)
        xf, yf = F.pad(xf * win, pad), F.pad(yf * win, pad)
        X = torch.fft.rfft2(xf)
        power = (X.real ** 2 + X.imag ** 2).sum(dim=1).mean(dim=(-2, -1))          # (B,)
        beta = torch.exp(self.log_beta_k) * power.clamp_min(1e-12)
        return project_kernel(kernel_estimate(xf, yf, beta, kernel_size))

    def forward(self, blurred: torch.Tensor, latent: torch.Tensor,
                kernel_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        k = self.kernel(blurred, latent, kernel_size)
        x = image_estimate(blurred, k, torch.exp(self.log_beta_x))
        return k, x


class Schuler2014Net(nn.Module):
    """Multi-scale, multi-stage learned blind deconvolution (Schuler et al.; survey eq. 2-4).

    Args:
        stages: stages per scale (the paper: up to 3).
        features: feature images ``N`` per kind (``x_i`` and ``y_i``).
        filters: convolution filters per layer of the feature extractor.
        filter_size: odd size of those filters.
        hidden_layers: extra ``conv -> tanh`` layers after the first.
        min_kernel_size: the coarsest scale's kernel is at least this large (odd, >= 3).

    ``forward(blurred (B, 1, H, W), kernel_size)`` returns, coarsest scale first, one list per
    scale of ``(kernel (B, ks, ks), latent (B, 1, H_s, W_s))`` per stage; the last entry of the last
    list is the final estimate at full resolution.
    """

    def __init__(self, stages: int = 3, features: int = 8, filters: int = 16, filter_size: int = 5,
                 hidden_layers: int = 1, min_kernel_size: int = 7) -> None:
        super().__init__()
        stages = _int_option("stages", stages, 1)
        features = _int_option("features", features, 1)
        filters = _int_option("filters", filters, 1)
        filter_size = _int_option("filter_size", filter_size, 1)
        if filter_size % 2 == 0:
            raise ConfigError(f"schuler2014 option filter_size: must be odd, got {filter_size}")
        hidden_layers = _int_option("hidden_layers", hidden_layers, 0)
        min_kernel_size = _int_option("min_kernel_size", min_kernel_size, 3)
        self.options = {"stages": stages, "features": features, "filters": filters,
                        "filter_size": filter_size, "hidden_layers": hidden_layers,
                        "min_kernel_size": min_kernel_size}
        self.min_kernel_size = min_kernel_size
        self.stages = nn.ModuleList(SchulerStage(features, filters, filter_size, hidden_layers)
                                    for _ in range(stages))
        self.log_beta_init = nn.Parameter(torch.tensor(math.log(1e-2)))

    def pyramid(self, blurred: torch.Tensor, kernel_size: int) -> tuple[list[torch.Tensor], list[int]]:
        """Blurred images and kernel sizes per scale, finest first (see :func:`scale_kernel_sizes`)."""
        h, w = blurred.shape[-2:]
        sizes = scale_kernel_sizes(kernel_size, self.min_kernel_size, h, w)
        images = [blurred]
        for s in range(1, len(sizes)):
            images.append(F.interpolate(blurred, size=(h >> s, w >> s), mode="bilinear",
                                        align_corners=False, antialias=True))
        return images, sizes

    def forward(self, blurred: torch.Tensor, kernel_size: int) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
        if not isinstance(blurred, torch.Tensor) or blurred.ndim != 4 or blurred.shape[1] != 1:
            shape = tuple(blurred.shape) if isinstance(blurred, torch.Tensor) else type(blurred).__name__
            raise ImageError(f"schuler2014 input: expected a grey batch (B, 1, H, W), got {shape}")
        kernel_size = _int_option("kernel_size", kernel_size, 3)
        if kernel_size % 2 == 0:
            raise ConfigError(f"kernel_size: must be odd, got {kernel_size}")
        if min(blurred.shape[-2:]) < 2 * kernel_size:
            raise ImageError(f"schuler2014 input: {blurred.shape[-2]}x{blurred.shape[-1]} image is too small "
                             f"for a {kernel_size}-px kernel (need at least {2 * kernel_size} per side)")
        images, sizes = self.pyramid(blurred, kernel_size)
        out: list[list[tuple[torch.Tensor, torch.Tensor]]] = []
        k = None
        for y, ks in zip(reversed(images), reversed(sizes)):
            if k is None:
                x = y
            else:
                k0 = resample_kernels(k, ks, 0.5)
                x = image_estimate(y, k0, torch.exp(self.log_beta_init))
            level = []
            for stage in self.stages:
                k, x = stage(y, x, ks)
                level.append((k, x))
            out.append(level)
        return out


# --------------------------------------------------------------------------------------------
# weights and the estimator
# --------------------------------------------------------------------------------------------

def resolve_network(model_name: str, net_class, default_options: dict, *, net, weights, options,
                    seed: int):
    """The network an estimator runs: ``net`` itself (checked to be a ``net_class``), else a
    seeded untrained one built from ``default_options`` updated by ``options`` (``weights=None``),
    else ``net_class`` loaded from ``weights`` (whose file carries its own options)."""
    if net is not None:
        if not isinstance(net, net_class):
            raise ConfigError(f"net: expected a {net_class.__name__}, got {type(net).__name__}")
        return net
    if weights is None:
        torch.manual_seed(seed)
        opts = {**default_options, **(options or {})}
        unknown = sorted(set(opts) - set(default_options))
        if unknown:
            raise ConfigError(f"{model_name} options: unknown {unknown}; valid: {', '.join(default_options)}")
        return net_class(**opts)
    if options:
        raise ConfigError("options: only for weights=None (trained weights carry their own options)")
    return load_estimator_weights(model_name, net_class, weights)[0]


def load_estimator_weights(model_name: str, net_class, weights: "str | os.PathLike", *,
                           options_override: dict | None = None):
    """Build ``net_class`` and load weights into it; return ``(net, metadata)``.

    ``weights``: ``"shipped"`` (the entry ``model_name`` of ``deblurkit/weights/registry.json``,
    sha256 checked, options from the entry) or a path to a safetensors file written by
    :func:`deblurkit.models.weights.save_weights` whose metadata holds ``"options"``.
    Raises :class:`WeightsError` naming the file / entry when anything is missing or wrong.
    """
    from .. import paths
    from ..models.registry import weights_registry
    from ..models.weights import load_weights, read_metadata

    if isinstance(weights, str) and weights == "shipped":
        reg = weights_registry()
        entry = reg.get(model_name)
        if entry is None:
            raise WeightsError(
                f"weights 'shipped': no entry {model_name!r} in {paths.weights_dir() / 'registry.json'}; "
                f"train with `python -m deblurkit.estimation.train_estimators {model_name} --out runs/{model_name}` "
                "or pass weights=None for an untrained network")
        options = dict(entry.get("options", {}) or {})
        options.update(options_override or {})
        net = net_class(**options)
        meta = load_weights(net, paths.weights_dir() / entry["file"], sha256=entry["sha256"])
        return net, meta
    path = Path(weights)
    meta = read_metadata(path)
    options = meta.get("options")
    if not isinstance(options, dict):
        raise WeightsError(f"weights {path}: metadata has no 'options' object (not written by "
                           f"train_estimators?); cannot rebuild the {model_name} network")
    if meta.get("model") not in (None, model_name):
        raise WeightsError(f"weights {path}: holds model {meta.get('model')!r}, not {model_name!r}")
    options = {**options, **(options_override or {})}
    try:
        net = net_class(**options)
    except TypeError as exc:
        raise WeightsError(f"weights {path}: options {options} do not fit {net_class.__name__} ({exc})") from None
    meta = load_weights(net, path)
    return net, meta


def deconvolve_image(image: np.ndarray, kernel: np.ndarray, weight: float) -> np.ndarray:
    """Non-blind deconvolution of every channel of ``image`` (``H x W x C`` float32 in [0, 1]) by
    ``kernel`` with :func:`deblurkit.deconv.hyper_laplacian` (Krishnan & Fergus 2009), then
    clipped to [0, 1] (documented last step). Returns float32 ``H x W x C``."""
    from ..deconv import hyper_laplacian

    out = hyper_laplacian(image.astype(np.float32), kernel.astype(np.float32), weight=weight)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _check_common(kernel_size: object, max_side: object, deconv_weight: object) -> tuple[int, int | None, float]:
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, numbers.Integral) \
            or kernel_size < 3 or kernel_size % 2 == 0:
        raise ConfigError(f"kernel_size: must be an odd integer >= 3, got {kernel_size!r}")
    if max_side is not None and (isinstance(max_side, bool) or not isinstance(max_side, numbers.Integral)
                                 or max_side < 2 * kernel_size):
        raise ConfigError(f"max_side: must be None or an integer >= 2 * kernel_size = {2 * kernel_size}, "
                          f"got {max_side!r}")
    if isinstance(deconv_weight, bool) or not isinstance(deconv_weight, numbers.Real) \
            or not deconv_weight > 0 or not math.isfinite(deconv_weight):
        raise ConfigError(f"deconv_weight: must be a finite number > 0, got {deconv_weight!r}")
    return int(kernel_size), (None if max_side is None else int(max_side)), float(deconv_weight)


class Schuler2014Estimator:
    """Blind uniform-blur estimator of Schuler et al. (``kind = "uniform"``; see module docstring).

    Args:
        weights: ``"shipped"`` (default: the registry entry ``schuler2014``), a safetensors path
            written by ``train_estimators``, or ``None`` for an untrained network (seeded by
            ``seed``; its kernels are valid but poor).
        net: an existing :class:`Schuler2014Net` to use instead (e.g. during training).
        kernel_size: odd side of the estimated kernel (default 31; blur larger than this cannot
            be described).
        max_side: the kernel is estimated on the central ``max_side x max_side`` crop of the grey
            image (``None``: the whole image). Deconvolution always uses the whole image.
        deconv_weight: weight of the final hyper-Laplacian deconvolution.
        options: network options when ``weights`` is ``None`` (see :data:`DEFAULT_OPTIONS`).
        device: torch device for the network.
    """

    kind = "uniform"
    name = MODEL_NAME

    def __init__(self, weights: "str | os.PathLike | None" = "shipped", *, net: Schuler2014Net | None = None,
                 kernel_size: int = 31, max_side: int | None = 512, deconv_weight: float | None = None,
                 options: dict | None = None, device: str = "cpu", seed: int = 0) -> None:
        from ..deconv import HYPER_LAPLACIAN_WEIGHT

        self.kernel_size, self.max_side, self.deconv_weight = _check_common(
            kernel_size, max_side, HYPER_LAPLACIAN_WEIGHT if deconv_weight is None else deconv_weight)
        net = resolve_network(MODEL_NAME, Schuler2014Net, DEFAULT_OPTIONS, net=net, weights=weights,
                              options=options, seed=seed)
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()

    @torch.no_grad()
    def estimate_kernel(self, image: np.ndarray) -> np.ndarray:
        """``image`` (``H x W[x C]`` float in [0, 1]) -> kernel ``(kernel_size, kernel_size)``
        float32, non-negative, sum 1, true convolution orientation."""
        img = check_image(image, min_side=MIN_SIDE)
        grey = centre_crop(to_grey(img), self.max_side)
        if min(grey.shape) < 2 * self.kernel_size:
            raise ImageError(f"image: {grey.shape[0]}x{grey.shape[1]} is too small for a "
                             f"{self.kernel_size}-px kernel (need at least {2 * self.kernel_size} per side)")
        self.net.eval()
        device = next(self.net.parameters()).device     # follows EstimatorModule(...).to(device)
        x = torch.from_numpy(grey)[None, None].to(device)
        k = self.net(x, self.kernel_size)[-1][-1][0][0].double().cpu().numpy()
        k = np.maximum(k, 0.0)
        k = k / k.sum() if k.sum() > 0 else delta_kernel(self.kernel_size, np.float64)
        return validate_kernel(center_kernel(k), "estimated kernel")

    def deblur(self, image: np.ndarray) -> np.ndarray:
        """Estimate the kernel, then deconvolve every channel (hyper-Laplacian); same shape as
        ``image``, float32, clipped to [0, 1]."""
        img = check_image(image, min_side=MIN_SIDE)
        k = self.estimate_kernel(img)
        out = deconvolve_image(img, k, self.deconv_weight)
        return out[:, :, 0] if np.asarray(image).ndim == 2 else out
