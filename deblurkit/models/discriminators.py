"""Discriminators for adversarial training, in their own registry :data:`DISCRIMINATORS`.

They are not generators, so they live apart from :data:`deblurkit.models.MODELS`; build one with
:func:`create_discriminator`. Every discriminator maps a batch of images ``(B, C_in, H, W)`` (float,
nominally in [0, 1]) to a map of raw scores ``(B, 1, h, w)``: logits for the vanilla / conditional /
LSGAN losses, critic values for WGAN-GP (no sigmoid is applied anywhere here; the losses in
:mod:`deblurkit.train.adversarial` apply it where the GAN formulation has one, numerically stably).

A *conditional* discriminator (``conditional=True``) judges a pair: its input is the blurred image
concatenated on the channel axis with the sharp or restored image, ``cat([blur, x], 1)``, so
``C_in = 2 * image_channels`` (Isola et al.'s pix2pix; survey eq. 28, Ramakrishnan et al. 2017).
The attribute ``.conditional`` tells the training step to build that input.

Registered:

* ``patchgan`` -- the 70x70 PatchGAN of Isola et al., "Image-to-Image Translation with Conditional
  Adversarial Networks", CVPR 2017: 4x4 convolutions C64-C128-C256-C512 (stride 2, 2, 2, 1), then a
  4x4 convolution to one channel, LeakyReLU 0.2, batch norm on all but the first layer; every output
  score sees a 70x70 patch of the input.
* ``patchgan_conditional`` -- the same, conditional on the blurred image (6 input channels), as the
  conditional GAN of Ramakrishnan et al., "Deep Generative Filter for Motion Deblurring", ICCVW 2017
  (survey eq. 28).
* ``wgan_gp_critic`` -- the critic of Kupyn et al., "DeblurGAN: Blind Motion Deblurring Using
  Conditional Adversarial Networks", CVPR 2018: the same 70x70 PatchGAN with instance norm (no batch
  norm: the gradient penalty of Gulrajani et al. 2017 is per sample, which batch norm breaks) and no
  sigmoid, padding 2 as their code.
* ``nah2017`` -- the discriminator of Nah et al., "Deep Multi-scale Convolutional Neural Network for
  Dynamic Scene Deblurring", CVPR 2017 (their Table 1; survey eq. 24-26): nine 5x5 convolutions
  (strides 1, 2, 1, 2, 1, 4, 1, 4, 1; widths 32, 32, 64, 64, 128, 128, 256, 256, 512), a 4x4 stride-4
  convolution and a fully connected output, LeakyReLU 0.2, no normalisation, no biases. It classifies
  a 256x256 image (the finest output of their multi-scale generator) as one score; larger inputs give
  one score per 256x256 region.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError, ImageError

__all__ = ["PatchDiscriminator", "NahDiscriminator", "DiscriminatorSpec", "DISCRIMINATORS",
           "list_discriminators", "discriminator_options", "create_discriminator", "conv_output_size"]


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Spatial size after a convolution: ``floor((size + 2 * padding - kernel) / stride) + 1``."""
    return (size + 2 * padding - kernel) // stride + 1


