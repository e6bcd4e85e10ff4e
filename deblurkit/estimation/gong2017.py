"""Gong, Yang, Liu, Zhang, Reid, Shen, van den Hengel, Shi, "From Motion Blur to Motion Flow: a
Deep Learning Solution for Removing Heterogeneous Motion Blur", CVPR 2017 (survey: Sahu, Lenka,
Sa, arXiv 1907.10128, §II-A, eq. 13-17).

The blur of every pixel is a linear motion ``M(p) = (u(p), v(p))`` (survey eq. 13-14, the model
of :func:`deblurkit.blur.blur_motion_field`). A fully convolutional network maps the blurred
image to the *motion flow* directly, as two per-pixel classifications (eq. 15-16)::

    U(p) in {0, 1, ..., u_max},    V(p) in {-v_max, ..., v_max}      (integer pixels)

with a softmax over each head; the loss is the sum of the per-pixel cross-entropies of both heads.
Because ``(u, v)`` and ``(-u, -v)`` give the same blur, labels are canonical (eq. 17): ``u >= 0``,
and ``v >= 0`` where ``u = 0`` (:func:`motion_to_labels`, built on
:func:`deblurkit.blur.canonical_motion_field`). The sharp image is then recovered by non-blind
non-uniform deconvolution with the predicted field
(:func:`deblurkit.deconv.deconv_motion_field`; the paper uses a patch-prior EPLL-style solver).

Network (:class:`MotionFlowFCN`): an encoder of 3x3 convolutions + ReLU with 2x2 max-pooling
between levels, a decoder of 2x2 transposed convolutions with additive skips from the encoder
(FCN-style fusion), and two 1x1-convolution heads at full resolution. Any ``H x W`` is accepted
(replicate-padded to a multiple of ``2 ** (levels - 1)`` and cropped back). The input is the grey
(luminance) image normalised to zero mean and unit standard deviation (the paper feeds RGB).

Sizes (:data:`SIZES`): ``"cpu"`` (default; widths 16-32-48-64-96, 2 convolutions per level,
batch normalisation after each convolution (ours, to make short CPU training converge),
``u_max = v_max = 24``: 439,962 parameters) and ``"paper"`` (VGG-16 widths 64-128-256-512-512, 2
convolutions per level, no normalisation, ``u_max = v_max = 36``, so 37 ``U`` and 73 ``V`` classes
as in the paper: 17,417,454 parameters; the paper's FCN is of this VGG-16-derived kind, but its
exact layer list and parameter count are not reproduced here).
"""

from __future__ import annotations

import math
import os
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..blur.nonuniform import canonical_motion_field
from ..deconv.wiener import L2_GRADIENT_WEIGHT
from ..errors import ConfigError, ImageError, KernelError, WeightsError
from .sun2015 import _check_options, _deconvolve, grey

__all__ = ["SIZES", "MotionFlowFCN", "Gong2017Estimator", "motion_to_labels",
           "labels_to_motion", "create_network", "load"]

#: Network sizes (see the module docstring).
SIZES: dict[str, dict[str, Any]] = {
    "cpu": {"widths": [16, 32, 48, 64, 96], "convs": 2, "u_max": 24, "v_max": 24, "norm": True},
    "paper": {"widths": [64, 128, 256, 512, 512], "convs": 2, "u_max": 36, "v_max": 36,
              "norm": False},
}


# --------------------------------------------------------------------------------------------
# labels (survey eq. 15-17)
# --------------------------------------------------------------------------------------------

def _check_max(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"gong2017 option {name}: expected an integer >= 1, got {value!r}")
    return int(value)


