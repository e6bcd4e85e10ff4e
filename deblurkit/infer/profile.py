"""Model size and cost: parameter count and multiply-accumulates (MACs) of one forward pass.

MACs are counted by forward hooks on the layers that dominate a convolutional network's cost
(``nn.Conv2d``, ``nn.ConvTranspose2d``, ``nn.Linear``); element-wise work (activations, norms,
gating, pooling) is not counted, which is the usual convention of papers' "MACs" columns. Bias
additions are not counted. One MAC = one multiplication and one addition (2 FLOPs).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of scalar parameters of ``model`` (shared parameters counted once)."""
    params = {id(p): p for p in model.parameters() if p.requires_grad or not trainable_only}
    return sum(p.numel() for p in params.values())


def _conv_macs(module: nn.Conv2d, inputs: tuple, output: torch.Tensor) -> int:
    # each output element: (C_in / groups) * kh * kw multiply-adds
    kh, kw = module.kernel_size
    return output.numel() * (module.in_channels // module.groups) * kh * kw


def _conv_transpose_macs(module: nn.ConvTranspose2d, inputs: tuple, output: torch.Tensor) -> int:
    # each input element is scattered into (C_out / groups) * kh * kw outputs
    kh, kw = module.kernel_size
    return inputs[0].numel() * (module.out_channels // module.groups) * kh * kw


def _linear_macs(module: nn.Linear, inputs: tuple, output: torch.Tensor) -> int:
    return output.numel() * module.in_features


_COUNTERS = (
    (nn.ConvTranspose2d, _conv_transpose_macs),
    (nn.Conv2d, _conv_macs),
    (nn.Linear, _linear_macs),
)


def count_macs(model: nn.Module, x: torch.Tensor | tuple[int, ...]) -> int:
    """Multiply-accumulates of ``model(x)`` in Conv2d, ConvTranspose2d and Linear layers.

    Args:
        model: any module; run once under ``torch.no_grad`` (in its current train/eval mode).
        x: an input tensor, or a shape such as ``(1, 3, 720, 1280)`` (zeros on the model's device).

    Returns:
        Total MACs over the whole batch (a layer called twice is counted twice).

    A model on the ``meta`` device (``copy.deepcopy(model).to("meta")``) is counted from shapes
    alone, without computing anything: instant even for large models and inputs.
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor):
        try:
            shape = tuple(int(s) for s in x)
        except TypeError:
            raise ConfigError(f"x: expected a tensor or a shape tuple, got {x!r}") from None
        param = next(model.parameters(), None)
        x = torch.zeros(shape, device=param.device if param is not None else "cpu")
    total = 0

    def hook_for(counter):
        def hook(module, inputs, output):
            nonlocal total
            total += int(counter(module, inputs, output))
        return hook

    handles = []
    for module in model.modules():
        for kind, counter in _COUNTERS:
            if isinstance(module, kind):
                handles.append(module.register_forward_hook(hook_for(counter)))
                break
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return total
