"""The three-stage pyramid deblurring network of Noroozi, Chandramouli, Favaro (GCPR 2017).

Reference: M. Noroozi, P. Chandramouli, P. Favaro, "Motion Deblurring in the Wild", GCPR 2017
(LNCS 10496; arXiv 1701.01486). Survey: Sahu, Lenka, Sa, "Blind Deblurring using Deep Learning: A
Survey", arXiv 1907.10128, §II-B and eq. 21 (this network's loss, :func:`noroozi_loss`).

What this file implements from the sources: a convolutional network that directly generates the
sharp image, "built in three stages" that "exploit the benefits of pyramid schemes" (the paper's
abstract); an encoder of strided convolutions and a decoder of deconvolutions (transposed
convolutions) with skip connections, whose three stages output RESIDUAL images added at 1/4, 1/2
and full resolution (the survey's description); the loss, survey eq. 21: the sum over the three
scales of the squared error between each stage's output and the sharp image downsampled to that
scale.

What is deblurkit's reconstruction (the paper's layer table could not be consulted while writing
this; the widths, kernel sizes, the base the residual is added to and the batch-norm choice below
are ours, most of them options):

* Encoder: level 0 = ``conv_unit(C -> c0)`` + ``convs_per_level`` ``conv_unit(c0 -> c0)``; level
  ``i`` (``1 <= i <= depth``) = stride-2 ``conv_unit(c_{i-1} -> c_i)`` + ``convs_per_level`` units.
  A ``conv_unit`` is conv (``kernel_size``) [+ BatchNorm when ``norm="batch"``] + ReLU.
* Stage ``j = 1 .. depth`` works at level ``L = depth - j`` (1/4, 1/2, 1 for ``depth = 3``): a 4x4
  stride-2 transposed conv (+ norm + ReLU) from the stage below to ``c_L`` channels, concatenated
  with the encoder features of level ``L`` (skip connection) and, from stage 2 on, with the previous
  stage's estimate upsampled bilinearly by 2 (the pyramid scheme: each stage refines the coarser
  estimate); then ``conv_unit`` to ``c_L`` + ``convs_per_level`` units; a plain conv head gives the
  residual ``r_j`` and the stage's estimate ``L_j = B_L + r_j``.
* ``B_L`` is the (padded) blurred input resized bilinearly (``align_corners=False``, no
  antialiasing), the resize :func:`deblurkit.train.losses.target_pyramid` applies to the sharp
  target, so that eq. 21 compares like with like.

Any ``H x W``: the input is padded (bottom/right) to a multiple of ``2 ** depth``; output ``k``
(0 = finest) is cropped to ``(ceil(H / 2**k), ceil(W / 2**k))``. The model returns the list FINEST
FIRST (``out[0]`` is the prediction). The paper states no parameter count; the count of the paper
size registered here is derived layer by layer in tests/models/test_noroozi2017.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ConfigError, ImageError
from .nah2017 import check_image_batch, check_int, crop_outputs, pad_to_multiple
from .tao2018 import resize

__all__ = ["NorooziNet", "noroozi_loss", "NorooziLoss", "PAPER", "PAPER_SIZE", "CPU_SIZE",
           "TINY_SIZE", "DEFAULTS"]

PAPER = ("M. Noroozi, P. Chandramouli, P. Favaro, Motion Deblurring in the Wild, GCPR 2017 "
         "(arXiv 1701.01486)")
# Named sizes (option overrides) for the registry. "paper": deblurkit's reconstruction at a
# paper-like scale (widths 64..512, batch norm; the paper's own layer table was not available, see
# the module docstring). The CPU size: widths 16..128, no batch norm (small training batches on a
# CPU; 0.62 M parameters, 38 GMAC at 1280x720). The tiny size is for tests and smoke runs.
PAPER_SIZE = {"channels": [64, 128, 256, 512], "convs_per_level": 1, "kernel_size": 3,
              "norm": "batch"}
CPU_SIZE = {"channels": [16, 32, 64, 128], "convs_per_level": 1, "kernel_size": 3, "norm": "none"}
TINY_SIZE = {"channels": [4, 8, 8, 8], "convs_per_level": 0, "kernel_size": 3, "norm": "none"}
# Every option the registry accepts, with the CPU size as the default.
DEFAULTS = {"in_channels": 3, **CPU_SIZE, "pad_mode": "reflect"}


def _conv_unit(cin: int, cout: int, kernel_size: int, norm: str, stride: int = 1) -> nn.Sequential:
    """conv [+ BatchNorm] + ReLU; the conv has no bias when a norm follows it."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel_size, stride=stride,
                                         padding=kernel_size // 2, bias=norm == "none")]
    if norm == "batch":
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class NorooziNet(nn.Module):
    """Noroozi et al. 2017 three-stage pyramid network: ``(B, C, H, W)`` in [0, 1] -> list of
    ``depth`` tensors ``(B, C, ceil(H/2**k), ceil(W/2**k))``, ``k = 0`` (full size) first.

    Args:
        in_channels: image channels ``C``.
        channels: encoder widths from full resolution down, one more entry than the number of
            stages (``[64, 128, 256, 512]``: three stages, at 1/4, 1/2 and 1).
        convs_per_level: extra ``conv_unit`` s after the first one of every encoder level and
            decoder stage (``>= 0``).
        kernel_size: odd kernel size of the convs (the transposed convs are 4x4, stride 2).
        norm: ``"batch"`` (BatchNorm after every conv but the heads) or ``"none"``.
        pad_mode: ``"reflect"`` or ``"replicate"``.

    Outputs are not clamped.
    """

    def __init__(self, in_channels: int = 3, channels: Sequence[int] = (64, 128, 256, 512),
                 convs_per_level: int = 1, kernel_size: int = 3, norm: str = "batch",
                 pad_mode: str = "reflect") -> None:
        super().__init__()
        name = "noroozi2017"
        check_int(name, "in_channels", in_channels, 1)
        check_int(name, "convs_per_level", convs_per_level, 0)
        if check_int(name, "kernel_size", kernel_size, 1) % 2 == 0:
            raise ConfigError(f"{name} option kernel_size: expected an odd kernel size, got {kernel_size}")
        if isinstance(channels, (str, int)) or not isinstance(channels, Sequence) or len(channels) < 2 \
                or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in channels):
            raise ConfigError(f"{name} option channels: expected a list of at least 2 integers >= 1 "
                              f"(widths from full resolution down), got {channels!r}")
        if norm not in ("batch", "none"):
            raise ConfigError(f"{name} option norm: expected 'batch' or 'none', got {norm!r}")
        if pad_mode not in ("reflect", "replicate"):
            raise ConfigError(f"{name} option pad_mode: expected 'reflect' or 'replicate', got {pad_mode!r}")
        ch = list(channels)
        k = kernel_size
        self.in_channels = in_channels
        self.depth = len(ch) - 1  # number of stages = number of stride-2 levels
        self.pad_mode = pad_mode
        self.multiple = 2 ** self.depth

        def level(cin: int, cout: int, stride: int) -> nn.Sequential:
            return nn.Sequential(_conv_unit(cin, cout, k, norm, stride),
                                 *[_conv_unit(cout, cout, k, norm) for _ in range(convs_per_level)])

        self.encoder = nn.ModuleList(
            [level(in_channels, ch[0], 1)] + [level(ch[i - 1], ch[i], 2) for i in range(1, len(ch))])
        self.ups = nn.ModuleList()
        self.fuses = nn.ModuleList()
        self.heads = nn.ModuleList()
        for j in range(1, self.depth + 1):  # stage j at level L = depth - j
            lvl = self.depth - j
            up = [nn.ConvTranspose2d(ch[lvl + 1], ch[lvl], 4, stride=2, padding=1, bias=norm == "none")]
            if norm == "batch":
                up.append(nn.BatchNorm2d(ch[lvl]))
            self.ups.append(nn.Sequential(*up, nn.ReLU()))
            extra = 0 if j == 1 else in_channels  # the upsampled previous estimate
            self.fuses.append(level(2 * ch[lvl] + extra, ch[lvl], 1))
            self.heads.append(nn.Conv2d(ch[lvl], in_channels, k, padding=k // 2))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``(B, C, H, W)`` -> ``[L_3 (full size), L_2 (1/2), L_1 (1/4)]`` (finest first)."""
        check_image_batch("NorooziNet", x, self.in_channels)
        h, w = x.shape[-2], x.shape[-1]
        xp = pad_to_multiple(x, self.multiple, self.pad_mode)
        feats = []
        f = xp
        for block in self.encoder:
            f = block(f)
            feats.append(f)
        estimates: list[torch.Tensor] = []
        for j, (up, fuse, head) in enumerate(zip(self.ups, self.fuses, self.heads), start=1):
            lvl = self.depth - j
            f = up(f)
            parts = [f, feats[lvl]]
            if estimates:  # pyramid scheme: the coarser estimate, upsampled 2x
                parts.append(resize(estimates[-1], tuple(f.shape[-2:])))
            f = fuse(torch.cat(parts, dim=1))
            blur = resize(xp, tuple(f.shape[-2:]))
            estimates.append(blur + head(f))  # residual added at this scale
        return crop_outputs(estimates[::-1], h, w)


# ------------------------------------------------------------------------------------ the loss

def noroozi_loss(outputs: torch.Tensor | Sequence[torch.Tensor],
                 target: torch.Tensor | Sequence[torch.Tensor], *,
                 normalize: bool = False) -> torch.Tensor:
    """Survey eq. 21 (Noroozi et al. 2017): ``sum_k ||L_k - S_k||_2^2`` over the scales. 0-d tensor.

    Args:
        outputs: the stage outputs ``L_k``, one ``(B, C, H_k, W_k)`` tensor per scale (any order;
            a single tensor is one scale).
        target: the sharp images ``S_k`` at the same scales, or one full-size ``(B, C, H, W)``
            tensor resized bilinearly to each output size
            (:func:`deblurkit.train.losses.target_pyramid`: a 2x2 mean at 1/2).
        normalize: divide by ``C * H * W`` of the largest output. A constant factor: the minimiser
            and the relative weight of the scales stay those of eq. 21 (unlike eq. 20 and 23,
            which normalise each scale by its own size); it only keeps the value near pixel units.

    Per image, the squared errors are SUMMED over channels, pixels and scales (eq. 21 has no
    normalisation); the per-image value is averaged over the batch.
    """
    outs = [outputs] if isinstance(outputs, torch.Tensor) else list(outputs)
    if not outs:
        raise ImageError("noroozi loss outputs: empty list")
    for i, o in enumerate(outs):
        if not isinstance(o, torch.Tensor) or o.dim() != 4 or not o.is_floating_point():
            got = tuple(o.shape) if isinstance(o, torch.Tensor) else type(o).__name__
            raise ImageError(f"noroozi loss output {i}: expected a floating (B, C, H, W) tensor, got {got}")
    if isinstance(target, torch.Tensor):
        from ..train.losses import target_pyramid  # local: keeps models importable without train

        if target.dim() != 4:
            raise ImageError(f"noroozi loss target: expected (B, C, H, W), got shape {tuple(target.shape)}")
        tgts = target_pyramid(target, [tuple(o.shape[-2:]) for o in outs])
    else:
        tgts = list(target)
        if len(tgts) != len(outs):
            raise ImageError(f"noroozi loss: {len(outs)} outputs but {len(tgts)} targets")
    if not isinstance(normalize, bool):
        raise ConfigError(f"loss option normalize: expected true or false, got {normalize!r}")
    total = outs[0].new_zeros(())
    for i, (o, t) in enumerate(zip(outs, tgts)):
        if not isinstance(t, torch.Tensor) or t.shape != o.shape:
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ImageError(f"noroozi loss scale {i}: output shape {tuple(o.shape)} differs from "
                             f"target shape {got}")
        total = total + (o - t).square().sum(dim=(1, 2, 3)).mean()
    if normalize:
        total = total / max(math.prod(o.shape[1:]) for o in outs)
    return total


class NorooziLoss(nn.Module):
    """:func:`noroozi_loss` (survey eq. 21) as a module: ``loss(outputs, target)``."""

    def __init__(self, normalize: bool = False) -> None:
        super().__init__()
        if not isinstance(normalize, bool):
            raise ConfigError(f"loss option normalize: expected true or false, got {normalize!r}")
        self.normalize = normalize

    def forward(self, pred, target) -> torch.Tensor:
        return noroozi_loss(pred, target, normalize=self.normalize)
