"""Training losses: pure functions on tensors, thin ``nn.Module`` wrappers, and :func:`build_loss`.

Every function takes ``pred`` and ``target`` as ``(B, C, H, W)`` floating tensors of the same shape
(images nominally in [0, 1], any device) and returns a 0-d tensor (the batch mean) in the dtype of
``pred``. Multi-scale losses take a list of outputs at several scales.

* :func:`l1_loss` — mean absolute error.
* :func:`charbonnier_loss` — ``mean(sqrt((p - t)**2 + eps**2))``, a smooth L1.
* :func:`psnr_loss` — minus the PSNR in dB, as NAFNet trains (Chen et al., ECCV 2022):
  ``mean_b 10 * log10(mse_b / m**2 + eps)``; equals ``-mean_b PSNR_b`` up to ``eps``.
* :func:`fft_l1_loss` — L1 between the real and imaginary parts of ``rfft2`` (frequency loss of
  Cho et al., MIMO-UNet, ICCV 2021).
* :func:`pyramid_charbonnier_loss` — Charbonnier averaged over a box-pooled pyramid of one
  full-size output (a single-output form of the multi-scale losses below, for NAFNet-like models).
* :func:`multiscale_euclidean_loss` — survey eq. 20 (Tao et al., SRN-DeblurNet, CVPR 2018):
  ``sum_i kappa_i / (2 N_i) * ||I_i - I*_i||^2``, ``N_i`` the number of elements of scale ``i``.
* :func:`multiscale_content_loss` — survey eq. 23 (Nah et al., DeepDeblur, CVPR 2017):
  ``1 / (2K) * sum_k 1 / (c_k w_k h_k) * ||L_k - S_k||^2``.

For the two multi-scale losses the per-image value is averaged over the batch. A single target
tensor is turned into the target pyramid by bilinear resizing to each output's size
(``align_corners=False``, no antialiasing: at an exact factor of 2 this is the 2x2 box mean).
Equation numbers are those of Sahu, Lenka, Sa, "Blind Deblurring using Deep Learning: A Survey",
arXiv 1907.10128.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, ImageError

__all__ = [
    "l1_loss", "charbonnier_loss", "psnr_loss", "fft_l1_loss",
    "multiscale_euclidean_loss", "multiscale_content_loss", "target_pyramid", "pyramid_charbonnier_loss",
    "L1Loss", "CharbonnierLoss", "PSNRLoss", "FFTL1Loss", "PyramidCharbonnierLoss",
    "MultiScaleEuclideanLoss", "MultiScaleContentLoss", "CombinedLoss",
    "LOSSES", "build_loss",
]

Outputs = torch.Tensor | Sequence[torch.Tensor]


def _check_pair(pred: torch.Tensor, target: torch.Tensor, where: str = "loss") -> None:
    for name, x in (("pred", pred), ("target", target)):
        if not isinstance(x, torch.Tensor):
            raise ImageError(f"{where} {name}: expected a torch tensor, got {type(x).__name__}")
        if x.dim() != 4:
            raise ImageError(f"{where} {name}: expected (B, C, H, W), got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ImageError(f"{where} {name}: expected a floating dtype, got {x.dtype}")
    if pred.shape != target.shape:
        raise ImageError(
            f"{where}: pred shape {tuple(pred.shape)} differs from target shape {tuple(target.shape)}")


def _check_positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise ConfigError(f"loss option {name}: expected a positive number, got {value!r}")
    return float(value)


def _check_levels(levels: int) -> int:
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise ConfigError(f"loss option levels: expected an integer >= 1, got {levels!r}")
    return levels


# --- single-scale losses -----------------------------------------------------------------------

def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over all elements: ``mean |pred - target|``. 0-d tensor."""
    _check_pair(pred, target, "l1 loss")
    return (pred - target).abs().mean()


def charbonnier_loss(pred: torch.Tensor, target: torch.Tensor, *, eps: float = 1e-3) -> torch.Tensor:
    """Charbonnier loss ``mean(sqrt((pred - target)**2 + eps**2))`` (a differentiable L1). 0-d."""
    _check_pair(pred, target, "charbonnier loss")
    eps = _check_positive("eps", eps)
    return torch.sqrt((pred - target).square() + eps * eps).mean()


def psnr_loss(pred: torch.Tensor, target: torch.Tensor, *, data_range: float = 1.0,
              eps: float = 1e-8) -> torch.Tensor:
    """Minus PSNR in dB, averaged over the batch (NAFNet's training loss). 0-d tensor.

    ``mean_b 10 * log10(mse_b / data_range**2 + eps)`` with ``mse_b`` the mean squared error of
    image ``b`` over its channels and pixels. Without ``eps`` this is ``-mean_b PSNR_b`` (survey
    eq. 30); ``eps`` keeps identical images finite (``-80 dB`` for ``eps = 1e-8``).
    """
    _check_pair(pred, target, "psnr loss")
    data_range = _check_positive("data_range", data_range)
    eps = _check_positive("eps", eps)
    mse = (pred - target).square().mean(dim=(1, 2, 3))
    return (10.0 * torch.log10(mse / (data_range * data_range) + eps)).mean()


