"""DeepDeblur: the multi-scale CNN of Nah, Kim, Lee (CVPR 2017).

Reference: S. Nah, T. H. Kim, K. M. Lee, "Deep Multi-scale Convolutional Neural Network for Dynamic
Scene Deblurring", CVPR 2017 (arXiv 1612.02177). Survey: Sahu, Lenka, Sa, "Blind Deblurring using
Deep Learning: A Survey", arXiv 1907.10128, §II-B; its eq. 23 is this network's multi-scale content
loss (:func:`deblurkit.train.losses.multiscale_content_loss`) and eq. 24-26 its adversarial terms.

Structure (written for deblurkit from the paper's description, Fig. 3-4):

* Input: a ``K``-level Gaussian pyramid of the blurred image ``B_1 (full), B_2 (1/2), ..., B_K``
  (:func:`gaussian_pyramid`, the pyramid of ``skimage.transform.pyramid_gaussian`` that the
  authors' PyTorch port builds: Gaussian ``sigma = 2/3`` then a 2x2 mean per level).
* Each scale ``k`` has its own network (weights NOT shared across scales): a ``kernel_size`` conv
  to ``channels`` features, ``n_resblocks`` ResBlocks (conv-ReLU-conv plus identity, no batch
  norm, no ReLU after the addition; paper Fig. 3b) and a conv back to the image channels.
* Coarse to fine (paper Fig. 4): the coarsest network sees ``B_K``; the latent image ``L_{k+1}``
  of a coarser scale is "up-convolved" (a 5x5 transposed convolution of stride 2, image channels
  to image channels) to the next finer size and concatenated with ``B_k`` as that scale's input.
* The survey's eq. 23 compares every ``L_k`` with the sharp pyramid ``S_k``.

deblurkit's conventions (not in the paper):

* Values are centred: the networks see ``B_k - 0.5`` and return ``L_k - 0.5`` (the authors'
  PyTorch port subtracts half the range likewise); ``global_residual=True`` adds ``B_k`` to each
  scale's output as well (the paper has no global skip; the option helps short CPU trainings).
* Any ``H x W``: the input is padded at the bottom/right (reflect, or replicate when too small to
  reflect) to a multiple of ``2 ** (n_scales - 1)``; the pyramid is built from the padded image;
  output ``k`` (0 = finest) is cropped to ``(ceil(H / 2**k), ceil(W / 2**k))``. For sides that are
  multiples of ``2 ** (n_scales - 1)`` nothing is padded and the coarse outputs are exactly aligned
  with a 2x2-mean target pyramid (:func:`deblurkit.train.losses.target_pyramid`).
* The model returns a list of ``n_scales`` tensors, FINEST FIRST (``out[0]`` is the prediction).

Paper size: 3 scales, 64 channels, 19 ResBlocks per scale, 5x5 kernels: 11,719,953 parameters
(the 11.7 M usually quoted for DeepDeblur; the layer count is derived from the authors' released
code in tests/models/test_nah2017.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, ImageError

__all__ = ["ResBlock", "DeepDeblur", "gaussian_pyramid", "gaussian_kernel_1d", "pad_to_multiple",
           "crop_outputs", "check_int", "check_image_batch",
           "PAPER", "PAPER_SIZE", "CPU_SIZE", "TINY_SIZE", "DEFAULTS"]

PAPER = ("S. Nah, T. H. Kim, K. M. Lee, Deep Multi-scale Convolutional Neural Network for Dynamic "
         "Scene Deblurring, CVPR 2017")
# Named sizes (option overrides) for the registry. The paper's: 3 scales, 64 channels, 19 ResBlocks,
# 5x5 kernels (paper §3; DeepDeblur-PyTorch src/option.py defaults). The CPU size keeps the paper's
# 3 scales and 5x5 kernels with 16 channels and 4 ResBlocks per scale (0.16 M parameters, 66 GMAC at
# 1280x720). The tiny size is for tests and smoke runs.
PAPER_SIZE = {"n_scales": 3, "channels": 64, "n_resblocks": 19, "kernel_size": 5}
CPU_SIZE = {"n_scales": 3, "channels": 16, "n_resblocks": 4, "kernel_size": 5}
TINY_SIZE = {"n_scales": 3, "channels": 4, "n_resblocks": 1, "kernel_size": 3}
# Every option the registry accepts, with the CPU size as the default.
DEFAULTS = {"in_channels": 3, **CPU_SIZE, "upconv_kernel": 5, "pyramid_sigma": 2.0 / 3.0,
            "global_residual": False, "pad_mode": "reflect"}


# --------------------------------------------------------------------------------------- helpers

def check_int(model: str, name: str, value: object, lo: int) -> int:
    """``value`` as an int ``>= lo``, else :class:`ConfigError` naming ``model option name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ConfigError(f"{model} option {name}: expected an integer >= {lo}, got {value!r}")
    return value


