"""Kupyn et al. (CVPR 2018) DeblurGAN ResNet generator."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deblurkit.errors import ConfigError, ImageError
from deblurkit.models.kupyn2018 import DeblurGANGenerator, ResBlock
from model_helpers import check_contract, count_params

TINY = dict(width=4, n_blocks=2)


# Parameter count of the paper size. The paper states none. The reference is the authors' released
# generator (KupynOrest/DeblurGAN, models/networks.py: resnet_9blocks, ngf 64, InstanceNorm without
# affine parameters, so every conv has a bias), counted here layer by layer as (kernel, in, out);
# third-party reports list this ResNet-9 generator as 11.38 M parameters.
_RELEASED_LAYERS = (
    [(7, 3, 64), (3, 64, 128), (3, 128, 256)]
    + [(3, 256, 256)] * 18                      # 9 ResBlocks x 2 convs
    + [(3, 256, 128), (3, 128, 64), (7, 64, 3)]  # 2 transposed convs, last conv
)


def test_paper_size_matches_the_released_generator():
    reference = sum(k * k * cin * cout + cout for k, cin, cout in _RELEASED_LAYERS)
    assert reference == 11_378_179
    assert count_params(DeblurGANGenerator) == pytest.approx(reference, rel=0.01)  # constructor defaults = the paper
    assert count_params(DeblurGANGenerator) == pytest.approx(11.38e6, rel=0.01)


def test_paper_structure():
    with torch.device("meta"):
        net = DeblurGANGenerator()
    blocks = [m for m in net.modules() if isinstance(m, ResBlock)]
    assert len(blocks) == 9
    for b in blocks:
        kinds = [type(m) for m in b.body]
        assert kinds == [nn.ReflectionPad2d, nn.Conv2d, nn.InstanceNorm2d, nn.ReLU, nn.Dropout,
                         nn.ReflectionPad2d, nn.Conv2d, nn.InstanceNorm2d]
        assert b.body[4].p == 0.5 and b.body[1].in_channels == 256
    assert [m.stride for m in net.down if isinstance(m, nn.Conv2d)] == [(2, 2), (2, 2)]
    assert [type(m) for m in net.up if not isinstance(m, (nn.InstanceNorm2d, nn.ReLU))] == [nn.ConvTranspose2d] * 2
    assert net.head[1].kernel_size == (7, 7) and net.last_conv.kernel_size == (7, 7)
    norms = [m for m in net.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert norms and not any(m.affine or m.track_running_stats for m in norms)


@pytest.mark.parametrize("train", [False, True])
def test_global_skip_zero_last_layer_returns_the_input(train):
    torch.manual_seed(0)
    net = DeblurGANGenerator(**TINY).train(train)
    with torch.no_grad():
        net.last_conv.weight.zero_()
        net.last_conv.bias.zero_()
    x = torch.rand(2, 3, 11, 13)
    torch.testing.assert_close(net(x), x, rtol=0, atol=0)


def test_output_is_the_papers_minus_one_one_formula_mapped_to_unit_range():
    # paper: y' = clamp(x' + r, -1, 1) on x' = 2x - 1; ours must equal (y' + 1) / 2
    torch.manual_seed(0)
    net = DeblurGANGenerator(**TINY).eval()
    with torch.no_grad():
        net.last_conv.bias.fill_(0.8)  # large residuals so that the clamp is exercised
        x = torch.rand(1, 3, 12, 16)
        r = net.residual(x)
        paper = ((2 * x - 1 + r).clamp(-1, 1) + 1) / 2
        y = net(x)
    torch.testing.assert_close(y, paper)
    assert (y == 1).any() and y.min() >= 0 and y.max() <= 1


def test_clamp_can_be_disabled():
    torch.manual_seed(0)
    net = DeblurGANGenerator(**TINY, clamp_output=False).eval()
    with torch.no_grad():
        net.last_conv.bias.fill_(3.0)
        x = torch.rand(1, 3, 8, 8)
        torch.testing.assert_close(net(x), x + net.residual(x) / 2)
        assert net(x).max() > 1


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (8, 8), (37, 53), (6, 9)])
def test_output_shape_for_any_size(size):
    torch.manual_seed(0)
    net = DeblurGANGenerator(**TINY).eval()
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_registry_contract_odd_size_batch_two_gradients_everywhere():
    check_contract(DeblurGANGenerator(**TINY))


def test_eval_is_deterministic_and_per_image_train_uses_dropout():
    torch.manual_seed(0)
    net = DeblurGANGenerator(**TINY)
    x = torch.rand(2, 3, 16, 20)
    with torch.no_grad():
        assert not torch.equal(net(x), net(x))  # dropout 0.5 in every ResBlock
        net.eval()
        torch.testing.assert_close(net(x), net(x), rtol=0, atol=0)
        # InstanceNorm: an image's result does not depend on the rest of the batch
        torch.testing.assert_close(net(x)[1:], net(x[1:]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("options, message", [
    (dict(width=0), "width: expected an integer >= 1, got 0"),
    (dict(n_blocks=-1), "n_blocks"),
    (dict(dropout=-0.1), "dropout: expected a probability"),
    (dict(clamp_output="no"), "clamp_output"),
    (dict(pad_mode="circular"), "pad_mode.*'circular'"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        DeblurGANGenerator(**{**TINY, **options})


def test_bad_input_is_refused():
    with pytest.raises(ImageError, match=r"expected \(B, 3, H, W\), got \(1, 4, 8, 8\)"):
        DeblurGANGenerator(**TINY)(torch.rand(1, 4, 8, 8))