def motion_to_labels(u: np.ndarray | torch.Tensor, v: np.ndarray | torch.Tensor, u_max: int,
                     v_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Class labels of a motion field (survey eq. 15-17).

    ``(u, v)`` (pixels, any equal shapes) are rounded to integers, then made canonical
    (:func:`deblurkit.blur.canonical_motion_field`: ``u >= 0``, and ``v >= 0`` where ``u = 0``),
    so ``(u, v)`` and ``(-u, -v)`` get the same labels.

    Returns:
        ``(iu, iv)`` int64 arrays of the input's shape: ``iu = u`` in ``[0, u_max]`` and
        ``iv = v + v_max`` in ``[0, 2 v_max]``.

    Raises:
        KernelError: naming ``u`` or ``v`` when a rounded component is out of range or the field
            is not finite.
    """
    u_max, v_max = _check_max(u_max, "u_max"), _check_max(v_max, "v_max")
    un = u.detach().cpu().numpy() if isinstance(u, torch.Tensor) else np.asarray(u)
    vn = v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
    if un.shape != vn.shape:
        raise KernelError(f"v: shape {vn.shape} differs from u {un.shape}")
    if not (np.isfinite(un).all() and np.isfinite(vn).all()):
        raise KernelError("u, v: the motion field has non-finite values")
    ur, vr = canonical_motion_field(np.rint(un).astype(np.int64), np.rint(vn).astype(np.int64))
    if ur.size and ur.max() > u_max:
        raise KernelError(f"u: motion of {ur.max()} px exceeds u_max={u_max}")
    if vr.size and np.abs(vr).max() > v_max:
        raise KernelError(f"v: motion of {np.abs(vr).max()} px exceeds v_max={v_max}")
    return ur.astype(np.int64), (vr + v_max).astype(np.int64)


def labels_to_motion(iu: np.ndarray, iv: np.ndarray, v_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`motion_to_labels`: ``(u, v) = (iu, iv - v_max)`` as float32 arrays."""
    v_max = _check_max(v_max, "v_max")
    iu = np.asarray(iu)
    iv = np.asarray(iv)
    return iu.astype(np.float32), (iv - v_max).astype(np.float32)


# --------------------------------------------------------------------------------------------
# the network
# --------------------------------------------------------------------------------------------

def _block(cin: int, cout: int, convs: int, norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(convs):
        layers.append(nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=not norm))
        if norm:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class MotionFlowFCN(nn.Module):
    """Fully convolutional motion-flow network: ``(B, 1, H, W)`` grey images in [0, 1] (any
    ``H, W >= 1``) -> ``(logits_u (B, u_max + 1, H, W), logits_v (B, 2 v_max + 1, H, W))``.

    Args:
        widths: channels per level (full resolution first); ``len(widths) - 1`` 2x poolings.
        convs: 3x3 convolutions per level (encoder) and after each skip (decoder).
        u_max, v_max: the label ranges of eq. 15-16.
        norm: batch normalisation after each convolution (deblurkit's, for short CPU training;
            not in the paper).
    """

    def __init__(self, widths: Sequence[int] = (16, 32, 48, 64, 96), convs: int = 2,
                 u_max: int = 24, v_max: int = 24, norm: bool = False) -> None:
        super().__init__()
        if isinstance(widths, (str, int)) or not isinstance(widths, Sequence) or len(widths) < 1 \
                or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in widths):
            raise ConfigError(f"gong2017 option widths: expected a list of channel counts >= 1, "
                              f"got {widths!r}")
        if isinstance(convs, bool) or not isinstance(convs, int) or convs < 1:
            raise ConfigError(f"gong2017 option convs: expected an integer >= 1, got {convs!r}")
        if not isinstance(norm, bool):
            raise ConfigError(f"gong2017 option norm: expected true or false, got {norm!r}")
        self.u_max, self.v_max = _check_max(u_max, "u_max"), _check_max(v_max, "v_max")
        widths = list(widths)
        self.multiple = 2 ** (len(widths) - 1)
        self.encoders = nn.ModuleList()
        cin = 1
        for c in widths:
            self.encoders.append(_block(cin, c, convs, norm))
            cin = c
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for c in reversed(widths[:-1]):
            self.ups.append(nn.ConvTranspose2d(cin, c, 2, stride=2))
            self.decoders.append(_block(c, c, convs, norm))
            cin = c
        self.head_u = nn.Conv2d(cin, self.u_max + 1, 1)
        self.head_v = nn.Conv2d(cin, 2 * self.v_max + 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 1, H, W)`` -> per-pixel logits of the ``U`` and ``V`` heads (softmax over dim 1
        gives the distributions of eq. 15-16)."""
        if x.dim() != 4 or x.shape[1] != 1:
            raise ImageError(f"MotionFlowFCN input: expected (B, 1, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        mu = x.mean(dim=(2, 3), keepdim=True)
        sd = (x - mu).pow(2).mean(dim=(2, 3), keepdim=True).sqrt()
        x = (x - mu) / (sd + 0.02)
        ph = (-h) % self.multiple
        pw = (-w) % self.multiple
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        skips = []
        for i, enc in enumerate(self.encoders):
            if i:
                x = F.max_pool2d(x, 2)
            x = enc(x)
            skips.append(x)
        for up, dec, skip in zip(self.ups, self.decoders, reversed(skips[:-1])):
            x = dec(up(x) + skip)
        return self.head_u(x)[:, :, :h, :w], self.head_v(x)[:, :, :h, :w]


def create_network(size: str = "cpu", **options: Any) -> MotionFlowFCN:
    """A :class:`MotionFlowFCN` of a named size (:data:`SIZES`), single options overriding it."""
    if size not in SIZES:
        raise ConfigError(f"gong2017 size={size!r}: choose one of {', '.join(SIZES)}")
    return MotionFlowFCN(**{**SIZES[size], **options})


# --------------------------------------------------------------------------------------------
# the estimator
# --------------------------------------------------------------------------------------------

class Gong2017Estimator:
    """Motion-flow estimation and non-uniform deblurring after Gong et al. 2017
    (``kind = "nonuniform"``).

    Args:
        network: a trained :class:`MotionFlowFCN`; ``None`` builds an untrained (seeded) one of
            ``size`` (use :meth:`from_pretrained` for the shipped weights).
        size: "cpu" or "paper" when ``network`` is None.
        deconv_weight, deconv_iterations: :func:`deblurkit.deconv.deconv_motion_field` options
            (default weight: the package's ``L2_GRADIENT_WEIGHT``; on held-out synthetic images a
            stronger prior than the best one for the true field is safer with an estimated one).
        device: where the network runs.
    """

    kind = "nonuniform"

    def __init__(self, network: MotionFlowFCN | None = None, *, size: str = "cpu",
                 deconv_weight: float = L2_GRADIENT_WEIGHT, deconv_iterations: int = 20,
                 device: str = "cpu") -> None:
        if network is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                network = create_network(size)
        if not isinstance(network, MotionFlowFCN):
            raise ConfigError(f"network: expected a MotionFlowFCN, got {type(network).__name__}")
        self.network = network.eval().to(device)
        self.device = device
        if isinstance(deconv_weight, bool) or not isinstance(deconv_weight, (int, float)) or \
                not math.isfinite(deconv_weight) or deconv_weight <= 0:
            raise ConfigError(f"gong2017 option deconv_weight: expected a finite number > 0, "
                              f"got {deconv_weight!r}")
        if isinstance(deconv_iterations, bool) or not isinstance(deconv_iterations, int) or \
                deconv_iterations < 1:
            raise ConfigError(f"gong2017 option deconv_iterations: expected an integer >= 1, "
                              f"got {deconv_iterations!r}")
        self.deconv_weight = float(deconv_weight)
        self.deconv_iterations = deconv_iterations

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, sha256: str | None = None,
                  **options: Any) -> "Gong2017Estimator":
        """Load a network saved by :func:`deblurkit.models.weights.save_weights` whose metadata
        holds ``{"model": "gong2017", "options": {...}}``; ``options`` go to the estimator."""
        from ..models.weights import load_weights, read_metadata

        meta = read_metadata(path)
        if meta.get("model", "gong2017") != "gong2017":
            raise WeightsError(f"weights {path}: are for model {meta.get('model')!r}, not gong2017")
        net = MotionFlowFCN(**(meta.get("options") or {}))
        load_weights(net, path, sha256=sha256)
        return cls(net, **options)

    @classmethod
    def from_pretrained(cls, name: str = "gong2017", **options: Any) -> "Gong2017Estimator":
        """The shipped weights ``name`` of ``deblurkit/weights/registry.json`` (sha256 checked)."""
        from .. import paths
        from ..models.registry import weights_registry
        from ..models.weights import load_weights

        reg = weights_registry()
        if name not in reg:
            raise WeightsError(f"weights {name!r}: not in the weights registry "
                               f"({paths.weights_dir() / 'registry.json'}); train them with "
                               "`python -m deblurkit.estimation.train_nonuniform gong2017`")
        entry = reg[name]
        if entry.get("model") != "gong2017":
            raise WeightsError(f"weights {name!r}: are for model {entry.get('model')!r}, "
                               "not gong2017")
        net = MotionFlowFCN(**(entry.get("options") or {}))
        load_weights(net, paths.weights_dir() / entry["file"], sha256=entry["sha256"])
        return cls(net, **options)

    @torch.no_grad()
    def probabilities(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-pixel distributions of the two heads: float32 ``(u_max + 1, H, W)`` and
        ``(2 v_max + 1, H, W)``, each summing to 1 over axis 0."""
        g = torch.from_numpy(grey(image))[None, None].to(self.device)
        lu, lv = self.network(g)
        return (torch.softmax(lu[0], 0).cpu().numpy(), torch.softmax(lv[0], 0).cpu().numpy())

    def estimate_motion_field(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``image`` ``H x W x C`` / ``H x W`` float32 in [0, 1] -> canonical ``(u, v)``, float32
        ``(H, W)`` each, in pixels: the arg-max label of each head (paper §3.3)."""
        pu, pv = self.probabilities(image)
        return labels_to_motion(pu.argmax(0), pv.argmax(0), self.network.v_max)

    def deblur(self, image: np.ndarray) -> np.ndarray:
        """Estimate the field, then deconvolve every channel with it; same shape as ``image``,
        float32 clipped to [0, 1] (the documented last step)."""
        u, v = self.estimate_motion_field(image)
        return _deconvolve(image, u, v, self.deconv_weight, self.deconv_iterations)


def load(weights: str | os.PathLike | None = "shipped", **options: Any) -> Gong2017Estimator:
    """Registry factory (``deblurkit.estimation.create_estimator("gong2017", ...)``).

    ``weights``: ``"shipped"`` (the ``gong2017`` entry of ``deblurkit/weights/registry.json``,
    sha256 checked; :class:`WeightsError` when not shipped), a safetensors path written by
    :mod:`deblurkit.estimation.train_nonuniform`, or ``None`` for an untrained network.
    ``options``: keyword options of :class:`Gong2017Estimator` (unknown ones raise ConfigError).
    """
    _check_options(Gong2017Estimator, options)
    if weights is None:
        return Gong2017Estimator(**options)
    if "size" in options:
        raise ConfigError(f"size={options['size']!r}: only for weights=None (trained weights "
                          "carry their own network options)")
    if isinstance(weights, str) and weights == "shipped":
        return Gong2017Estimator.from_pretrained("gong2017", **options)
    return Gong2017Estimator.from_file(weights, **options)