def check_image_batch(model: str, x: object, channels: int) -> torch.Tensor:
    """Refuse anything but a floating ``(B, channels, H, W)`` tensor, naming the model's input."""
    if not isinstance(x, torch.Tensor):
        raise ImageError(f"{model} input: expected a torch tensor, got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != channels:
        raise ImageError(f"{model} input: expected (B, {channels}, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ImageError(f"{model} input: expected a floating dtype, got {x.dtype}")
    if x.shape[-2] < 1 or x.shape[-1] < 1 or x.shape[0] < 1:
        raise ImageError(f"{model} input: empty tensor of shape {tuple(x.shape)}")
    return x


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "reflect") -> torch.Tensor:
    """Pad ``(B, C, H, W)`` at the bottom and right so that ``H`` and ``W`` are multiples of ``multiple``.

    ``mode``: ``"reflect"`` (falls back to ``"replicate"`` when a side is too small to reflect, i.e.
    the pad is not smaller than the side) or ``"replicate"``. Returns the input itself when no pad is
    needed. Same dtype and device.
    """
    h, w = x.shape[-2], x.shape[-1]
    ph = (multiple - h % multiple) % multiple
    pw = (multiple - w % multiple) % multiple
    if ph == 0 and pw == 0:
        return x
    if mode == "reflect" and (ph >= h or pw >= w):
        mode = "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def crop_outputs(outs: list[torch.Tensor], h: int, w: int) -> list[torch.Tensor]:
    """Crop a finest-first list: output ``k`` to ``(ceil(h / 2**k), ceil(w / 2**k))``."""
    # integer ceil division (not math.ceil) so that a traced ONNX export keeps H and W dynamic
    return [o[:, :, :(h + 2 ** k - 1) // 2 ** k, :(w + 2 ** k - 1) // 2 ** k] for k, o in enumerate(outs)]


def gaussian_kernel_1d(sigma: float, truncate: float = 4.0, *, dtype=torch.float32,
                       device=None) -> torch.Tensor:
    """Normalised 1-D Gaussian of ``scipy.ndimage.gaussian_filter``: radius ``int(truncate*sigma+0.5)``.

    Returns a ``(2r+1,)`` tensor summing to 1.
    """
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).to(dtype=dtype, device=device)


def _symmetric_index(n: int, radius: int, device) -> torch.Tensor:
    """Indices of a length-``n`` axis extended by ``radius`` on both sides with scipy's ``"reflect"``
    (half-sample symmetric: ``d c b a | a b c d | d c b a``), periodic beyond one reflection."""
    i = torch.arange(-radius, n + radius, device=device) % (2 * n)
    return torch.where(i >= n, 2 * n - 1 - i, i)


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(B, C, H, W)`` with scipy ``mode="reflect"`` boundaries."""
    k = gaussian_kernel_1d(sigma, dtype=x.dtype, device=x.device)
    r = (k.numel() - 1) // 2
    shape = x.shape
    y = x.reshape(-1, 1, shape[-2], shape[-1])  # every channel alone: a fixed (1, 1, ., .) kernel
    y = y.index_select(-1, _symmetric_index(shape[-1], r, x.device))
    y = F.conv2d(y, k.view(1, 1, 1, -1))
    y = y.index_select(-2, _symmetric_index(shape[-2], r, x.device))
    return F.conv2d(y, k.view(1, 1, -1, 1)).reshape(shape)


def gaussian_pyramid(x: torch.Tensor, levels: int, sigma: float = 2.0 / 3.0) -> list[torch.Tensor]:
    """Gaussian pyramid of ``(B, C, H, W)``, finest first: ``levels`` tensors, level ``k`` of size
    ``(H / 2**k, W / 2**k)``.

    Level 0 is ``x`` itself; level ``k+1`` is level ``k`` blurred by a Gaussian of std ``sigma``
    (scipy ``gaussian_filter`` with ``mode="reflect"``, ``truncate=4``) then averaged over 2x2 blocks.
    With the default ``sigma = 2/3`` (= ``2 * downscale / 6``) this is
    ``skimage.transform.pyramid_gaussian(image, downscale=2)`` on even sizes, the pyramid Nah et al.'s
    PyTorch port feeds the network. ``H`` and ``W`` must be multiples of ``2 ** (levels - 1)``.
    Same dtype and device as ``x``.
    """
    if levels < 1:
        raise ConfigError(f"gaussian_pyramid levels: expected an integer >= 1, got {levels!r}")
    m = 2 ** (levels - 1)
    if x.shape[-2] % m or x.shape[-1] % m:
        raise ImageError(
            f"gaussian_pyramid input: H x W = {x.shape[-2]} x {x.shape[-1]} is not a multiple of "
            f"{m} (needed for {levels} levels); pad it first (pad_to_multiple)")
    out = [x]
    for _ in range(levels - 1):
        out.append(F.avg_pool2d(_gaussian_blur(out[-1], sigma), 2))
    return out


# -------------------------------------------------------------------------------------- modules

class ResBlock(nn.Module):
    """Nah et al.'s ResBlock (paper Fig. 3b): ``x + conv(relu(conv(x)))``, no batch norm, no ReLU
    after the addition. ``(B, C, H, W) -> (B, C, H, W)``; ``kernel_size`` odd, 'same' padding."""

    def __init__(self, channels: int, kernel_size: int = 5) -> None:
        super().__init__()
        p = kernel_size // 2
        self.conv1 = nn.Conv2d(channels, channels, kernel_size, padding=p)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size, padding=p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class _ScaleNet(nn.Module):
    """One scale of DeepDeblur: conv -> ``n_resblocks`` ResBlocks -> conv (paper Fig. 4)."""

    def __init__(self, in_channels: int, out_channels: int, channels: int, n_resblocks: int,
                 kernel_size: int) -> None:
        super().__init__()
        p = kernel_size // 2
        self.head = nn.Conv2d(in_channels, channels, kernel_size, padding=p)
        self.body = nn.Sequential(*[ResBlock(channels, kernel_size) for _ in range(n_resblocks)])
        self.tail = nn.Conv2d(channels, out_channels, kernel_size, padding=p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.body(self.head(x)))


class DeepDeblur(nn.Module):
    """Nah et al. 2017 multi-scale network: ``(B, C, H, W)`` in [0, 1] -> list of ``n_scales``
    tensors ``(B, C, ceil(H/2**k), ceil(W/2**k))``, ``k = 0`` (finest, the prediction) first.

    Args:
        in_channels: image channels ``C`` (3 for RGB).
        n_scales: pyramid levels ``K`` (3 in the paper).
        channels: feature channels of every conv (64 in the paper).
        n_resblocks: ResBlocks per scale (19 in the paper).
        kernel_size: odd kernel size of every conv (5 in the paper).
        upconv_kernel: odd kernel size of the stride-2 up-convolution between scales (5).
        pyramid_sigma: std of the Gaussian of the input pyramid (2/3, skimage's default for 2x).
        global_residual: add ``B_k`` to each scale's output (deblurkit option; the paper: False).
        pad_mode: ``"reflect"`` or ``"replicate"`` padding to a multiple of ``2**(n_scales-1)``.

    Outputs are not clamped.
    """

    def __init__(self, in_channels: int = 3, n_scales: int = 3, channels: int = 64,
                 n_resblocks: int = 19, kernel_size: int = 5, upconv_kernel: int = 5,
                 pyramid_sigma: float = 2.0 / 3.0, global_residual: bool = False,
                 pad_mode: str = "reflect") -> None:
        super().__init__()
        name = "nah2017"
        check_int(name, "in_channels", in_channels, 1)
        check_int(name, "n_scales", n_scales, 1)
        check_int(name, "channels", channels, 1)
        check_int(name, "n_resblocks", n_resblocks, 0)
        for opt, k in (("kernel_size", kernel_size), ("upconv_kernel", upconv_kernel)):
            if check_int(name, opt, k, 1) % 2 == 0:
                raise ConfigError(f"{name} option {opt}: expected an odd kernel size, got {k}")
        if isinstance(pyramid_sigma, bool) or not isinstance(pyramid_sigma, (int, float)) \
                or not math.isfinite(pyramid_sigma) or pyramid_sigma <= 0:
            raise ConfigError(f"{name} option pyramid_sigma: expected a positive number, got {pyramid_sigma!r}")
        if not isinstance(global_residual, bool):
            raise ConfigError(f"{name} option global_residual: expected true or false, got {global_residual!r}")
        if pad_mode not in ("reflect", "replicate"):
            raise ConfigError(f"{name} option pad_mode: expected 'reflect' or 'replicate', got {pad_mode!r}")
        self.in_channels = in_channels
        self.n_scales = n_scales
        self.pyramid_sigma = float(pyramid_sigma)
        self.global_residual = global_residual
        self.pad_mode = pad_mode
        self.multiple = 2 ** (n_scales - 1)
        c = in_channels
        # scales[k]: the network of pyramid level k (0 = finest); only the coarsest sees C channels,
        # the others see the blurred level concatenated with the up-convolved coarser estimate.
        self.scales = nn.ModuleList([
            _ScaleNet(c if k == n_scales - 1 else 2 * c, c, channels, n_resblocks, kernel_size)
            for k in range(n_scales)])
        # upconvs[k]: from level k+1 to level k (exactly 2x: out = 2 * in).
        p = upconv_kernel // 2
        self.upconvs = nn.ModuleList([
            nn.ConvTranspose2d(c, c, upconv_kernel, stride=2, padding=p, output_padding=1)
            for _ in range(n_scales - 1)])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``(B, C, H, W)`` -> ``[L_1 (full size), L_2 (1/2), ..., L_K]`` (finest first)."""
        check_image_batch("DeepDeblur", x, self.in_channels)
        h, w = x.shape[-2], x.shape[-1]
        pyramid = gaussian_pyramid(pad_to_multiple(x, self.multiple, self.pad_mode), self.n_scales,
                                   self.pyramid_sigma)
        outs: list[torch.Tensor] = [x] * self.n_scales  # placeholders, all overwritten
        latent = None  # centred estimate of the coarser scale
        for k in range(self.n_scales - 1, -1, -1):  # coarse to fine (paper Fig. 4)
            b = pyramid[k] - 0.5
            inp = b if latent is None else torch.cat([b, self.upconvs[k](latent)], dim=1)
            latent = self.scales[k](inp)
            if self.global_residual:
                latent = latent + b
            outs[k] = latent + 0.5
        return crop_outputs(outs, h, w)
