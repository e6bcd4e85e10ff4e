"""Tiling: exact for pointwise maps, exact for local conv nets within the discarded margin."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from deblurkit.errors import ConfigError
from deblurkit.infer.tiling import auto_tile, run_tiled, tile_starts


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


class CallLog:
    """Wraps fn and records the shapes it was called with."""

    def __init__(self, fn):
        self.fn, self.shapes = fn, []

    def __call__(self, x):
        self.shapes.append(tuple(x.shape))
        return self.fn(x)


@pytest.mark.parametrize("tile,overlap,per_batch", [
    (40, 12, 1), (33, 16, 1), ((24, 50), 8, 3), (64, 0, 2), (20, 1, 1), (17, 4, 5),
])
def test_identity_and_pointwise_are_exact(tile, overlap, per_batch):
    x = _rand(2, 3, 97, 131)
    ident = CallLog(lambda t: t)
    out = run_tiled(ident, x, tile=tile, overlap=overlap, tiles_per_batch=per_batch)
    assert out.shape == x.shape
    assert torch.allclose(out, x, atol=1e-6, rtol=0)
    assert len(ident.shapes) > 1  # it really tiled

    def pointwise(t):
        return torch.sin(3 * t) ** 2 + t.pow(2.2)

    out = run_tiled(pointwise, x, tile=tile, overlap=overlap, tiles_per_batch=per_batch)
    assert (out - pointwise(x)).abs().max() < 1e-6


def test_channel_count_may_change():
    x = _rand(1, 3, 70, 90)
    fn = lambda t: torch.cat([t[:, :1] * 2, t.mean(1, keepdim=True)], dim=1)  # noqa: E731
    out = run_tiled(fn, x, tile=32, overlap=8)
    assert out.shape == (1, 2, 70, 90)
    assert (out - fn(x)).abs().max() < 1e-6


def _conv_stack(radius: int, seed: int = 0) -> nn.Module:
    """`radius` 3x3 convs with zero padding: receptive-field radius = `radius` pixels."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Conv2d(3, 8, 3, padding=1), nn.GELU()]
    for _ in range(radius - 2):
        layers += [nn.Conv2d(8, 8, 3, padding=1), nn.GELU()]
    layers.append(nn.Conv2d(8, 3, 3, padding=1))
    return nn.Sequential(*layers).eval()


@torch.no_grad()
def test_conv_net_matches_untiled_when_receptive_field_inside_margin():
    net = _conv_stack(radius=4)
    x = _rand(1, 3, 90, 117, seed=1)
    whole = net(x)
    # margin = overlap // 4 = 5 >= receptive radius 4: only complete-context outputs are used
    tiled = run_tiled(net, x, tile=48, overlap=20)
    assert (tiled - whole).abs().max() < 1e-5
    # receptive radius (4) < overlap (12) but > margin (3): close, as blended
    tiled = run_tiled(net, x, tile=40, overlap=12)
    assert (tiled - whole).abs().max() < 1e-3
    # negative control: hard seams (no overlap) differ clearly from the whole-image result
    tiled = run_tiled(net, x, tile=40, overlap=0)
    assert (tiled - whole).abs().max() > 1e-2


def test_tile_covering_image_is_one_call():
    x = _rand(1, 3, 50, 60)
    log = CallLog(lambda t: t * 2)
    out = run_tiled(log, x, tile=64, overlap=16)
    assert log.shapes == [(1, 3, 50, 60)]
    assert torch.equal(out, x * 2)


def test_tiles_have_the_requested_size_and_count():
    x = _rand(1, 3, 100, 70)
    log = CallLog(lambda t: t)
    run_tiled(log, x, tile=(48, 64), overlap=16)
    ys, xs = tile_starts(100, 48, 16), tile_starts(70, 64, 16)
    assert len(log.shapes) == len(ys) * len(xs)
    assert set(log.shapes) == {(1, 3, 48, 64)}


@pytest.mark.parametrize("length,tile,overlap", [(100, 40, 10), (97, 33, 16), (64, 64, 8),
                                                 (1000, 256, 48), (257, 128, 0)])
def test_tile_starts_cover_with_at_least_overlap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] + min(tile, length) == length
    assert starts == sorted(set(starts))
    for a, b in zip(starts, starts[1:]):
        assert a + tile - b >= overlap  # neighbours share at least `overlap` pixels


def test_auto_tile_bounds_pixels_and_balances():
    assert auto_tile(720, 1280, 1_500_000) is None  # small: one call
    for h, w, budget in [(3000, 4000, 1_500_000), (2000, 900, 400_000), (5000, 300, 250_000)]:
        th, tw = auto_tile(h, w, budget, overlap=48)
        assert th * tw <= budget
        side = (math.isqrt(budget) // 32) * 32
        n_square = len(tile_starts(h, side, 48)) * len(tile_starts(w, side, 48))
        n_bal = len(tile_starts(h, th, 48)) * len(tile_starts(w, tw, 48))
        assert n_bal == n_square  # same number of tiles, no more work per tile
        assert th * tw <= side * side


def test_bad_arguments_are_refused():
    x = _rand(1, 3, 40, 40)
    with pytest.raises(ConfigError, match="tile"):
        run_tiled(lambda t: t, x, tile=16, overlap=8)
    with pytest.raises(ConfigError, match="overlap"):
        run_tiled(lambda t: t, x, tile=16, overlap=-1)
    with pytest.raises(ConfigError, match="tile"):
        run_tiled(lambda t: t, x, tile="32", overlap=4)
    with pytest.raises(ConfigError, match="x: expected"):
        run_tiled(lambda t: t, x[0], tile=16, overlap=2)
    with pytest.raises(ConfigError, match="fn: must return"):
        run_tiled(lambda t: t[..., :-1], x, tile=16, overlap=2)
    with pytest.raises(ConfigError, match="max_pixels"):
        auto_tile(1000, 1000, 0)
    with pytest.raises(ConfigError, match="overlap: 100 is too large"):
        auto_tile(1000, 1000, 40_000, overlap=100)
