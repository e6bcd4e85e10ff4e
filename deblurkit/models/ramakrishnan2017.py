"""Deep Generative Filter generator (``ramakrishnan2017``).

Reference: S. Ramakrishnan, S. Pachori, A. Gangopadhyay, S. Raman, "Deep Generative Filter for Motion
Deblurring", ICCV Workshops 2017 (arXiv 1709.03481). Survey: Sahu, Lenka, Sa, "Blind Deblurring using
Deep Learning: A Survey" (arXiv 1907.10128), §II-B; the generator is trained with the perceptual loss
(eq. 27) and the conditional adversarial loss (eq. 28), which live in the loss module, not here.

The generator is a DenseNet-style fully convolutional filter that never changes resolution:

* **Head**: a 3x3 conv from the image to ``4k`` channels (``k`` = growth rate).
* **Dense field**: ``num_layers`` densely connected layers. Layer ``i`` sees the concatenation of the
  head output and all earlier layer outputs (``4k + (i - 1) k`` channels) and adds ``k`` new ones:
  ``LeakyReLU(0.2) -> 1x1 conv to 4k (bottleneck) -> BatchNorm -> LeakyReLU(0.2) -> 3x3 conv with
  dilation d_i -> BatchNorm``. The dilations alternate ``1, 2, 1, 2, ...`` (layer 1 has dilation 1),
  which widens the receptive field without pooling.
* **Transition** (the "last layer" of the dense field): ``LeakyReLU(0.2) -> 1x1 conv back to 4k ->
  BatchNorm -> Dropout(0.5)``, added to the head output (a skip around the whole dense field).
* **Tail**: ``3x3 conv 4k -> k -> LeakyReLU(0.2) -> 3x3 conv k -> image channels -> tanh``.
* **Global skip connection** (survey §II-B): the generator predicts a residual ``r`` in (-1, 1) and
  the output is ``input + r``, so an untrained (zero) tail leaves the image unchanged.
  ``global_skip=False`` gives the authors' released variant, where the tanh output is the image
  itself ([-1, 1] there, mapped here to [0, 1] as ``(r + 1) / 2``).

The ``"paper"`` size follows the authors' released Torch code and options
(sainandan-ramakrishnan/Deep-Generative-Filter-for-motion-deblurring: ``models2.lua``,
``densefield.lua``, ``checkpoints/model_name/deshake/opt.txt``: growth rate 64, depth 64 with
bottleneck, i.e. ``(64 - 4) / 3 / 2 = 10`` dense layers, dropout 0.5). There the layer with odd index
pads its undilated 3x3 conv by 2, which would grow the map; we pad every conv by its dilation so that
shapes are kept. Written for deblurkit from those facts; no code was copied.

Speed option (deblurkit's, not the paper's): the paper runs every layer at full resolution, which
on a 2-core CPU costs seconds per 1280x720 image even with a handful of channels.
``pixel_unshuffle=2`` (the ``"cpu"`` size) makes the head a space-to-depth step (PixelUnshuffle(2)
then the 3x3 conv) and the last tail conv predict ``4 x`` the image channels followed by
PixelShuffle(2), so that the dense field runs at half resolution with a twice larger receptive
field; the global skip still adds the full-resolution input. ``pixel_unshuffle=1`` is the paper.

BatchNorm and Dropout follow the paper; in eval mode (``net.eval()``) the forward is deterministic.
Any ``H x W`` is accepted: with ``pixel_unshuffle > 1`` the input is padded (replicate) to a multiple
of it and the output cropped back.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, ImageError

__all__ = ["DenseLayer", "DeepGenerativeFilter"]


def _check_int(name: str, value: object, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ConfigError(f"ramakrishnan2017 option {name}: expected an integer >= {lo}, got {value!r}")
    return value


class DenseLayer(nn.Module):
    """One dense-field layer: ``(B, c_in, H, W) -> (B, growth, H, W)`` (the new feature maps only;
    the caller concatenates). The 3x3 conv is dilated by ``dilation`` and padded by as much."""

    def __init__(self, in_channels: int, growth: int, bottleneck: int, dilation: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.LeakyReLU(0.2),
            nn.Conv2d(in_channels, bottleneck, 1),
            nn.BatchNorm2d(bottleneck),
            nn.LeakyReLU(0.2),
            nn.Conv2d(bottleneck, growth, 3, padding=dilation, dilation=dilation),
            nn.BatchNorm2d(growth),
        )

    @property
    def conv(self) -> nn.Conv2d:
        """The dilated 3x3 conv of the layer."""
        return self.body[4]  # type: ignore[return-value]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class DeepGenerativeFilter(nn.Module):
    """Ramakrishnan et al. (2017) generator: ``(B, C, H, W)`` in [0, 1] -> same shape.

    Args:
        in_channels: image channels (3 for RGB, 1 for grey); the output has as many.
        growth_rate: ``k``, feature maps each dense layer adds (paper 64); the head, bottleneck and
            transition have ``4k`` channels.
        num_layers: dense layers in the dense field (paper 10).
        dilations: dilation cycle of the dense layers' 3x3 convs (paper ``[1, 2]``: 1, 2, 1, 2, ...).
        dropout: dropout probability after the transition (paper 0.5; 0 disables it).
        global_skip: output = input + tanh residual (True, survey §II-B) or ``(tanh + 1) / 2``.
        pixel_unshuffle: 1 (the paper: everything at full resolution) or 2/4 (space-to-depth head
            and depth-to-space tail; the dense field runs at ``1 / pixel_unshuffle`` resolution).

    The output is not clamped (callers clamp for display/saving).
    """

    def __init__(self, in_channels: int = 3, growth_rate: int = 64, num_layers: int = 10,
                 dilations: Sequence[int] = (1, 2), dropout: float = 0.5,
                 global_skip: bool = True, pixel_unshuffle: int = 1) -> None:
        super().__init__()
        _check_int("in_channels", in_channels, 1)
        k = _check_int("growth_rate", growth_rate, 1)
        _check_int("num_layers", num_layers, 1)
        if (isinstance(dilations, (str, int)) or not isinstance(dilations, Sequence) or not dilations
                or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dilations)):
            raise ConfigError(f"ramakrishnan2017 option dilations: expected a non-empty list of "
                              f"integers >= 1, got {dilations!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ConfigError(f"ramakrishnan2017 option dropout: expected a probability in [0, 1), got {dropout!r}")
        if not isinstance(global_skip, bool):
            raise ConfigError(f"ramakrishnan2017 option global_skip: expected true or false, got {global_skip!r}")
        if isinstance(pixel_unshuffle, bool) or pixel_unshuffle not in (1, 2, 4):
            raise ConfigError(f"ramakrishnan2017 option pixel_unshuffle: expected 1, 2 or 4, got {pixel_unshuffle!r}")
        self.in_channels = in_channels
        self.global_skip = global_skip
        self.pixel_unshuffle = r = pixel_unshuffle
        self.dilations = [dilations[i % len(dilations)] for i in range(num_layers)]
        c0 = 4 * k

        head = nn.Conv2d(in_channels * r * r, c0, 3, padding=1)
        self.head = head if r == 1 else nn.Sequential(nn.PixelUnshuffle(r), head)
        self.dense = nn.ModuleList()
        c = c0
        for d in self.dilations:
            self.dense.append(DenseLayer(c, k, 4 * k, d))
            c += k
        self.transition = nn.Sequential(
            nn.LeakyReLU(0.2), nn.Conv2d(c, c0, 1), nn.BatchNorm2d(c0), nn.Dropout(float(dropout)))
        self.tail = nn.Sequential(
            nn.Conv2d(c0, k, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(k, in_channels * r * r, 3, padding=1))
        if r > 1:
            self.tail.append(nn.PixelShuffle(r))

    @property
    def last_conv(self) -> nn.Conv2d:
        """The conv producing the residual (before tanh)."""
        return self.tail[2]  # type: ignore[return-value]

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """The generator's tanh output ``(B, in_channels, H, W)`` in (-1, 1); ``H`` and ``W`` must
        be multiples of ``pixel_unshuffle``."""
        head = self.head(x)
        feats = [head]
        for layer in self.dense:
            feats.append(layer(torch.cat(feats, dim=1)))  # dense connectivity
        f = head + self.transition(torch.cat(feats, dim=1))  # skip around the dense field
        return torch.tanh(self.tail(f))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, H, W)`` float -> ``(B, in_channels, H, W)``."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ImageError(
                f"DeepGenerativeFilter input: expected (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2], x.shape[-1]
        m = self.pixel_unshuffle
        inp = F.pad(x, (0, (m - w % m) % m, 0, (m - h % m) % m), mode="replicate") if m > 1 else x
        r = self.residual(inp)
        if self.global_skip:
            out = inp + r  # global skip connection: the generator learns the residual
        else:
            out = (r + 1) / 2
        return out[:, :, :h, :w]
