"""Every registered model: any (odd) size in, same size out; finite; gradients reach every parameter.

Models above ``MAX_PARAMS`` are still built (their parameters counted) but run forward/backward in
their ``"tiny"`` size so that the suite stays CPU-fast.
"""

from __future__ import annotations

import pytest
import torch

from deblurkit import models

MAX_PARAMS = 5_000_000


def _small(name: str) -> tuple[torch.nn.Module, int]:
    """(model to run, parameter count of the model's default size)."""
    with torch.device("meta"):
        n_default = models.count_parameters(models.create(name))
    if n_default <= MAX_PARAMS:
        return models.create(name), n_default
    spec = models.MODELS[name]
    assert "tiny" in spec.sizes, f"model {name} has {n_default} parameters and no 'tiny' size"
    return models.create(name, size="tiny"), n_default


@pytest.mark.parametrize("name", models.list_models())
def test_model_contract(name):
    torch.manual_seed(0)
    net, n_default = _small(name)
    assert n_default > 0
    channels = getattr(net, "in_channels", 3)
    with torch.no_grad():  # move every parameter off its init so that no gradient is zero by design
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    x = torch.rand(2, channels, 37, 53)
    out = net(x)
    out = out if isinstance(out, torch.Tensor) else max(out, key=lambda o: o.shape[-1])
    assert out.shape == x.shape
    assert torch.isfinite(out).all()
    out.mean().backward()
    for pname, p in net.named_parameters():
        assert p.grad is not None, f"{name}: no gradient reaches {pname}"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient in {pname}"
        assert p.grad.abs().sum() > 0, f"{name}: zero gradient in {pname}"


@pytest.mark.parametrize("name", models.list_models())
def test_a_few_steps_reduce_the_loss_on_a_fixed_pair(name):
    torch.manual_seed(0)
    net, _ = _small(name)
    channels = getattr(net, "in_channels", 3)
    g = torch.Generator().manual_seed(1)
    sharp = torch.rand(2, channels, 32, 32, generator=g)
    blur = (sharp + torch.roll(sharp, 1, dims=-1) + torch.roll(sharp, 2, dims=-1)) / 3
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        opt.zero_grad()
        out = net(blur)
        out = out if isinstance(out, torch.Tensor) else max(out, key=lambda o: o.shape[-1])
        loss = (out - sharp).abs().mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses
