"""DeblurGAN ResNet generator (``kupyn2018``).

Reference: O. Kupyn, V. Budzan, M. Mykhailych, D. Mishkin, J. Matas, "DeblurGAN: Blind Motion
Deblurring Using Conditional Adversarial Networks", CVPR 2018 (arXiv 1711.07064). Survey: Sahu,
Lenka, Sa, "Blind Deblurring using Deep Learning: A Survey" (arXiv 1907.10128), §II-B; the generator
is trained with a WGAN-GP critic and a perceptual loss (survey eq. 27), which live in the loss
module, not here.

Generator (paper §3.2, Fig. 3; the Johnson et al. style-transfer ResNet):

* 7x7 conv to ``width`` channels (reflection padded), InstanceNorm, ReLU;
* two 3x3 convs with stride 2 (``2 width``, ``4 width`` channels), each InstanceNorm + ReLU;
* ``n_blocks`` ResBlocks at 1/4 resolution: ``conv 3x3 -> InstanceNorm -> ReLU -> Dropout(0.5) ->
  conv 3x3 -> InstanceNorm``, added to the block input (reflection padding inside);
* two 3x3 transposed convs with stride 2 (``2 width``, ``width``), each InstanceNorm + ReLU;
* 7x7 conv to the image channels (reflection padded), ``tanh``;
* **global skip ("ResOut")**: the network predicts a residual, ``I_S = I_B + I_R``.

The paper works on images in [-1, 1] and clamps the sum there: ``clamp(x' + r, -1, 1)`` with
``x' = 2 x - 1``. Mapped to deblurkit's [0, 1] images this is exactly::

    output = clamp(x + r / 2, 0, 1),     r = tanh(...) in (-1, 1)

which is what :class:`DeblurGANGenerator` computes (``clamp_output=False`` drops the clamp).

The ``"paper"`` size (width 64, 9 ResBlocks, InstanceNorm without affine parameters, conv biases)
follows the paper and the authors' released code (KupynOrest/DeblurGAN, ``models/networks.py``,
``resnet_9blocks``, ``--learn_residual``): 11,378,179 parameters (the paper states no count;
third-party reports list the same generator as 11.38 M). The transposed convs use
``output_padding=1`` so that each exactly doubles the size. Written for deblurkit from those facts;
no code was copied.

Dropout and InstanceNorm are used as in the paper; ``InstanceNorm2d`` keeps no running statistics,
so in eval mode (``net.eval()``) the forward is deterministic and each image is processed on its
own (batching does not change the result). Any ``H x W`` is accepted: the input is padded (reflect;
replicate when too small) to a multiple of 4 and at least 8 (so that InstanceNorm at 1/4 resolution
sees more than one pixel), and the output cropped back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, ImageError

__all__ = ["ResBlock", "DeblurGANGenerator"]


def _check_int(name: str, value: object, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ConfigError(f"kupyn2018 option {name}: expected an integer >= {lo}, got {value!r}")
    return value


def _norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResBlock(nn.Module):
    """DeblurGAN ResBlock on ``(B, C, H, W)`` (same shape out):
    ``x + IN(conv(Dropout(ReLU(IN(conv(x))))))`` with reflection-padded 3x3 convs."""

    def __init__(self, channels: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(channels), nn.ReLU(),
            nn.Dropout(dropout),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class DeblurGANGenerator(nn.Module):
    """DeblurGAN generator: ``(B, C, H, W)`` in [0, 1] -> same shape in [0, 1].

    Args:
        in_channels: image channels (3 for RGB, 1 for grey); the output has as many.
        width: channels of the first conv (paper 64); the ResBlocks have ``4 * width``.
        n_blocks: ResBlocks at 1/4 resolution (paper 9).
        dropout: dropout probability inside each ResBlock (paper 0.5; 0 disables it).
        clamp_output: clamp the output to [0, 1] as the paper does in its [-1, 1] range (True).
        pad_mode: ``"reflect"`` (falls back to ``"replicate"`` when the image is too small) or
            ``"replicate"``, to pad to a multiple of 4 (at least 8).
    """

    multiple = 4
    min_size = 8

    def __init__(self, in_channels: int = 3, width: int = 64, n_blocks: int = 9,
                 dropout: float = 0.5, clamp_output: bool = True, pad_mode: str = "reflect") -> None:
        super().__init__()
        _check_int("in_channels", in_channels, 1)
        w = _check_int("width", width, 1)
        _check_int("n_blocks", n_blocks, 0)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ConfigError(f"kupyn2018 option dropout: expected a probability in [0, 1), got {dropout!r}")
        if not isinstance(clamp_output, bool):
            raise ConfigError(f"kupyn2018 option clamp_output: expected true or false, got {clamp_output!r}")
        if pad_mode not in ("reflect", "replicate"):
            raise ConfigError(f"kupyn2018 option pad_mode: expected 'reflect' or 'replicate', got {pad_mode!r}")
        self.in_channels = in_channels
        self.clamp_output = clamp_output
        self.pad_mode = pad_mode

        self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(in_channels, w, 7), _norm(w), nn.ReLU())
        self.down = nn.Sequential(
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), _norm(2 * w), nn.ReLU(),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), _norm(4 * w), nn.ReLU(),
        )
        self.blocks = nn.Sequential(*[ResBlock(4 * w, float(dropout)) for _ in range(n_blocks)])
        self.up = nn.Sequential(
            nn.ConvTranspose2d(4 * w, 2 * w, 3, stride=2, padding=1, output_padding=1), _norm(2 * w), nn.ReLU(),
            nn.ConvTranspose2d(2 * w, w, 3, stride=2, padding=1, output_padding=1), _norm(w), nn.ReLU(),
        )
        self.tail = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(w, in_channels, 7))

    @property
    def last_conv(self) -> nn.Conv2d:
        """The 7x7 conv producing the residual (before tanh)."""
        return self.tail[1]  # type: ignore[return-value]

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        ph = max(self.min_size, -(-h // self.multiple) * self.multiple) - h
        pw = max(self.min_size, -(-w // self.multiple) * self.multiple) - w
        mode = self.pad_mode
        if mode == "reflect" and (ph >= h or pw >= w):
            mode = "replicate"  # reflect needs the pad to be smaller than the side
        return F.pad(x, (0, pw, 0, ph), mode=mode)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """``tanh`` output ``r`` in (-1, 1) for a padded input (H, W multiples of 4, >= 8)."""
        return torch.tanh(self.tail(self.up(self.blocks(self.down(self.head(x))))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, H, W)`` float in [0, 1] -> ``(B, in_channels, H, W)``."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ImageError(
                f"DeblurGANGenerator input: expected (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2], x.shape[-1]
        inp = self._pad(x)
        # global skip (ResOut): [-1, 1] images in the paper -> residual r / 2 on [0, 1] images
        out = inp + self.residual(inp) / 2
        if self.clamp_output:
            out = out.clamp(0.0, 1.0)
        return out[:, :, :h, :w]
