"""NAFNet-style deblurring network.

Reference: L. Chen, X. Chu, X. Zhang, J. Sun, "Simple Baselines for Image Restoration", ECCV 2022
(arXiv 2204.04676). Not one of the survey's methods (Sahu, Lenka, Sa, arXiv 1907.10128); it answers
the survey's closing question (§IV) of a small network with a large receptive field that runs fast.

Structure (written for deblurkit from the paper's description):

* ``NAFBlock`` (paper Fig. 3c): ``LayerNorm2d -> 1x1 conv (expand 2x) -> 3x3 depthwise conv ->
  SimpleGate -> simplified channel attention -> 1x1 conv``, added to the input with a learned
  per-channel scale ``beta`` (initialised to 0), then a feed-forward part ``LayerNorm2d -> 1x1 conv
  (expand) -> SimpleGate -> 1x1 conv`` added with a learned scale ``gamma`` (initialised to 0). With
  both scales at 0 every block starts as the identity.
* ``SimpleGate`` (paper eq. 6): split the channels in two halves and multiply them.
* Simplified channel attention (paper eq. 5): ``x * W(pool(x))`` with global average pooling and a
  1x1 conv, no non-linearity.
* U-Net (paper Fig. 2b): a 3x3 conv to ``width`` channels, encoder levels each followed by a strided
  2x2 conv that halves the resolution and doubles the channels, middle blocks, decoder levels each
  preceded by a 1x1 conv + PixelShuffle(2) upsampling that halves the channels, additive skips, a
  3x3 conv back to the image channels and a global residual: ``output = input + net(input)``.

Speed option (deblurkit's, not the paper's): ``pixel_unshuffle=2`` replaces the full-resolution
intro/ending convs by a space-to-depth stem (PixelUnshuffle(2) then a 3x3 conv; a 3x3 conv then
PixelShuffle(2) at the end), so that no block runs at full resolution. On a 2-core CPU the
full-resolution levels cost most of the time (their many element-wise passes are memory bound),
while the receptive field grows with every level added below.

Test-time option (deblurkit's, from Chu et al., "Improving Image Restoration by Revisiting Global
Information Aggregation", ECCV 2022, the "test-time local converter"): ``pool_window=N`` replaces
the global average of the channel attention by a local ``N x N`` average (in input pixels, scaled
to each level), so that a network trained on crops sees, on a large photo, the statistics of a
crop. ``None`` (default) is the paper's global pooling. It changes no weight; measured for the
shipped default by ``benchmarks/inference_variants.py``.

Any ``H x W`` is accepted: the input is padded (reflect, or replicate when the image is too small to
reflect) to a multiple of ``pixel_unshuffle * 2 ** len(enc_blocks)`` and the output cropped back.
The pad amounts are computed from the input shape, so an ONNX export (``torch.onnx.export(...,
dynamo=False, opset_version=17)`` with dynamic H and W) stays correct at any size; the exported
graph keeps the padding mode traced at export time, so with ``"reflect"`` it needs each side to be
at least the pad amount + 1 (always true for sides >= that multiple).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, ImageError

__all__ = ["LayerNorm2d", "SimpleGate", "NAFBlock", "NAFNet", "layer_norm_2d", "local_mean", "simple_gate"]


def layer_norm_2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                  eps: float = 1e-6) -> torch.Tensor:
    """Layer normalisation over the channel axis of ``(B, C, H, W)``, independently per pixel.

    ``y = (x - mean_c(x)) / sqrt(var_c(x) + eps) * weight + bias`` with the biased variance;
    ``weight`` and ``bias`` are ``(C,)``. Written with plain tensor ops (mean, pow, rsqrt) so that it
    exports to ONNX opset 17 and runs in onnxruntime. Returns ``(B, C, H, W)``, same dtype.
    """
    mu = x.mean(dim=1, keepdim=True)
    centred = x - mu
    var = centred.pow(2).mean(dim=1, keepdim=True)
    y = centred * torch.rsqrt(var + eps)
    return y * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)


def simple_gate(x: torch.Tensor) -> torch.Tensor:
    """SimpleGate (Chen et al. 2022, eq. 6): ``(B, 2C, H, W) -> (B, C, H, W)``, first half times second."""
    a, b = x.chunk(2, dim=1)
    return a * b


def local_mean(x: torch.Tensor, window: int) -> torch.Tensor:
    """Mean of each ``window x window`` neighbourhood of ``(B, C, H, W)``, returned as ``(B, C, H, W)``.

    The means of the windows that fit inside the image are computed from an integral image (cost
    independent of ``window``); the outer rows and columns, whose window would leave the image,
    repeat the nearest inner value (Chu et al. 2022, TLC). The window is clipped to the image, so
    a window covering it gives the global mean at every pixel. Same dtype as ``x``.
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ConfigError(f"local_mean window: expected an integer >= 1, got {window!r}")
    h, w = x.shape[-2], x.shape[-1]
    kh, kw = min(window, h), min(window, w)
    if kh == h and kw == w:
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x)
    s = F.pad(x.cumsum(2).cumsum(3), (1, 0, 1, 0))
    m = (s[..., kh:, kw:] - s[..., :-kh, kw:] - s[..., kh:, :-kw] + s[..., :-kh, :-kw]) / (kh * kw)
    top, left = (h - m.shape[-2]) // 2, (w - m.shape[-1]) // 2
    return F.pad(m, (left, w - m.shape[-1] - left, top, h - m.shape[-2] - top), mode="replicate")


