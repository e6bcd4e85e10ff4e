"""Spatially variant RNN deblurring network (``zhang2018``).

Reference: J. Zhang, J. Pan, J. Ren, Y. Song, L. Bao, R. W. H. Lau, M.-H. Yang, "Dynamic Scene
Deblurring Using Spatially Variant Recurrent Neural Networks", CVPR 2018. Survey: Sahu, Lenka, Sa,
"Blind Deblurring using Deep Learning: A Survey" (arXiv 1907.10128), §II-B, eq. 22 (the 1-D
recurrence) and eq. 29 (its training loss, not implemented here).

The paper casts deconvolution as an infinite impulse response filter: a 1-D linear recurrence whose
weight changes at every pixel can undo a spatially varying blur with few parameters and a receptive
field as large as the image. The network has three CNNs and one RNN:

* **Feature extraction** on the blurry image: a large-kernel conv at full resolution (``F1``
  channels, LeakyReLU 0.1; 11x11 in the paper), then a strided conv to half resolution (``C``
  channels, 7x7 in the paper).
* **Weight generation** (an encoder-decoder on the image, VGG-like): four levels of 3x3 conv + ReLU
  separated by 2x2 max pooling (widths ``w, 2w, 4w, 8w``; the last conv of the bottom level returns
  to ``4w``), bilinear 2x upsampling with skip concatenation twice, back to half resolution, and a
  final conv + ``tanh`` giving ``4 * rnn_layers * C`` maps: one weight map ``p`` in (-1, 1) per
  channel, direction and RNN layer.
* **Spatially variant RNN**: ``rnn_layers`` layers; each runs the recurrence of eq. 22,

      h[k] = (1 - p[k]) * x[k] + p[k] * h[k - 1],        h[-1] = 0,

  over the feature map in four directions (left-to-right, right-to-left, top-to-bottom,
  bottom-to-top), each direction with its own weights; the four results are concatenated and fused
  by a 3x3 conv (+ LeakyReLU 0.1) back to ``C`` channels.
* **Reconstruction**: concatenation with the half-resolution features (skip), a large-kernel conv
  to ``F1`` channels (9x9 in the paper, LeakyReLU 0.1), bilinear 2x upsampling, concatenation with the
  full-resolution features (skip) and a conv to the image channels (5x5 in the paper).

Layer sizes of the ``"paper"`` size follow the authors' released network definition
(zhjwustc/cvpr18_rnn_deblur_matcaffe, ``matlab/test/model/test.prototxt``: F1 = 16, C = 32, four RNN
layers, weight-generation widths 64-128-256-512, 512 = 4 x 4 x 32 weight maps). There the gate layer
computes exactly eq. 22 with linear activation and no learned recurrent matrices; the output is the
image itself (no global residual), which is our default; ``global_residual=True`` adds the input
(deblurkit's option, not the paper's). The released network takes the skip of the third
weight-generation level after its second conv; ours takes it after the level's last conv (same
parameter count). Written for deblurkit from those facts; no code was copied.

:func:`spatially_variant_rnn` is the pure recurrence (a loop over the scanned axis, vectorised over
batch, channels and the other axis) with an analytic backward pass (the adjoint recurrence run
in the opposite direction), so that training does not record one autograd node per pixel column.

Any ``H x W`` is accepted: the input is padded (reflect; replicate when too small) to a multiple of
8 (three poolings in the weight-generation net) and the output cropped back.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, ImageError

__all__ = ["DIRECTIONS", "spatially_variant_rnn", "SpatiallyVariantRNNLayer", "ZhangSVRNN"]

#: The four scan directions of the paper, in the order used for the weight maps.
DIRECTIONS = ("left_to_right", "right_to_left", "top_to_bottom", "bottom_to_top")


# ---------------------------------------------------------------------------------------------
# The recurrence (survey eq. 22)

def _scan(a: torch.Tensor, p: torch.Tensor, reverse: bool) -> torch.Tensor:
    """First-order linear recurrence along dim 2 of ``(B, C, T, L)`` tensors.

    Forward (``reverse=False``): ``h[t] = a[t] + p[t] * h[t-1]`` for ``t = 0 .. T-1``, ``h[-1] = 0``;
    reverse: ``h[t] = a[t] + p[t] * h[t+1]`` for ``t = T-1 .. 0``, ``h[T] = 0``. A loop over ``T``,
    each step one fused multiply-add on a ``(B, C, L)`` slice.
    """
    out = torch.empty_like(a)
    steps = range(a.shape[2] - 1, -1, -1) if reverse else range(a.shape[2])
    h = None
    for t in steps:
        a_t = a[:, :, t]
        h = a_t if h is None else torch.addcmul(a_t, p[:, :, t], h)
        out[:, :, t] = h
    return out


def _previous(t: torch.Tensor, reverse: bool) -> torch.Tensor:
    """``t`` at the previous step of the scan order along dim 2 (zeros at the first step)."""
    zero = torch.zeros_like(t[:, :, :1])
    if reverse:
        return torch.cat([t[:, :, 1:], zero], dim=2)   # t[k + 1]
    return torch.cat([zero, t[:, :, :-1]], dim=2)       # t[k - 1]


class _LinearScan(torch.autograd.Function):
    """Autograd for :func:`_scan`. The adjoint of a first-order linear recurrence is the same
    recurrence run in the opposite direction with the weights moved by one step: for a forward scan
    ``g[t] = dL/dh[t] + p[t+1] * g[t+1]``; then ``dL/da = g`` and ``dL/dp[t] = g[t] * h[t-1]``.
    Written with differentiable tensor ops, so double backward works too."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, p: torch.Tensor, reverse: bool) -> torch.Tensor:  # type: ignore[override]
        h = _scan(a, p, reverse)
        ctx.save_for_backward(p, h)
        ctx.reverse = reverse
        return h

    @staticmethod
    def backward(ctx, grad_h: torch.Tensor):  # type: ignore[override]
        p, h = ctx.saved_tensors
        reverse = ctx.reverse
        # weight linking g[t] to its predecessor in the opposite scan order
        g = _LinearScan.apply(grad_h.contiguous(), _previous(p, not reverse), not reverse)
        return g, g * _previous(h, reverse), None


