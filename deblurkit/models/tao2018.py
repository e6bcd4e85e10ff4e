"""SRN-DeblurNet: the scale-recurrent network of Tao, Gao, Shen, Wang, Jia (CVPR 2018).

Reference: X. Tao, H. Gao, X. Shen, J. Wang, J. Jia, "Scale-recurrent Network for Deep Image
Deblurring", CVPR 2018 (arXiv 1802.01770). Survey: Sahu, Lenka, Sa, "Blind Deblurring using Deep
Learning: A Survey", arXiv 1907.10128, §II-B, eq. 18-19 (the network) and eq. 20 (its multi-scale
Euclidean loss, :func:`deblurkit.train.losses.multiscale_euclidean_loss`).

The scale recurrence (survey eq. 18-19), for scales ``i = n, ..., 1`` (coarse to fine)::

    I_i, h_i = Net_SR(B_i, up(I_{i+1}), up(h_{i+1}); theta_SR)                       (18)
    Net_SR:  f_i = Net_E(B_i, up(I_{i+1}); theta_E)
             h_i, g_i = ConvLSTM(up(h_{i+1}), f_i; theta_LSTM)
             I_i = Net_D(g_i; theta_D)                                                (19)

with the SAME parameters ``theta_E, theta_LSTM, theta_D`` at every scale (weight sharing), ``up``
a bilinear upsampling by 2 and, at the coarsest scale, ``I_{n+1}`` taken as the blurred image itself
and ``h_{n+1} = 0``.

Structure (written for deblurkit from the paper's Fig. 3 and the layer list of the authors' released
code, jiangsutx/SRN-Deblur ``models/model.py``):

* Encoder ``Net_E``: InBlock = ``kernel_size`` conv (2C image channels -> ``channels[0]``) + ReLU +
  ``n_resblocks`` ResBlocks; then for each further level an EBlock = stride-2 conv + ReLU +
  ``n_resblocks`` ResBlocks (channels 32 / 64 / 128 in the paper).
* Recurrent module at the bottleneck: the submodule is named ``recurrent`` (so that the training
  engine's ``optim.clip_modules: {recurrent: 3.0}`` clips it alone, as the authors clip the LSTM
  gradients to global norm 3): ``"convlstm"`` (the paper; gates ``i, j, f, o`` from one conv over
  ``[x, h]``, forget-gate bias +1, ``tanh`` activations, output ``h``), ``"convgru"``, ``"rnn"``
  (``h = tanh(conv([x, h]))``) or ``"none"`` (identity, no parameters, no state).
* Decoder ``Net_D``: for each level below the top a DBlock = ``n_resblocks`` ResBlocks + 4x4
  stride-2 transposed conv + ReLU, added to the encoder features of the level above (skip
  connections by addition); OutBlock = ``n_resblocks`` ResBlocks + ``kernel_size`` conv to C.
* ResBlocks are Nah et al.'s (conv-ReLU-conv + identity, :class:`deblurkit.models.nah2017.ResBlock`).
* As the released code, the upsampled previous estimate is detached from the graph
  (``detach_prev=True``), each scale is trained by its own term of eq. 20, and the output is the
  image itself (no global skip; ``global_residual=True`` is a deblurkit option adding ``B_i``).

deblurkit's conventions: the blurred pyramid ``B_i`` is the padded input resized bilinearly
(``align_corners=False``, no antialiasing: the resize of :func:`deblurkit.train.losses.target_pyramid`,
a 2x2 mean at 1/2); any ``H x W`` is padded (bottom/right) to a multiple of
``2 ** (n_scales - 1 + len(channels) - 1)`` and output ``k`` (0 = finest) cropped to
``(ceil(H / 2**k), ceil(W / 2**k))``; the model returns the list FINEST FIRST (``out[0]`` is the
prediction).

Parameter counts (layer by layer in tests/models/test_tao2018.py). The paper's figure for its final
structure is Table 1's 3.76 M (SR-EDRB3: 3 ResBlocks per block, ConvLSTM). The authors
state (jiangsutx/SRN-Deblur issue #48, 2019-12-16) that Table 1's models use 3x3 convolutions "for
fast experiments" and the released models 5x5; the same structure with 3x3 kernels
(:data:`TABLE1_SIZE`: the paper size with ``kernel_size=3``; 4x4 transposed convs and the 3x3
ConvLSTM unchanged) has 3,764,195 parameters in RGB and 3,762,465 in grey (the paper trains on grey
images): Table 1's 3.76 M, +0.1 %. The ``"paper"`` size registered here is the configuration of the
paper's comparisons and of the authors' ``--model=lstm`` release ("exactly the same structure in
our paper", the authors' README): 5x5 kernels, 8,061,411 parameters in RGB, 8,056,609 in grey
(32.2 MB as float32: the 30.7 MiB of the released lstm checkpoint, jiangsutx/SRN-Deblur issue #20).
The paper
states no count for it; it is 2.14 x Table 1's figure because 5x5 kernels hold 25/9 the weights of
3x3 ones (the ConvLSTM's 1.18 M stay the same). The 6.8 M usually quoted is the released models
without the LSTM (``--model=gray`` / ``color``): 6,876,449 in grey (the count reported in
jiangsutx/SRN-Deblur issue #57), 6,881,251 in RGB (``recurrent="none"``). No faithful layer change
brings the 5x5 model within 10 % of 3.76 M: the paper's figure describes the 3x3 variant, which
this structure matches.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .nah2017 import ResBlock, check_image_batch, check_int, crop_outputs, pad_to_multiple

__all__ = ["ConvLSTMCell", "ConvGRUCell", "ConvRNNCell", "NoRecurrence", "SRNDeblurNet",
           "RECURRENT", "resize", "PAPER", "PAPER_SIZE", "TABLE1_SIZE", "CPU_SIZE", "TINY_SIZE",
           "DEFAULTS"]

PAPER = ("X. Tao, H. Gao, X. Shen, J. Wang, J. Jia, Scale-recurrent Network for Deep Image "
         "Deblurring, CVPR 2018")
# Named sizes (option overrides) for the registry. The paper's: 3 scales, channels 32/64/128,
# 3 ResBlocks per block, 5x5 kernels, ConvLSTM (3x3 in the authors' code). The CPU size keeps the
# structure, kernels and ConvLSTM with channels 8/16/32 and 2 ResBlocks per block (0.37 M
# parameters, 57 GMAC at 1280x720). The tiny size is for tests and smoke runs.
PAPER_SIZE = {"n_scales": 3, "channels": [32, 64, 128], "n_resblocks": 3, "kernel_size": 5,
              "recurrent": "convlstm", "rnn_kernel": 3}
# The paper's Table 1 models (its parameter figure for this structure, 3.76 M): 3x3 convolutions.
TABLE1_SIZE = {**PAPER_SIZE, "kernel_size": 3}
CPU_SIZE = {"n_scales": 3, "channels": [8, 16, 32], "n_resblocks": 2, "kernel_size": 5,
            "recurrent": "convlstm", "rnn_kernel": 3}
TINY_SIZE = {"n_scales": 3, "channels": [4, 8, 8], "n_resblocks": 1, "kernel_size": 3,
             "recurrent": "convlstm", "rnn_kernel": 3}
# Every option the registry accepts, with the CPU size as the default.
DEFAULTS = {"in_channels": 3, **CPU_SIZE, "detach_prev": True, "global_residual": False,
            "pad_mode": "reflect"}

State = tuple[torch.Tensor, ...] | None


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``(B, C, H, W)`` to ``size`` (``align_corners=False``, no antialiasing);
    returns ``x`` itself when it already has that size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


# ------------------------------------------------------------------------------ recurrent cells
# Every cell maps (x (B, C, h, w), state) -> (output (B, C, h, w), new state); ``state=None`` means
# zeros. A state is a tuple of (B, C, h, w) tensors, resized bilinearly between scales.

class ConvLSTMCell(nn.Module):
    """Convolutional LSTM (Shi et al. 2015, as in Tao et al.'s code): with ``z = conv([x, h])``
    split into ``i, j, f, o``::

        c' = c * sigmoid(f + forget_bias) + sigmoid(i) * tanh(j)
        h' = tanh(c') * sigmoid(o)

    Output ``h'``; state ``(c', h')``. ``(B, C, H, W)`` in and out.
    """

    def __init__(self, channels: int, kernel_size: int = 3, forget_bias: float = 1.0) -> None:
        super().__init__()
        self.channels = channels
        self.forget_bias = float(forget_bias)
        self.conv = nn.Conv2d(2 * channels, 4 * channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        if state is None:
            c = h = torch.zeros_like(x)
        else:
            c, h = state
        i, j, f, o = self.conv(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = c * torch.sigmoid(f + self.forget_bias) + torch.sigmoid(i) * torch.tanh(j)
        h = torch.tanh(c) * torch.sigmoid(o)
        return h, (c, h)


class ConvGRUCell(nn.Module):
    """Convolutional GRU (Ballas et al. 2016): ``u, r = sigmoid(conv([x, h]))``,
    ``n = tanh(conv([x, r * h]))``, ``h' = (1 - u) * h + u * n``. Output and state ``h'``."""

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.channels = channels
        p = kernel_size // 2
        self.gates = nn.Conv2d(2 * channels, 2 * channels, kernel_size, padding=p)
        self.candidate = nn.Conv2d(2 * channels, channels, kernel_size, padding=p)

    def forward(self, x: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        h = torch.zeros_like(x) if state is None else state[0]
        u, r = torch.sigmoid(self.gates(torch.cat([x, h], dim=1))).chunk(2, dim=1)
        n = torch.tanh(self.candidate(torch.cat([x, r * h], dim=1)))
        h = (1 - u) * h + u * n
        return h, (h,)


class ConvRNNCell(nn.Module):
    """Plain convolutional RNN: ``h' = tanh(conv([x, h]))``. Output and state ``h'``."""

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.channels = channels
        self.conv = nn.Conv2d(2 * channels, channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        h = torch.zeros_like(x) if state is None else state[0]
        h = torch.tanh(self.conv(torch.cat([x, h], dim=1)))
        return h, (h,)


class NoRecurrence(nn.Module):
    """No recurrent module (SRN's released RGB model): the bottleneck passes through; no state."""

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, x: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        return x, None


RECURRENT: dict[str, type[nn.Module]] = {
    "convlstm": ConvLSTMCell, "convgru": ConvGRUCell, "rnn": ConvRNNCell, "none": NoRecurrence,
}


# ------------------------------------------------------------------------------------ the network

def _res_blocks(channels: int, n: int, kernel_size: int) -> nn.Sequential:
    return nn.Sequential(*[ResBlock(channels, kernel_size) for _ in range(n)])


class SRNDeblurNet(nn.Module):
    """Tao et al. 2018 scale-recurrent network: ``(B, C, H, W)`` in [0, 1] -> list of ``n_scales``
    tensors ``(B, C, ceil(H/2**k), ceil(W/2**k))``, ``k = 0`` (finest, the prediction) first.

    Args:
        in_channels: image channels ``C``.
        n_scales: number of scales (3 in the paper, ratio 1/2 between them).
        channels: channels of the encoder levels, top first (``[32, 64, 128]`` in the paper); each
            further level halves the resolution.
        n_resblocks: ResBlocks in each InBlock / EBlock / DBlock / OutBlock (3 in the paper).
        kernel_size: odd kernel size of the convs and ResBlocks (5 in the paper).
        recurrent: ``"convlstm"`` (paper), ``"convgru"``, ``"rnn"`` or ``"none"``.
        rnn_kernel: odd kernel size of the recurrent cell's convs (3 in the authors' code).
        detach_prev: detach the upsampled previous estimate from the graph (the authors' code).
        global_residual: add ``B_i`` to each scale's output (deblurkit option; the paper: False).
        pad_mode: ``"reflect"`` or ``"replicate"``.

    The same modules (hence the same parameters) run at every scale: the parameter count does not
    depend on ``n_scales``. Outputs are not clamped.
    """

    def __init__(self, in_channels: int = 3, n_scales: int = 3,
                 channels: Sequence[int] = (32, 64, 128), n_resblocks: int = 3,
                 kernel_size: int = 5, recurrent: str = "convlstm", rnn_kernel: int = 3,
                 detach_prev: bool = True, global_residual: bool = False,
                 pad_mode: str = "reflect") -> None:
        super().__init__()
        name = "tao2018"
        check_int(name, "in_channels", in_channels, 1)
        check_int(name, "n_scales", n_scales, 1)
        check_int(name, "n_resblocks", n_resblocks, 0)
        for opt, k in (("kernel_size", kernel_size), ("rnn_kernel", rnn_kernel)):
            if check_int(name, opt, k, 1) % 2 == 0:
                raise ConfigError(f"{name} option {opt}: expected an odd kernel size, got {k}")
        if isinstance(channels, (str, int)) or not isinstance(channels, Sequence) or not channels \
                or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in channels):
            raise ConfigError(f"{name} option channels: expected a non-empty list of integers >= 1, "
                              f"got {channels!r}")
        if recurrent not in RECURRENT:
            raise ConfigError(f"{name} option recurrent: expected one of {', '.join(RECURRENT)}, "
                              f"got {recurrent!r}")
        for opt, v in (("detach_prev", detach_prev), ("global_residual", global_residual)):
            if not isinstance(v, bool):
                raise ConfigError(f"{name} option {opt}: expected true or false, got {v!r}")
        if pad_mode not in ("reflect", "replicate"):
            raise ConfigError(f"{name} option pad_mode: expected 'reflect' or 'replicate', got {pad_mode!r}")
        ch = list(channels)
        self.in_channels = in_channels
        self.n_scales = n_scales
        self.depth = len(ch) - 1  # number of stride-2 levels inside the encoder-decoder
        self.detach_prev = detach_prev
        self.global_residual = global_residual
        self.pad_mode = pad_mode
        self.multiple = 2 ** (n_scales - 1 + self.depth)
        k, p = kernel_size, kernel_size // 2

        # Net_E (eq. 19): InBlock then EBlocks.
        self.in_block = nn.Sequential(nn.Conv2d(2 * in_channels, ch[0], k, padding=p), nn.ReLU(),
                                      _res_blocks(ch[0], n_resblocks, k))
        self.enc_blocks = nn.ModuleList([
            nn.Sequential(nn.Conv2d(ch[i], ch[i + 1], k, stride=2, padding=p), nn.ReLU(),
                          _res_blocks(ch[i + 1], n_resblocks, k))
            for i in range(self.depth)])
        # The recurrent module at the bottleneck (eq. 19); name used by optim.clip_modules.
        self.recurrent = RECURRENT[recurrent](ch[-1], rnn_kernel)
        # Net_D (eq. 19): DBlocks, listed from the bottleneck up, then OutBlock.
        self.dec_blocks = nn.ModuleList([
            nn.Sequential(_res_blocks(ch[i + 1], n_resblocks, k),
                          nn.ConvTranspose2d(ch[i + 1], ch[i], 4, stride=2, padding=1), nn.ReLU())
            for i in reversed(range(self.depth))])
        self.out_block = nn.Sequential(_res_blocks(ch[0], n_resblocks, k),
                                       nn.Conv2d(ch[0], in_channels, k, padding=p))

    def step(self, blur: torch.Tensor, prev: torch.Tensor,
             state: State) -> tuple[torch.Tensor, State]:
        """One scale of eq. 18: ``(B_i, up(I_{i+1}), up(h_{i+1})) -> (I_i, h_i)``.

        ``blur`` and ``prev`` are ``(B, C, h, w)`` with ``h, w`` multiples of ``2 ** depth``;
        ``state`` is ``None`` (zeros) or the recurrent state at ``(h, w) / 2 ** depth``.
        """
        feat = self.in_block(torch.cat([blur, prev], dim=1))
        skips = [feat]
        for block in self.enc_blocks:
            feat = block(feat)
            skips.append(feat)
        feat, state = self.recurrent(feat, state)
        for block, skip in zip(self.dec_blocks, reversed(skips[:-1])):
            feat = block(feat) + skip
        out = self.out_block(feat)
        if self.global_residual:
            out = out + blur
        return out, state

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``(B, C, H, W)`` -> ``[I_1 (full size), I_2 (1/2), ..., I_n]`` (finest first)."""
        check_image_batch("SRNDeblurNet", x, self.in_channels)
        h, w = x.shape[-2], x.shape[-1]
        xp = pad_to_multiple(x, self.multiple, self.pad_mode)
        hp, wp = xp.shape[-2], xp.shape[-1]
        outs: list[torch.Tensor] = [x] * self.n_scales  # placeholders, all overwritten
        prev: torch.Tensor | None = None
        state: State = None
        for s in range(self.n_scales - 1, -1, -1):  # coarse to fine, shared weights (eq. 18)
            size = (hp // 2 ** s, wp // 2 ** s)
            blur = resize(xp, size)
            prev = blur if prev is None else resize(prev, size)
            if self.detach_prev:
                prev = prev.detach()
            if state is not None:  # hidden state upsampled to this scale's bottleneck
                bottleneck = (size[0] // 2 ** self.depth, size[1] // 2 ** self.depth)
                state = tuple(resize(t, bottleneck) for t in state)
            prev, state = self.step(blur, prev, state)
            outs[s] = prev
        return crop_outputs(outs, h, w)