class LayerNorm2d(nn.Module):
    """Channel LayerNorm for ``(B, C, H, W)`` feature maps (see :func:`layer_norm_2d`)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return layer_norm_2d(x, self.weight, self.bias, self.eps)


class SimpleGate(nn.Module):
    """Module form of :func:`simple_gate`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return simple_gate(x)


class NAFBlock(nn.Module):
    """One NAFNet block on ``(B, C, H, W)`` features; output has the same shape.

    ``dw_expand`` widens the depthwise part, ``ffn_expand`` the feed-forward part (both 2 in the
    paper); SimpleGate halves each widened tensor back to ``C`` channels.
    """

    def __init__(self, channels: int, dw_expand: int = 2, ffn_expand: int = 2) -> None:
        super().__init__()
        c = channels
        dw = c * dw_expand
        ffn = c * ffn_expand
        self.norm1 = LayerNorm2d(c)
        self.expand = nn.Conv2d(c, dw, 1)
        self.depthwise = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.gate = SimpleGate()
        self.attention = nn.Conv2d(dw // 2, dw // 2, 1)  # simplified channel attention
        self.project = nn.Conv2d(dw // 2, c, 1)
        self.norm2 = LayerNorm2d(c)
        self.ffn_expand = nn.Conv2d(c, ffn, 1)
        self.ffn_project = nn.Conv2d(ffn // 2, c, 1)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.pool_window: int | None = None  # set by NAFNet: local pooling at test time (TLC)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.depthwise(self.expand(self.norm1(x)))
        y = self.gate(y)
        pooled = (y.mean(dim=(2, 3), keepdim=True) if self.pool_window is None
                  else local_mean(y, self.pool_window))  # paper eq. 5 (global) or TLC (local)
        y = y * self.attention(pooled)
        y = self.project(y)
        x = x + y * self.beta
        z = self.ffn_project(self.gate(self.ffn_expand(self.norm2(x))))
        return x + z * self.gamma


def _check_blocks(name: str, value: object, *, allow_empty: bool) -> list[int]:
    if isinstance(value, int) or not isinstance(value, Sequence) or isinstance(value, str):
        raise ConfigError(f"nafnet option {name}: expected a list of block counts, got {value!r}")
    out = list(value)
    if not allow_empty and not out:
        raise ConfigError(f"nafnet option {name}: must not be empty")
    for v in out:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ConfigError(f"nafnet option {name}: block counts must be integers >= 0, got {value!r}")
    return out


class NAFNet(nn.Module):
    """NAFNet U-Net: ``(B, C, H, W)`` float in [0, 1] (any ``H, W >= 1``) -> same shape.

    Args:
        in_channels: image channels (3 for RGB, 1 for grey); the output has the same number.
        width: channels at full resolution; level ``i`` has ``width * 2**i`` channels.
        enc_blocks: NAFBlocks per encoder level; its length is the number of 2x downsamplings.
        middle_blocks: NAFBlocks at the lowest resolution.
        dec_blocks: NAFBlocks per decoder level, listed from the lowest level up (as the paper's
            configs: ``[1, 1, 1, 1]``); must have the same length as ``enc_blocks``.
        dw_expand, ffn_expand: channel expansion of the two halves of each block.
        pixel_unshuffle: 1 (the paper: a 3x3 conv at full resolution) or 2/4 (space-to-depth stem:
            level 0 runs at ``1 / pixel_unshuffle`` of the input resolution).
        pad_mode: ``"reflect"`` (default; falls back to ``"replicate"`` for images too small to
            reflect) or ``"replicate"``, used to pad to a multiple of
            ``pixel_unshuffle * 2 ** len(enc_blocks)``.

        identity_init: start the last convolution at zero (default; a deblurkit choice, the paper
            initialises it at random), so the untrained network is the identity: a deblurring
            model must not harm sharp photos, and training from the identity skips the first few
            hundred steps that a random residual spends undoing its own noise (docs/training.md).
        pool_window: ``None`` (the paper: global pooling in the channel attention) or the side, in
            input pixels, of a local pooling window (test-time local statistics, see the module
            docstring); each level uses ``ceil(pool_window / its downsampling factor)``.
    The output is ``input + residual``; it is not clamped (callers clamp for display/saving).
    """

    def __init__(self, in_channels: int = 3, width: int = 16,
                 enc_blocks: Sequence[int] = (1, 1, 1, 8), middle_blocks: int = 1,
                 dec_blocks: Sequence[int] = (1, 1, 1, 1), dw_expand: int = 2, ffn_expand: int = 2,
                 pixel_unshuffle: int = 1, pad_mode: str = "reflect", identity_init: bool = True,
                 pool_window: int | None = None) -> None:
        super().__init__()
        for name, v, lo in (("in_channels", in_channels, 1), ("width", width, 1),
                            ("middle_blocks", middle_blocks, 0), ("dw_expand", dw_expand, 1),
                            ("ffn_expand", ffn_expand, 1)):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ConfigError(f"nafnet option {name}: expected an integer >= {lo}, got {v!r}")
        enc = _check_blocks("enc_blocks", enc_blocks, allow_empty=True)
        dec = _check_blocks("dec_blocks", dec_blocks, allow_empty=True)
        if len(enc) != len(dec):
            raise ConfigError(
                f"nafnet options enc_blocks {enc} and dec_blocks {dec}: must have the same length "
                "(one entry per U-Net level)")
        if pixel_unshuffle not in (1, 2, 4) or isinstance(pixel_unshuffle, bool):
            raise ConfigError(f"nafnet option pixel_unshuffle: expected 1, 2 or 4, got {pixel_unshuffle!r}")
        if pad_mode not in ("reflect", "replicate"):
            raise ConfigError(f"nafnet option pad_mode: expected 'reflect' or 'replicate', got {pad_mode!r}")
        self.in_channels = in_channels
        self.pad_mode = pad_mode
        self.multiple = pixel_unshuffle * 2 ** len(enc)

        r = pixel_unshuffle
        if r == 1:
            self.intro = nn.Conv2d(in_channels, width, 3, padding=1)
        else:
            self.intro = nn.Sequential(nn.PixelUnshuffle(r), nn.Conv2d(in_channels * r * r, width, 3, padding=1))
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        c = width
        for n in enc:
            self.encoders.append(nn.Sequential(*[NAFBlock(c, dw_expand, ffn_expand) for _ in range(n)]))
            self.downs.append(nn.Conv2d(c, 2 * c, 2, stride=2))
            c *= 2
        self.middle = nn.Sequential(*[NAFBlock(c, dw_expand, ffn_expand) for _ in range(middle_blocks)])
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for n in dec:
            self.ups.append(nn.Sequential(nn.Conv2d(c, 2 * c, 1, bias=False), nn.PixelShuffle(2)))
            c //= 2
            self.decoders.append(nn.Sequential(*[NAFBlock(c, dw_expand, ffn_expand) for _ in range(n)]))
        if r == 1:
            self.ending = nn.Conv2d(width, in_channels, 3, padding=1)
        else:
            self.ending = nn.Sequential(nn.Conv2d(width, in_channels * r * r, 3, padding=1), nn.PixelShuffle(r))
        if not isinstance(identity_init, bool):
            raise ConfigError(f"nafnet option identity_init: expected true or false, got {identity_init!r}")
        if identity_init:  # the untrained network returns its input (see the class docstring)
            last = self.ending if r == 1 else self.ending[0]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        self.pixel_unshuffle = r
        self.set_pool_window(pool_window)

    def set_pool_window(self, pool_window: int | None) -> None:
        """Global (``None``, the paper) or local ``pool_window``-pixel pooling in every block's
        channel attention; level ``i`` (downsampled by ``f``) uses ``ceil(pool_window / f)``.
        Changes no weight, so it can be switched on a trained network."""
        if pool_window is not None and (isinstance(pool_window, bool) or not isinstance(pool_window, int)
                                        or pool_window < 1):
            raise ConfigError(f"nafnet option pool_window: expected null or an integer >= 1, got {pool_window!r}")
        self.pool_window = pool_window
        r, depth = self.pixel_unshuffle, len(self.encoders)
        levels = [(blocks, r * 2 ** i) for i, blocks in enumerate(self.encoders)]
        levels.append((self.middle, r * 2 ** depth))
        levels += [(blocks, r * 2 ** (depth - 1 - j)) for j, blocks in enumerate(self.decoders)]
        for blocks, factor in levels:
            for block in blocks:
                block.pool_window = None if pool_window is None else max(1, -(-pool_window // factor))

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        ph = (self.multiple - h % self.multiple) % self.multiple
        pw = (self.multiple - w % self.multiple) % self.multiple
        mode = self.pad_mode
        if mode == "reflect" and (ph >= h or pw >= w):
            mode = "replicate"  # reflect needs the pad to be smaller than the side
        return F.pad(x, (0, pw, 0, ph), mode=mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, H, W)`` float -> ``(B, in_channels, H, W)``."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ImageError(
                f"NAFNet input: expected (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2], x.shape[-1]
        inp = self._pad(x)
        feat = self.intro(inp)
        skips = []
        for block, down in zip(self.encoders, self.downs):
            feat = block(feat)
            skips.append(feat)
            feat = down(feat)
        feat = self.middle(feat)
        for up, block, skip in zip(self.ups, self.decoders, reversed(skips)):
            feat = block(up(feat) + skip)
        out = inp + self.ending(feat)
        return out[:, :, :h, :w]