def spatially_variant_rnn(x: torch.Tensor, p: torch.Tensor, direction: str) -> torch.Tensor:
    """The spatially variant 1-D linear recurrence of survey eq. 22 (Zhang et al. 2018, eq. 3).

    Along each row (horizontal directions) or column (vertical directions), in scan order
    ``k = 0, 1, ...``::

        h[k] = (1 - p[k]) * x[k] + p[k] * h[k - 1],    h[-1] = 0

    independently for every batch item, channel and row/column.

    Args:
        x: ``(B, C, H, W)`` float features (any range).
        p: ``(B, C, H, W)`` weights, same shape/dtype/device as ``x``; the network produces them
            in (-1, 1) by ``tanh``, which keeps the recurrence stable (|p| < 1).
        direction: one of :data:`DIRECTIONS` (``"left_to_right"``: k runs along increasing W;
            ``"right_to_left"``; ``"top_to_bottom"``: along increasing H; ``"bottom_to_top"``).

    Returns:
        ``(B, C, H, W)`` hidden states ``h``, same dtype as ``x``. Differentiable in ``x`` and ``p``.
    """
    if direction not in DIRECTIONS:
        raise ConfigError(f"spatially_variant_rnn direction: expected one of {', '.join(DIRECTIONS)}, "
                          f"got {direction!r}")
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ImageError(f"spatially_variant_rnn x: expected a (B, C, H, W) tensor, got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    if not isinstance(p, torch.Tensor) or p.shape != x.shape:
        raise ImageError(f"spatially_variant_rnn p: expected the shape of x {tuple(x.shape)}, got "
                         f"{tuple(p.shape) if isinstance(p, torch.Tensor) else type(p).__name__}")
    if p.dtype != x.dtype or p.device != x.device:
        raise ImageError(f"spatially_variant_rnn p: dtype/device {p.dtype}/{p.device} differ from "
                         f"x's {x.dtype}/{x.device}")
    a = (1 - p) * x  # the input term of eq. 22, computed for all pixels at once
    reverse = direction in ("right_to_left", "bottom_to_top")
    if direction in ("top_to_bottom", "bottom_to_top"):  # scan along H (dim 2) directly
        return _LinearScan.apply(a.contiguous(), p.contiguous(), reverse)
    # scan along W: transpose so that the scanned axis is dim 2, then transpose back (a view)
    h = _LinearScan.apply(a.transpose(2, 3).contiguous(), p.transpose(2, 3).contiguous(), reverse)
    return h.transpose(2, 3)


# ---------------------------------------------------------------------------------------------
# Network

def _check_int(name: str, value: object, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ConfigError(f"zhang2018 option {name}: expected an integer >= {lo}, got {value!r}")
    return value


def _check_kernels(name: str, value: object, n: int) -> list[int]:
    if isinstance(value, (str, int)) or not isinstance(value, Sequence) or len(value) != n:
        raise ConfigError(f"zhang2018 option {name}: expected a list of {n} odd kernel sizes, got {value!r}")
    out = list(value)
    for k in out:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0:
            raise ConfigError(f"zhang2018 option {name}: kernel sizes must be odd integers >= 1, got {value!r}")
    return out


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)


class SpatiallyVariantRNNLayer(nn.Module):
    """One RNN layer: eq. 22 in the four :data:`DIRECTIONS`, concatenation, 3x3 conv fusion.

    ``forward(x, gates)``: ``x`` ``(B, C, H, W)``, ``gates`` ``(B, 4C, H, W)`` in (-1, 1) (one
    ``C``-channel weight map per direction, in :data:`DIRECTIONS` order) -> ``(B, C, H, W)``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.fuse = nn.Conv2d(4 * channels, channels, 3, padding=1)
        self.act = nn.LeakyReLU(0.1)

    def forward(self, x: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        ps = gates.split(self.channels, dim=1)
        hs = [spatially_variant_rnn(x, p, d) for p, d in zip(ps, DIRECTIONS)]
        return self.act(self.fuse(torch.cat(hs, dim=1)))


class ZhangSVRNN(nn.Module):
    """Zhang et al. (CVPR 2018) deblurring network: ``(B, C, H, W)`` in [0, 1] -> same shape.

    Args:
        in_channels: image channels (3 for RGB, 1 for grey); the output has as many.
        feat_channels: ``F1``, channels of the full-resolution feature conv and of the last
            decoder conv before upsampling (paper 16).
        rnn_channels: ``C``, channels of the half-resolution features the RNN filters (paper 32).
        rnn_layers: spatially variant RNN layers in sequence (paper 4).
        feat_kernels: kernel sizes of the two feature-extraction convs (paper ``[11, 7]``).
        dec_kernels: kernel sizes of the two reconstruction convs (paper ``[9, 5]``).
        guide_width: ``w``, width of the first weight-generation level (paper 64).
        guide_convs: 3x3 convs in each of the four weight-generation levels (paper ``[2, 2, 3, 3]``).
        gate_kernel: kernel size of the conv producing the RNN weights (paper 3).
        global_residual: add the input to the output (False in the paper).
        pad_mode: ``"reflect"`` (falls back to ``"replicate"`` when the image is too small) or
            ``"replicate"``, to pad to a multiple of 8.

    The output is not clamped (callers clamp for display/saving).
    """

    multiple = 8

    def __init__(self, in_channels: int = 3, feat_channels: int = 16, rnn_channels: int = 32,
                 rnn_layers: int = 4, feat_kernels: Sequence[int] = (11, 7),
                 dec_kernels: Sequence[int] = (9, 5), guide_width: int = 64,
                 guide_convs: Sequence[int] = (2, 2, 3, 3), gate_kernel: int = 3,
                 global_residual: bool = False, pad_mode: str = "reflect") -> None:
        super().__init__()
        for name, v in (("in_channels", in_channels), ("feat_channels", feat_channels),
                        ("rnn_channels", rnn_channels), ("rnn_layers", rnn_layers),
                        ("guide_width", guide_width)):
            _check_int(name, v, 1)
        fk = _check_kernels("feat_kernels", feat_kernels, 2)
        dk = _check_kernels("dec_kernels", dec_kernels, 2)
        if isinstance(gate_kernel, bool) or not isinstance(gate_kernel, int) or gate_kernel < 1 or gate_kernel % 2 == 0:
            raise ConfigError(f"zhang2018 option gate_kernel: expected an odd integer >= 1, got {gate_kernel!r}")
        gk = gate_kernel
        if (isinstance(guide_convs, (str, int)) or not isinstance(guide_convs, Sequence)
                or len(guide_convs) != 4
                or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in guide_convs)):
            raise ConfigError(f"zhang2018 option guide_convs: expected 4 integers >= 1 (convs per "
                              f"weight-generation level), got {guide_convs!r}")
        if not isinstance(global_residual, bool):
            raise ConfigError(f"zhang2018 option global_residual: expected true or false, got {global_residual!r}")
        if pad_mode not in ("reflect", "replicate"):
            raise ConfigError(f"zhang2018 option pad_mode: expected 'reflect' or 'replicate', got {pad_mode!r}")
        self.in_channels = in_channels
        self.rnn_channels = rnn_channels
        self.rnn_layers = rnn_layers
        self.global_residual = global_residual
        self.pad_mode = pad_mode
        f1, c, w = feat_channels, rnn_channels, guide_width

        # feature extraction: full resolution, then half resolution
        self.feat1 = _conv(in_channels, f1, fk[0])
        self.feat2 = _conv(f1, c, fk[1], stride=2)
        self.lrelu = nn.LeakyReLU(0.1)

        # weight generation: encoder (levels at 1, 1/2, 1/4, 1/8), decoder back to 1/2
        widths = [w, 2 * w, 4 * w, 8 * w]
        self.guide_levels = nn.ModuleList()
        cin = in_channels
        for level, (width, n) in enumerate(zip(widths, guide_convs)):
            layers: list[nn.Module] = []
            for i in range(n):
                # the bottom level's last conv returns to the third level's width for the concat
                cout = widths[2] if (level == 3 and i == n - 1) else width
                layers += [_conv(cin, cout, 3), nn.ReLU()]
                cin = cout
            self.guide_levels.append(nn.Sequential(*layers))
        self.guide_dec1 = nn.Sequential(_conv(2 * widths[2], widths[1], 3), nn.ReLU(),
                                        _conv(widths[1], widths[1], 3), nn.ReLU())
        self.guide_dec2 = nn.Sequential(_conv(2 * widths[1], widths[2], 3), nn.ReLU())
        self.gates = _conv(widths[2], 4 * rnn_layers * c, gk)  # tanh applied in forward

        # spatially variant RNN (eq. 22), four directions per layer, conv fusion
        self.rnns = nn.ModuleList([SpatiallyVariantRNNLayer(c) for _ in range(rnn_layers)])

        # reconstruction with skips from both feature levels
        self.dec1 = _conv(2 * c, f1, dk[0])
        self.dec2 = _conv(2 * f1, in_channels, dk[1])

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        ph = (self.multiple - h % self.multiple) % self.multiple
        pw = (self.multiple - w % self.multiple) % self.multiple
        mode = self.pad_mode
        if mode == "reflect" and (ph >= h or pw >= w):
            mode = "replicate"  # reflect needs the pad to be smaller than the side
        return F.pad(x, (0, pw, 0, ph), mode=mode)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """RNN weights from the padded image ``(B, in, H, W)`` (H, W multiples of 8):
        ``(B, 4 * rnn_layers * C, H/2, W/2)`` in (-1, 1); layer ``l``, direction ``d`` (index in
        :data:`DIRECTIONS`) owns channels ``[(4 l + d) C, (4 l + d + 1) C)``."""
        skips = []
        g = x
        for i, level in enumerate(self.guide_levels):
            if i > 0:
                g = F.max_pool2d(g, 2)
            g = level(g)
            skips.append(g)
        up = lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)  # noqa: E731
        g = self.guide_dec1(torch.cat([skips[2], up(g)], dim=1))   # 1/4
        g = self.guide_dec2(torch.cat([skips[1], up(g)], dim=1))   # 1/2
        return torch.tanh(self.gates(g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, H, W)`` float -> ``(B, in_channels, H, W)``."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ImageError(f"ZhangSVRNN input: expected (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2], x.shape[-1]
        inp = self._pad(x)
        f_full = self.lrelu(self.feat1(inp))          # (B, F1, H, W)
        f_half = self.feat2(f_full)                    # (B, C, H/2, W/2), no activation (as released)
        gates = self.weights(inp).split(4 * self.rnn_channels, dim=1)
        r = f_half
        for rnn, g in zip(self.rnns, gates):
            r = rnn(r, g)
        d = self.lrelu(self.dec1(torch.cat([f_half, r], dim=1)))
        d = F.interpolate(d, scale_factor=2, mode="bilinear", align_corners=False)
        out = self.dec2(torch.cat([f_full, d], dim=1))
        if self.global_residual:
            out = out + inp
        return out[:, :, :h, :w]