def fft_l1_loss(pred: torch.Tensor, target: torch.Tensor, *, norm: str = "ortho") -> torch.Tensor:
    """Frequency L1: ``mean(|Re(F p - F t)|) + mean(|Im(F p - F t)|)``, ``F = rfft2`` over H, W. 0-d.

    ``norm`` is :func:`torch.fft.rfft2`'s normalisation: ``"ortho"`` (default; Parseval-scaled, so
    the magnitude is comparable to pixel losses), ``"backward"`` (unscaled, as MIMO-UNet) or
    ``"forward"``. Computed in float32 at least (``rfft2`` has no half-precision CPU kernel).
    """
    _check_pair(pred, target, "fft_l1 loss")
    if norm not in ("ortho", "backward", "forward"):
        raise ConfigError(f"loss option norm: expected 'ortho', 'backward' or 'forward', got {norm!r}")
    dt = torch.promote_types(pred.dtype, torch.float32)
    diff = torch.fft.rfft2((pred - target).to(dt), norm=norm)  # linear: F p - F t = F (p - t)
    return (diff.real.abs().mean() + diff.imag.abs().mean()).to(pred.dtype)


# --- multi-scale losses ------------------------------------------------------------------------

def pyramid_charbonnier_loss(pred: torch.Tensor, target: torch.Tensor, *, levels: int = 3,
                             eps: float = 1e-3) -> torch.Tensor:
    """``1/L * sum_{k<L} charbonnier(P_k pred, P_k target)``, ``P_k`` = mean over ``2^k x 2^k``
    blocks (``P_0`` the identity). 0-d.

    The coarse levels weigh low frequencies (colour, large structure: what heavy blur destroys)
    more than the pixel loss does. ``pred`` and ``target`` are ``(B, C, H, W)`` floats with H and W
    at least ``2^(levels-1)``; rows and columns that do not fill a block are left out of that level.
    ``levels = 1`` is :func:`charbonnier_loss`.
    """
    _check_pair(pred, target, "pyramid_charbonnier loss")
    _check_levels(levels)
    if min(pred.shape[-2:]) < 2 ** (levels - 1):
        raise ImageError(f"pyramid_charbonnier loss: {levels} levels need images of at least "
                         f"{2 ** (levels - 1)} px, got {tuple(pred.shape[-2:])}")
    total = pred.new_zeros(())
    for k in range(levels):
        f = 2 ** k
        p = pred if f == 1 else F.avg_pool2d(pred, f)
        t = target if f == 1 else F.avg_pool2d(target, f)
        total = total + charbonnier_loss(p, t, eps=eps)
    return total / levels


def _as_list(outputs: Outputs, where: str) -> list[torch.Tensor]:
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    outs = list(outputs)
    if not outs:
        raise ImageError(f"{where} outputs: empty list")
    return outs


def target_pyramid(target: torch.Tensor, sizes: Sequence[tuple[int, int]]) -> list[torch.Tensor]:
    """``target`` ``(B, C, H, W)`` resized bilinearly to each ``(h, w)`` of ``sizes``.

    ``align_corners=False`` and no antialiasing (Tao et al. resize bilinearly); at an exact factor of
    2 each output pixel is the mean of a 2x2 block. The full size returns ``target`` itself.
    """
    out = []
    for h, w in sizes:
        if (h, w) == tuple(target.shape[-2:]):
            out.append(target)
        else:
            out.append(F.interpolate(target, size=(h, w), mode="bilinear", align_corners=False))
    return out


def _targets_for(outs: list[torch.Tensor], targets: Outputs, where: str) -> list[torch.Tensor]:
    if isinstance(targets, torch.Tensor):
        if targets.dim() != 4:
            raise ImageError(f"{where} target: expected (B, C, H, W), got shape {tuple(targets.shape)}")
        return target_pyramid(targets, [tuple(o.shape[-2:]) for o in outs])
    tg = list(targets)
    if len(tg) != len(outs):
        raise ImageError(f"{where}: {len(outs)} outputs but {len(tg)} targets")
    return tg


