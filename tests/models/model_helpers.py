"""Helpers shared by the per-model test files (imported by name: pytest puts tests/models on the path)."""

from __future__ import annotations

import torch


def count_params(cls, **options) -> int:
    """Parameters of ``cls(**options)``, built on the meta device (no memory, no init cost)."""
    with torch.device("meta"):
        net = cls(**options)
    return sum(p.numel() for p in net.parameters())


def randomise(net: torch.nn.Module, std: float = 0.05, seed: int = 0) -> torch.nn.Module:
    """Add seeded Gaussian noise to every parameter (moves zero-initialised ones off zero); in place."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=g) * std)
    return net


def check_contract(net: torch.nn.Module) -> None:
    """The registry contract on one model: batch 2 of odd size 37 x 53 in, same shape out, finite,
    and a finite non-zero gradient on every parameter (parameters first moved off their init)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for prm in net.parameters():
            prm.add_(torch.randn_like(prm) * 0.05)
    x = torch.rand(2, 3, 37, 53)
    out = net(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    out.mean().backward()
    for name, prm in net.named_parameters():
        assert prm.grad is not None and torch.isfinite(prm.grad).all(), name
        assert prm.grad.abs().sum() > 0, name
