"""Perceptual loss (survey eq. 27) on VGG features, from weights the user provides.

The feature extractor is the convolutional part of VGG16 or VGG19 (Simonyan & Zisserman, ICLR
2015) up to a named layer, built from plain torch modules. Its weights are never downloaded: they
are read from a safetensors file whose keys are those of torchvision's ``vgg16`` / ``vgg19``
``state_dict``: ``features.N.weight`` ``(C_out, C_in, 3, 3)`` and ``features.N.bias`` ``(C_out,)``
for every convolution ``N`` up to the chosen layer (other keys, e.g. ``classifier.*``, are
ignored). On a machine with torchvision, convert its ImageNet weights once with::

    import torchvision
    from safetensors.torch import save_file
    sd = torchvision.models.vgg16(weights="IMAGENET1K_V1").state_dict()
    save_file({k: v.contiguous() for k, v in sd.items() if k.startswith("features.")}, "vgg16.safetensors")

and give the file's path as ``gan.perceptual_weights_path`` in the training config.

Layer names: ``conv{b}_{k}`` (the k-th convolution of block b, before its ReLU), ``relu{b}_{k}``
(after it) and ``pool{b}``. DeblurGAN (Kupyn et al. 2018) uses ``conv3_3`` of VGG19 (index 14, as
their code); the same name exists in VGG16 (also index 14).

The loss (survey eq. 27, Johnson et al. 2016 / Kupyn et al. 2018)::

    L_X = 1 / (W_ij H_ij) * sum_x sum_y (phi_ij(I_S)_{x,y} - phi_ij(G(I_B))_{x,y})^2

is computed, as DeblurGAN's reference code (``nn.MSELoss``), as the mean over the batch, the
feature channels and the positions, i.e. eq. 27 divided by the ``C_ij`` channels. Images in [0, 1]
are normalised with the ImageNet mean and standard deviation torchvision's weights expect; a grey
image (1 channel) is repeated to 3.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, ImageError, WeightsError

__all__ = ["VGG_CONFIGS", "vgg_layer_names", "vgg_layer_index", "vgg_state_shapes", "VGGFeatures",
           "load_vgg_features", "perceptual_loss", "PerceptualLoss", "IMAGENET_MEAN", "IMAGENET_STD"]

# torchvision's ``cfgs["D"]`` (VGG16) and ``cfgs["E"]`` (VGG19): channels of each 3x3 conv, "M" = max pool
VGG_CONFIGS: dict[str, tuple[int | str, ...]] = {
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"),
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _check_net(net: str) -> tuple[int | str, ...]:
    if net not in VGG_CONFIGS:
        raise ConfigError(f"perceptual network {net!r}: unknown; choose one of: {', '.join(VGG_CONFIGS)}")
    return VGG_CONFIGS[net]


def vgg_layer_names(net: str = "vgg16") -> list[str]:
    """Names of the modules of torchvision's ``vgg*.features``, in index order
    (``["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1", "conv2_1", ...]``)."""
    names: list[str] = []
    block, k = 1, 0
    for v in _check_net(net):
        if v == "M":
            names.append(f"pool{block}")
            block, k = block + 1, 0
        else:
            k += 1
            names += [f"conv{block}_{k}", f"relu{block}_{k}"]
    return names


def vgg_layer_index(net: str, layer: str) -> int:
    """Index in ``features`` of the named layer (e.g. ``vgg_layer_index("vgg16", "conv3_3") == 14``).
    An unknown name raises :class:`ConfigError` listing the valid ones."""
    names = vgg_layer_names(net)
    if layer not in names:
        raise ConfigError(f"perceptual layer {layer!r}: not a layer of {net}; choose one of: {', '.join(names)}")
    return names.index(layer)


def vgg_state_shapes(net: str = "vgg16", layer: str | None = None) -> dict[str, tuple[int, ...]]:
    """The safetensors keys a weights file must hold to compute features up to ``layer`` (default:
    all of ``features``), with their shapes: ``{"features.0.weight": (64, 3, 3, 3), ...}``."""
    last = len(vgg_layer_names(net)) - 1 if layer is None else vgg_layer_index(net, layer)
    shapes: dict[str, tuple[int, ...]] = {}
    idx, cin = 0, 3
    for v in VGG_CONFIGS[net]:
        if idx > last:
            break
        if v == "M":
            idx += 1
            continue
        shapes[f"features.{idx}.weight"] = (int(v), cin, 3, 3)
        shapes[f"features.{idx}.bias"] = (int(v),)
        cin = int(v)
        idx += 2
    return shapes


class VGGFeatures(nn.Module):
    """VGG ``features`` truncated after ``layer``: ``(B, 1 or 3, H, W)`` in [0, 1] -> ``(B, C_l, H_l, W_l)``.

    The submodule ``features`` is an ``nn.Sequential`` indexed exactly as torchvision's, so its
    ``state_dict`` keys are ``features.N.weight`` / ``features.N.bias``. Built with random weights;
    use :func:`load_vgg_features` to read real ones. ``normalize`` applies the ImageNet mean / std.
    """

    def __init__(self, net: str = "vgg16", layer: str = "conv3_3", normalize: bool = True) -> None:
        super().__init__()
        last = vgg_layer_index(net, layer)
        mods: list[nn.Module] = []
        cin = 3
        for v in VGG_CONFIGS[net]:
            if v == "M":
                mods.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                mods += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=False)]
                cin = int(v)
        self.features = nn.Sequential(*mods[: last + 1])
        self.net, self.layer, self.normalize = net, layer, normalize
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] not in (1, 3) or not x.is_floating_point():
            raise ImageError(f"perceptual features input: expected a floating (B, 1 or 3, H, W) tensor, "
                             f"got {getattr(x, 'shape', type(x).__name__)}")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.normalize:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        return self.features(x)


_HOW = ("VGG weights are never downloaded: convert torchvision's {net} state_dict to safetensors "
        "(keys 'features.N.weight' / 'features.N.bias'; recipe in deblurkit/train/perceptual.py) and give its path")


def load_vgg_features(path: str | Path, net: str = "vgg16", layer: str = "conv3_3", *,
                      normalize: bool = True) -> VGGFeatures:
    """A frozen :class:`VGGFeatures` (eval mode, ``requires_grad=False``) with weights from ``path``.

    Raises :class:`ConfigError` when ``path`` does not exist (saying how to make the file), and
    :class:`WeightsError` when it cannot be read or lacks a key / has a wrong shape for the layers
    up to ``layer``. Extra keys are ignored.
    """
    model = VGGFeatures(net, layer, normalize)
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"perceptual weights {p}: no such file; " + _HOW.format(net=net))
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(p))
    except (SafetensorError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WeightsError(f"perceptual weights {p}: cannot be read as safetensors ({first})") from None
    need = vgg_state_shapes(net, layer)
    missing = [k for k in need if k not in state]
    if missing:
        raise WeightsError(f"perceptual weights {p}: missing {len(missing)} key(s) of {net} up to {layer}, "
                           f"e.g. {missing[0]!r}; " + _HOW.format(net=net))
    for k, shape in need.items():
        if tuple(state[k].shape) != shape:
            raise WeightsError(f"perceptual weights {p}: {k} has shape {tuple(state[k].shape)}, "
                               f"{net} needs {shape} (is it a {net} file?)")
        if not torch.isfinite(state[k]).all():
            raise WeightsError(f"perceptual weights {p}: {k} holds non-finite values")
    model.features.load_state_dict({k[len("features."):]: state[k].float() for k in need})
    model.eval()
    model.requires_grad_(False)
    return model


def perceptual_loss(pred: torch.Tensor, target: torch.Tensor, features: nn.Module) -> torch.Tensor:
    """Survey eq. 27: ``mean((phi(pred) - phi(target))^2)`` over batch, channels and positions. 0-d.

    ``pred`` and ``target``: ``(B, C, H, W)`` floating, same shape, in [0, 1]. ``features`` maps
    images to feature maps (a :class:`VGGFeatures`); the target's features are not differentiated.
    """
    for name, x in (("pred", pred), ("target", target)):
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
            raise ImageError(f"perceptual loss {name}: expected a floating (B, C, H, W) tensor, "
                             f"got {getattr(x, 'shape', type(x).__name__)}")
    if pred.shape != target.shape:
        raise ImageError(f"perceptual loss: pred shape {tuple(pred.shape)} differs from target {tuple(target.shape)}")
    with torch.no_grad():
        ft = features(target)
    return F.mse_loss(features(pred), ft)


class PerceptualLoss(nn.Module):
    """:func:`perceptual_loss` as a module holding its (frozen) feature extractor. A multi-scale
    list of outputs is scored on its first (full-resolution) element."""

    def __init__(self, features: nn.Module) -> None:
        super().__init__()
        self.features = features

    def train(self, mode: bool = True) -> "PerceptualLoss":
        super().train(mode)
        self.features.eval()  # frozen: never in training mode
        return self

    def forward(self, pred: torch.Tensor | Sequence[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        p = pred if isinstance(pred, torch.Tensor) else pred[0]
        return perceptual_loss(p, target, self.features)