def multiscale_euclidean_loss(outputs: Outputs, targets: Outputs, *,
                              weights: Sequence[float] | None = None) -> torch.Tensor:
    """Survey eq. 20 (Tao et al. 2018): ``sum_i kappa_i / (2 N_i) * ||I_i - I*_i||_2^2``. 0-d.

    Args:
        outputs: the network's outputs ``I_i``, one ``(B, C, H_i, W_i)`` tensor per scale (any
            order), or a single tensor.
        targets: the sharp images ``I*_i`` at the same scales, or one full-size tensor that is
            resized bilinearly to each output size (:func:`target_pyramid`).
        weights: ``kappa_i`` per scale (default 1 each, as Tao et al.).

    ``N_i = C * H_i * W_i`` is the number of elements of one image at scale ``i``; the per-image
    loss is averaged over the batch.
    """
    outs = _as_list(outputs, "multiscale_euclidean loss")
    tgts = _targets_for(outs, targets, "multiscale_euclidean loss")
    if weights is None:
        weights = [1.0] * len(outs)
    weights = list(weights)
    if len(weights) != len(outs):
        raise ConfigError(f"loss option weights: {len(weights)} weights for {len(outs)} scales")
    total = outs[0].new_zeros(())
    for i, (o, t, k) in enumerate(zip(outs, tgts, weights)):
        _check_pair(o, t, f"multiscale_euclidean loss scale {i}")
        n = o[0].numel()
        sq = (o - t).square().sum(dim=(1, 2, 3))
        total = total + (float(k) / (2.0 * n) * sq).mean()
    return total


def multiscale_content_loss(outputs: Outputs, targets: Outputs) -> torch.Tensor:
    """Survey eq. 23 (Nah et al. 2017): ``1/(2K) * sum_k 1/(c_k w_k h_k) * ||L_k - S_k||^2``. 0-d.

    ``outputs`` are the ``K`` latent images ``L_k``, one ``(B, C, H_k, W_k)`` tensor per scale;
    ``targets`` the sharp ``S_k`` at the same scales, or one full-size tensor resized bilinearly to
    each scale (Nah et al. use a Gaussian pyramid: pass it explicitly to reproduce that). The
    per-image loss is averaged over the batch.
    """
    outs = _as_list(outputs, "multiscale_content loss")
    tgts = _targets_for(outs, targets, "multiscale_content loss")
    k_scales = len(outs)
    total = outs[0].new_zeros(())
    for i, (o, t) in enumerate(zip(outs, tgts)):
        _check_pair(o, t, f"multiscale_content loss scale {i}")
        c, h, w = o.shape[1:]
        sq = (o - t).square().sum(dim=(1, 2, 3))
        total = total + (sq / (c * h * w)).mean()
    return total / (2.0 * k_scales)


# --- module wrappers ---------------------------------------------------------------------------

def _finest(outputs: Outputs) -> torch.Tensor:
    """The largest output of a multi-scale list (a single tensor is returned as is)."""
    if isinstance(outputs, torch.Tensor):
        return outputs
    outs = _as_list(outputs, "loss")
    return max(outs, key=lambda o: o.shape[-2] * o.shape[-1])


class L1Loss(nn.Module):
    """:func:`l1_loss` as a module; a multi-scale list is scored on its finest output."""

    def forward(self, pred: Outputs, target: torch.Tensor) -> torch.Tensor:
        return l1_loss(_finest(pred), target)