def _check_int(owner: str, name: str, value: Any, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ConfigError(f"{owner} option {name}: expected an integer >= {lo}, got {value!r}")
    return value


def _check_bool(owner: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{owner} option {name}: expected true or false, got {value!r}")
    return value


class _Discriminator(nn.Module):
    """Shared input checks: ``(B, in_channels, H, W)`` floating, large enough for one score."""

    name = "discriminator"
    in_channels: int
    conditional: bool
    layers: list[tuple[int, int, int]]  # (kernel, stride, padding) of each convolution

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        """Size ``(h, w)`` of the score map for an ``H x W`` input."""
        for k, s, p in self.layers:
            h, w = conv_output_size(h, k, s, p), conv_output_size(w, k, s, p)
        return h, w

    def _check(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
            raise ImageError(f"{self.name} discriminator input: expected a floating (B, C, H, W) tensor, "
                             f"got {getattr(x, 'shape', type(x).__name__)}")
        if x.shape[1] != self.in_channels:
            what = "blur and image concatenated" if self.conditional else "image"
            raise ImageError(f"{self.name} discriminator input: expected {self.in_channels} channels "
                             f"({what}), got {x.shape[1]}")
        h, w = self.output_size(*x.shape[-2:])
        if h < 1 or w < 1:
            raise ImageError(f"{self.name} discriminator input: {x.shape[-2]}x{x.shape[-1]} is too small "
                             f"(the score map would be empty; it needs at least {self.min_size()}x"
                             f"{self.min_size()}); {self._size_hint()}")

    def min_size(self) -> int:
        """The smallest input side giving a non-empty score map."""
        s = 1
        while self.output_size(s, s)[0] < 1:
            s += 1
        return s

    def _size_hint(self) -> str:
        return "use larger crops"


class PatchDiscriminator(_Discriminator):
    """PatchGAN discriminator (Isola et al. 2017) and DeblurGAN's WGAN-GP critic (Kupyn et al. 2018).

    Args:
        image_channels: channels of one image (3 for RGB).
        width: channels of the first convolution (64 in both papers); layer ``n`` has
            ``width * min(2**n, 8)``.
        n_layers: stride-2 convolutions (3 gives the 70x70 PatchGAN).
        norm: ``"batch"`` (pix2pix), ``"instance"`` (DeblurGAN, affine-free) or ``"none"``; never on
            the first layer.
        padding: zero padding of every 4x4 convolution (1 in pix2pix, 2 in DeblurGAN's code).
        conditional: judge ``cat([blur, x], 1)`` (``2 * image_channels`` input channels).

    ``forward(x)``: ``x`` ``(B, in_channels, H, W)`` float -> raw scores ``(B, 1, h, w)``, each
    depending on a ``receptive_field x receptive_field`` patch of ``x``. Convolutions followed by a
    normalisation have no bias (it would be cancelled; DeblurGAN's code keeps an inert one). Weights start from
    ``N(0, 0.02)`` (batch-norm scales from ``N(1, 0.02)``), biases at 0, as both papers' code.
    """

    name = "patchgan"

    def __init__(self, image_channels: int = 3, width: int = 64, n_layers: int = 3, norm: str = "batch",
                 padding: int = 1, conditional: bool = False) -> None:
        super().__init__()
        owner = "patchgan"
        _check_int(owner, "image_channels", image_channels, 1)
        _check_int(owner, "width", width, 1)
        _check_int(owner, "n_layers", n_layers, 1)
        _check_int(owner, "padding", padding, 0)
        _check_bool(owner, "conditional", conditional)
        if norm not in ("batch", "instance", "none"):
            raise ConfigError(f"{owner} option norm: expected 'batch', 'instance' or 'none', got {norm!r}")
        self.conditional = conditional
        self.in_channels = image_channels * (2 if conditional else 1)
        self.norm = norm

        def normalise(c: int) -> list[nn.Module]:
            if norm == "batch":
                return [nn.BatchNorm2d(c)]
            if norm == "instance":
                return [nn.InstanceNorm2d(c, affine=False)]
            return []

        bias = norm == "none"  # a bias before batch / instance norm is cancelled by its mean subtraction
        seq: list[nn.Module] = [nn.Conv2d(self.in_channels, width, 4, 2, padding), nn.LeakyReLU(0.2, True)]
        self.layers = [(4, 2, padding)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            seq += [nn.Conv2d(width * prev, width * mult, 4, stride, padding, bias=bias),
                    *normalise(width * mult), nn.LeakyReLU(0.2, True)]
            self.layers.append((4, stride, padding))
        seq.append(nn.Conv2d(width * mult, 1, 4, 1, padding))
        self.layers.append((4, 1, padding))
        self.model = nn.Sequential(*seq)
        self.receptive_field = self._receptive_field()
        self._init_weights()

    def _receptive_field(self) -> int:
        rf, jump = 1, 1
        for k, s, _ in self.layers:
            rf += (k - 1) * jump
            jump *= s
        return rf

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def _size_hint(self) -> str:
        return "use larger crops or fewer n_layers"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return self.model(x)


class NahDiscriminator(_Discriminator):
    """The discriminator of Nah et al. 2017 (their Table 1), classifying 256x256 images.

    Args:
        image_channels: channels of one image (3 for RGB).
        width: ``n_feats`` of their code (64 in the paper): layer widths are ``width/2, width/2,
            width, width, 2 width, 2 width, 4 width, 4 width, 8 width, 8 width``, then one output.
        kernel_size: the kernel of the first nine convolutions (5 in the paper).
        conditional: judge ``cat([blur, x], 1)`` instead of ``x`` alone (not in the paper).

    ``forward(x)``: ``(B, in_channels, H, W)`` with ``H, W >= 256`` -> raw scores ``(B, 1, h, w)``
    (``1 x 1`` for a 256x256 input). No biases, no normalisation, LeakyReLU 0.2 (as their code).
    """

    name = "nah2017_discriminator"

    def __init__(self, image_channels: int = 3, width: int = 64, kernel_size: int = 5,
                 conditional: bool = False) -> None:
        super().__init__()
        owner = "nah2017_discriminator"
        _check_int(owner, "image_channels", image_channels, 1)
        _check_int(owner, "width", width, 2)
        _check_int(owner, "kernel_size", kernel_size, 1)
        _check_bool(owner, "conditional", conditional)
        if kernel_size % 2 == 0:
            raise ConfigError(f"{owner} option kernel_size: expected an odd size, got {kernel_size}")
        self.conditional = conditional
        self.in_channels = image_channels * (2 if conditional else 1)
        f, k, p = width, kernel_size, (kernel_size - 1) // 2
        plan = [(self.in_channels, f // 2, 1), (f // 2, f // 2, 2), (f // 2, f, 1), (f, f, 2),
                (f, 2 * f, 1), (2 * f, 2 * f, 4), (2 * f, 4 * f, 1), (4 * f, 4 * f, 4), (4 * f, 8 * f, 1)]
        convs = [nn.Conv2d(cin, cout, k, s, p, bias=False) for cin, cout, s in plan]
        convs.append(nn.Conv2d(8 * f, 8 * f, 4, 4, 0, bias=False))
        self.layers = [(k, s, p) for _, _, s in plan] + [(4, 4, 0), (1, 1, 0)]
        self.convs = nn.ModuleList(convs)
        self.act = nn.LeakyReLU(0.2, inplace=True)
        self.dense = nn.Conv2d(8 * f, 1, 1, bias=False)  # the fully connected layer, per 256x256 cell

    def _size_hint(self) -> str:
        return "Nah et al.'s discriminator classifies 256x256 images: use data.crop >= 256 or 'patchgan'"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        for conv in self.convs:
            x = self.act(conv(x))
        return self.dense(x)


# --------------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class DiscriminatorSpec:
    """One registered discriminator: ``constructor(**options)`` with ``defaults`` listing every
    option (an option not listed is refused)."""

    name: str
    constructor: Callable[..., nn.Module]
    defaults: Mapping[str, Any]
    description: str
    paper: str


DISCRIMINATORS: dict[str, DiscriminatorSpec] = {}


def _register(spec: DiscriminatorSpec) -> None:
    if spec.name in DISCRIMINATORS:
        raise ConfigError(f"discriminator name {spec.name!r}: already registered")
    DISCRIMINATORS[spec.name] = spec


_PIX2PIX = "P. Isola, J.-Y. Zhu, T. Zhou, A. A. Efros, Image-to-Image Translation with Conditional " \
           "Adversarial Networks, CVPR 2017"
_PATCH = {"image_channels": 3, "width": 64, "n_layers": 3, "norm": "batch", "padding": 1, "conditional": False}

_register(DiscriminatorSpec(
    name="patchgan", constructor=PatchDiscriminator, defaults=dict(_PATCH),
    description="70x70 PatchGAN (batch norm, LeakyReLU), judges the image alone", paper=_PIX2PIX))
_register(DiscriminatorSpec(
    name="patchgan_conditional", constructor=PatchDiscriminator, defaults={**_PATCH, "conditional": True},
    description="70x70 PatchGAN judging the blurred image and the sharp/restored one concatenated "
                "(survey eq. 28)",
    paper="S. Ramakrishnan, S. Pachori, A. Gangopadhyay, S. Raman, Deep Generative Filter for Motion "
          "Deblurring, ICCV Workshops 2017; " + _PIX2PIX))
_register(DiscriminatorSpec(
    name="wgan_gp_critic", constructor=PatchDiscriminator,
    defaults={**_PATCH, "norm": "instance", "padding": 2},
    description="DeblurGAN's WGAN-GP critic: 70x70 PatchGAN, instance norm, no sigmoid",
    paper="O. Kupyn, V. Budzan, M. Mykhailych, D. Mishkin, J. Matas, DeblurGAN: Blind Motion Deblurring "
          "Using Conditional Adversarial Networks, CVPR 2018; I. Gulrajani et al., Improved Training of "
          "Wasserstein GANs, NeurIPS 2017"))
_register(DiscriminatorSpec(
    name="nah2017_discriminator", constructor=NahDiscriminator,
    defaults={"image_channels": 3, "width": 64, "kernel_size": 5, "conditional": False},
    description="Nah et al.'s discriminator (Table 1): 10 convolutions + FC, classifies 256x256 images",
    paper="S. Nah, T. H. Kim, K. M. Lee, Deep Multi-scale Convolutional Neural Network for Dynamic Scene "
          "Deblurring, CVPR 2017"))


def list_discriminators() -> list[str]:
    """Registered discriminator names, sorted."""
    return sorted(DISCRIMINATORS)


def discriminator_options(name: str, **options: Any) -> dict[str, Any]:
    """The full option set :func:`create_discriminator` would use: defaults updated by ``options``.

    An unknown ``name`` lists the choices; an unknown option is named with the valid ones.
    """
    if name not in DISCRIMINATORS:
        raise ConfigError(f"discriminator {name!r}: unknown; choose one of: {', '.join(list_discriminators())}")
    spec = DISCRIMINATORS[name]
    unknown = sorted(set(options) - set(spec.defaults))
    if unknown:
        raise ConfigError(f"discriminator {name!r}: unknown option{'s' if len(unknown) > 1 else ''} "
                          f"{', '.join(map(repr, unknown))}; valid options: {', '.join(sorted(spec.defaults))}")
    merged = copy.deepcopy(dict(spec.defaults))
    merged.update(options)
    return merged


def create_discriminator(name: str, **options: Any) -> nn.Module:
    """Build a registered discriminator (random weights, train mode); see :data:`DISCRIMINATORS`.

    Bad option values are refused by the constructor with a :class:`ConfigError` naming the option.
    """
    merged = discriminator_options(name, **options)  # refuses an unknown name or option first
    return DISCRIMINATORS[name].constructor(**merged)
