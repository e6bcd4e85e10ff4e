"""Noroozi, Chandramouli, Favaro (GCPR 2017): residual pyramid stages, eq. 21, counts, contract."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from deblurkit import models
from deblurkit.errors import ConfigError, ImageError
from deblurkit.models import noroozi2017 as nor
from deblurkit.models.noroozi2017 import NorooziLoss, NorooziNet, noroozi_loss
from deblurkit.train.losses import multiscale_euclidean_loss
from model_helpers import count_params, randomise

TINY = nor.TINY_SIZE


@pytest.fixture
def registered():
    """The model's name in the real registry (deblurkit/models/__init__.py)."""
    return "noroozi2017"


# -------------------------------------------------------------------------------------- shapes

@pytest.mark.parametrize("norm", ["none", "batch"])
@pytest.mark.parametrize("h, w", [(37, 53), (16, 16), (2, 7)])
def test_three_outputs_finest_first(norm, h, w):
    out = NorooziNet(**{**TINY, "norm": norm})(torch.rand(2, 3, h, w))
    assert isinstance(out, list) and len(out) == 3
    for k, o in enumerate(out):
        assert o.shape == (2, 3, math.ceil(h / 2 ** k), math.ceil(w / 2 ** k))
        assert torch.isfinite(o).all()


def test_each_stage_adds_its_residual_to_the_blurred_image_at_its_scale():
    """With the residual heads at zero, stage k returns the blurred image at 1, 1/2, 1/4: the
    input, its 2x2 block means and (bilinear 1/4) the means of the central 2x2 of each 4x4 block."""
    torch.manual_seed(0)
    net = randomise(NorooziNet(**TINY))
    with torch.no_grad():
        for head in net.heads:
            head.weight.zero_()
            head.bias.zero_()
    x = torch.rand(1, 3, 32, 24, dtype=torch.float64)
    out = net.double()(x)
    a = x[0].numpy()
    half = a.reshape(3, 16, 2, 12, 2).mean(axis=(2, 4))
    quarter = (a[:, 1::4, 1::4] + a[:, 1::4, 2::4] + a[:, 2::4, 1::4] + a[:, 2::4, 2::4]) / 4
    np.testing.assert_allclose(out[0][0].detach().numpy(), a, atol=1e-12)
    np.testing.assert_allclose(out[1][0].detach().numpy(), half, atol=1e-12)
    np.testing.assert_allclose(out[2][0].detach().numpy(), quarter, atol=1e-12)


def test_the_coarser_estimate_feeds_the_next_stage():
    torch.manual_seed(0)
    net = randomise(NorooziNet(**TINY))
    x = torch.rand(1, 3, 16, 16)
    before = net(x)
    with torch.no_grad():
        net.heads[0].bias.add_(0.5)  # the 1/4 stage's residual only
    after = net(x)
    assert (after[2] - before[2] - 0.5).abs().max() < 1e-6  # that stage moved by exactly 0.5
    assert (after[1] - before[1]).abs().max() > 1e-4  # and the finer stages see it
    assert (after[0] - before[0]).abs().max() > 1e-4


# --------------------------------------------------------------------------- parameter counts

def test_paper_size_parameter_count_derived_by_hand():
    """The paper states no parameter count (and its layer table was not available here): this is the
    count of deblurkit's paper-scale reconstruction, layer by layer (3x3 convs without bias before a
    BatchNorm (2 parameters per channel), 4x4 transposed convs, 3x3 heads with bias)."""
    def conv(cin, cout, k=3):
        return cin * cout * k * k + 2 * cout  # no bias, BatchNorm weight + bias

    ch = [64, 128, 256, 512]
    enc = conv(3, 64) + conv(64, 64)
    for i in range(1, 4):
        enc += conv(ch[i - 1], ch[i]) + conv(ch[i], ch[i])
    dec = 0
    for j, lvl in enumerate((2, 1, 0)):
        extra = 0 if j == 0 else 3
        dec += conv(ch[lvl + 1], ch[lvl], 4)  # up
        dec += conv(2 * ch[lvl] + extra, ch[lvl]) + conv(ch[lvl], ch[lvl])  # fuse
        dec += ch[lvl] * 3 * 9 + 3  # head
    assert count_params(NorooziNet, **nor.PAPER_SIZE) == enc + dec == 9_782_217


def test_cpu_size_is_small():
    assert 0.2e6 < count_params(NorooziNet, **nor.CPU_SIZE) < 2e6


# ------------------------------------------------------------------------------------ eq. 21

def test_eq21_on_a_constant_case_by_hand():
    """L_k constant a_k, sharp image constant b: eq. 21 = sum_k C H_k W_k (a_k - b)^2 per image."""
    shapes = [(2, 3, 8, 12), (2, 3, 4, 6), (2, 3, 2, 3)]
    a = [0.3, 0.6, 0.1]
    b = 0.5
    outs = [torch.full(s, v) for s, v in zip(shapes, a)]
    expected = sum(3 * s[2] * s[3] * (v - b) ** 2 for s, v in zip(shapes, a))
    loss = noroozi_loss(outs, torch.full(shapes[0], b))
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert float(noroozi_loss(outs, torch.full(shapes[0], b), normalize=True)) == \
        pytest.approx(expected / (3 * 8 * 12), rel=1e-6)
    # eq. 21 is not eq. 20 (which normalises each scale by its own size): it needs its own entry
    assert float(multiscale_euclidean_loss(outs, torch.full(shapes[0], b))) != pytest.approx(expected)
    assert float(NorooziLoss()(outs[::-1], torch.full(shapes[0], b))) == pytest.approx(expected, rel=1e-6)