class CharbonnierLoss(nn.Module):
    """:func:`charbonnier_loss` as a module."""

    def __init__(self, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = _check_positive("eps", eps)

    def forward(self, pred: Outputs, target: torch.Tensor) -> torch.Tensor:
        return charbonnier_loss(_finest(pred), target, eps=self.eps)


class PSNRLoss(nn.Module):
    """:func:`psnr_loss` as a module."""

    def __init__(self, data_range: float = 1.0, eps: float = 1e-8) -> None:
        super().__init__()
        self.data_range = _check_positive("data_range", data_range)
        self.eps = _check_positive("eps", eps)

    def forward(self, pred: Outputs, target: torch.Tensor) -> torch.Tensor:
        return psnr_loss(_finest(pred), target, data_range=self.data_range, eps=self.eps)


class FFTL1Loss(nn.Module):
    """:func:`fft_l1_loss` as a module."""

    def __init__(self, norm: str = "ortho") -> None:
        super().__init__()
        if norm not in ("ortho", "backward", "forward"):
            raise ConfigError(f"loss option norm: expected 'ortho', 'backward' or 'forward', got {norm!r}")
        self.norm = norm

    def forward(self, pred: Outputs, target: torch.Tensor) -> torch.Tensor:
        return fft_l1_loss(_finest(pred), target, norm=self.norm)


class PyramidCharbonnierLoss(nn.Module):
    """:func:`pyramid_charbonnier_loss` as a module, on the finest output."""

    def __init__(self, levels: int = 3, eps: float = 1e-3) -> None:
        super().__init__()
        self.levels, self.eps = _check_levels(levels), _check_positive("eps", eps)

    def forward(self, pred: Outputs, target: torch.Tensor) -> torch.Tensor:
        return pyramid_charbonnier_loss(_finest(pred), target, levels=self.levels, eps=self.eps)


class MultiScaleEuclideanLoss(nn.Module):
    """:func:`multiscale_euclidean_loss` (survey eq. 20) as a module."""

    def __init__(self, weights: Sequence[float] | None = None) -> None:
        super().__init__()
        self.weights = None if weights is None else [float(w) for w in weights]

    def forward(self, pred: Outputs, target: Outputs) -> torch.Tensor:
        return multiscale_euclidean_loss(pred, target, weights=self.weights)


class MultiScaleContentLoss(nn.Module):
    """:func:`multiscale_content_loss` (survey eq. 23) as a module."""

    def forward(self, pred: Outputs, target: Outputs) -> torch.Tensor:
        return multiscale_content_loss(pred, target)


class CombinedLoss(nn.Module):
    """Weighted sum ``sum_j w_j * loss_j(pred, target)`` of loss modules."""

    def __init__(self, terms: Sequence[tuple[str, float, nn.Module]]) -> None:
        super().__init__()
        self.names = [n for n, _, _ in terms]
        self.weights = [float(w) for _, w, _ in terms]
        self.terms = nn.ModuleList([m for _, _, m in terms])

    def forward(self, pred: Outputs, target: torch.Tensor) -> torch.Tensor:
        total = None
        for w, term in zip(self.weights, self.terms):
            value = w * term(pred, target)
            total = value if total is None else total + value
        return total


LOSSES: dict[str, Callable[..., nn.Module]] = {
    "l1": L1Loss,
    "charbonnier": CharbonnierLoss,
    "psnr": PSNRLoss,
    "fft_l1": FFTL1Loss,
    "pyramid_charbonnier": PyramidCharbonnierLoss,
    "multiscale_euclidean": MultiScaleEuclideanLoss,  # survey eq. 20 (Tao et al.)
    "multiscale_content": MultiScaleContentLoss,      # survey eq. 23 (Nah et al.)
    "noroozi": lambda **options: _noroozi_loss(**options),  # survey eq. 21 (Noroozi et al.)
}

_OPTIONS: dict[str, tuple[str, ...]] = {
    "l1": (), "charbonnier": ("eps",), "psnr": ("data_range", "eps"), "fft_l1": ("norm",), "pyramid_charbonnier": ("levels", "eps"),
    "multiscale_euclidean": ("weights",), "multiscale_content": (), "noroozi": ("normalize",),
}


def _noroozi_loss(**options) -> nn.Module:
    """Eq. 21's loss lives beside its model (imported here on use, so importing the losses does not
    import every model)."""
    from ..models.noroozi2017 import NorooziLoss

    return NorooziLoss(**options)


def build_loss(spec: Sequence[Mapping[str, Any]]) -> CombinedLoss:
    """Build the training loss from ``[{"name": ..., "weight": ..., <options>}, ...]``.

    ``name`` is one of :data:`LOSSES`; ``weight`` defaults to 1; other keys are the loss's options
    (e.g. ``eps`` for charbonnier). An unknown name lists the choices; an unknown option is named
    with the valid ones. Returns a :class:`CombinedLoss` called as ``loss(pred, target)``.
    """
    if isinstance(spec, Mapping) or not isinstance(spec, Sequence) or isinstance(spec, str):
        raise ConfigError(f"loss: expected a list of {{name, weight}} terms, got {spec!r}")
    if not spec:
        raise ConfigError("loss: the list of terms is empty")
    terms = []
    for i, item in enumerate(spec):
        if not isinstance(item, Mapping):
            raise ConfigError(f"loss[{i}]: expected a mapping with 'name', got {item!r}")
        if "name" not in item:
            raise ConfigError(f"loss[{i}]: missing 'name'; choose one of: {', '.join(LOSSES)}")
        name = item["name"]
        if name not in LOSSES:
            raise ConfigError(f"loss[{i}] name {name!r}: unknown; choose one of: {', '.join(LOSSES)}")
        weight = item.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) \
                or weight < 0:
            raise ConfigError(f"loss[{i}] ({name}) weight: expected a number >= 0, got {weight!r}")
        options = {k: v for k, v in item.items() if k not in ("name", "weight")}
        unknown = sorted(set(options) - set(_OPTIONS[name]))
        if unknown:
            valid = ", ".join(("name", "weight") + _OPTIONS[name])
            raise ConfigError(f"loss[{i}] ({name}): unknown option {', '.join(map(repr, unknown))}; "
                              f"valid keys: {valid}")
        terms.append((name, float(weight), LOSSES[name](**options)))
    return CombinedLoss(terms)