def test_eq21_with_explicit_targets_against_numpy():
    rng = np.random.default_rng(3)
    shapes = [(3, 1, 6, 4), (3, 1, 3, 2), (3, 1, 2, 1)]
    outs = [rng.random(s) for s in shapes]
    tgts = [rng.random(s) for s in shapes]
    expected = sum(((o - t) ** 2).sum() for o, t in zip(outs, tgts)) / 3  # summed, batch mean
    got = noroozi_loss([torch.from_numpy(o) for o in outs], [torch.from_numpy(t) for t in tgts])
    assert float(got) == pytest.approx(expected, rel=1e-12)


def test_eq21_downsamples_a_full_size_target_by_2x2_means():
    sharp = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    half = sharp.reshape(1, 3, 4, 2, 4, 2).mean(dim=(3, 5))
    out_full = sharp + 0.1
    loss = noroozi_loss([out_full, half.clone()], sharp)
    assert float(loss) == pytest.approx(3 * 64 * 0.01, rel=1e-9)  # the 1/2 scale is exact


@pytest.mark.parametrize("outputs, target, message", [
    ([], torch.rand(1, 3, 4, 4), "noroozi loss outputs: empty list"),
    ([torch.rand(1, 3, 4, 4)], [torch.rand(1, 3, 4, 4)] * 2, "1 outputs but 2 targets"),
    ([torch.rand(1, 3, 4, 4)], [torch.rand(1, 3, 2, 2)], r"scale 0: output shape \(1, 3, 4, 4\)"),
    ([torch.rand(3, 4, 4)], torch.rand(1, 3, 4, 4), "noroozi loss output 0"),
    ([torch.rand(1, 3, 4, 4)], torch.rand(3, 4, 4), "noroozi loss target"),
])
def test_eq21_refuses_bad_inputs(outputs, target, message):
    with pytest.raises(ImageError, match=message):
        noroozi_loss(outputs, target)


def test_eq21_refuses_a_bad_option():
    with pytest.raises(ConfigError, match="loss option normalize"):
        NorooziLoss(normalize="yes")


# ---------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("options, message", [
    (dict(channels=[8]), "noroozi2017 option channels: expected a list of at least 2 integers"),
    (dict(norm="instance"), "noroozi2017 option norm: expected 'batch' or 'none', got 'instance'"),
    (dict(kernel_size=4), "noroozi2017 option kernel_size: expected an odd kernel size, got 4"),
    (dict(convs_per_level=-1), "noroozi2017 option convs_per_level: expected an integer >= 0, got -1"),
])
def test_bad_options_are_refused_in_one_line(options, message):
    with pytest.raises(ConfigError, match=message) as err:
        NorooziNet(**options)
    assert "\n" not in str(err.value)


def test_bad_inputs_are_refused():
    with pytest.raises(ImageError, match=r"NorooziNet input: expected \(B, 3, H, W\), got \(1, 4, 8, 8\)"):
        NorooziNet(**TINY)(torch.rand(1, 4, 8, 8))


# ------------------------------------------------------------------------------ registry contract

def test_registered_sizes(registered):
    assert models.model_options(registered)["norm"] == "none"
    assert count_params(NorooziNet, **models.model_options(registered, size="paper")) == 9_782_217


@pytest.mark.parametrize("size", [None, "tiny"])
def test_model_contract(registered, size):
    """As tests/models/test_all_models.py: odd sizes, batch 2, finite, gradient on every parameter."""
    torch.manual_seed(0)
    net = randomise(models.create(registered, size=size))
    x = torch.rand(2, 3, 37, 53)
    out = net(x)
    assert out[0].shape == x.shape and torch.isfinite(out[0]).all()
    out[0].mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_a_few_steps_reduce_eq21_on_a_fixed_pair():
    torch.manual_seed(0)
    net = NorooziNet(**TINY)
    g = torch.Generator().manual_seed(1)
    sharp = torch.rand(2, 3, 32, 32, generator=g)
    blur = (sharp + torch.roll(sharp, 1, dims=-1) + torch.roll(sharp, 2, dims=-1)) / 3
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        opt.zero_grad()
        loss = noroozi_loss(net(blur), sharp, normalize=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses


def test_onnx_export_of_the_prediction_keeps_h_and_w_dynamic():
    """export_onnx traces at one odd size and checks onnxruntime against torch at other sizes."""
    from deblurkit.infer.backends import export_onnx, finest_output

    torch.manual_seed(0)
    assert export_onnx(finest_output(randomise(NorooziNet(**TINY)).eval()))
