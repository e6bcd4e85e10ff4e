"""Ramakrishnan et al. (ICCVW 2017) Deep Generative Filter generator."""

from __future__ import annotations

import pytest
import torch

from deblurkit.errors import ConfigError, ImageError
from deblurkit.models.ramakrishnan2017 import DeepGenerativeFilter
from model_helpers import check_contract, count_params

TINY = dict(growth_rate=4, num_layers=3)


def test_dilations_alternate_one_and_two_in_the_paper_size():
    with torch.device("meta"):
        net = DeepGenerativeFilter()  # constructor defaults = the paper's generator
    dil = [layer.conv.dilation for layer in net.dense]
    assert len(dil) == 10
    assert dil == [(1, 1), (2, 2)] * 5
    assert [layer.conv.padding for layer in net.dense] == dil  # shape-preserving
    assert all(layer.conv.kernel_size == (3, 3) for layer in net.dense)


def test_custom_dilation_cycle():
    net = DeepGenerativeFilter(growth_rate=2, num_layers=5, dilations=[1, 2, 3])
    assert [layer.conv.dilation[0] for layer in net.dense] == [1, 2, 3, 1, 2]


def test_dense_connectivity_channel_counts():
    k = 5
    net = DeepGenerativeFilter(growth_rate=k, num_layers=4)
    ins = [layer.body[1].in_channels for layer in net.dense]
    assert ins == [4 * k + i * k for i in range(4)]          # head + all earlier layers
    assert all(layer.conv.out_channels == k for layer in net.dense)
    assert net.transition[1].in_channels == 4 * k + 4 * k and net.transition[1].out_channels == 4 * k


def test_dense_layer_sees_every_earlier_output():
    # at run time the last dense layer receives the head output and both earlier layers' outputs
    torch.manual_seed(0)
    net = DeepGenerativeFilter(**TINY).eval()
    seen = {}
    net.dense[-1].register_forward_hook(lambda m, inp, out: seen.update(c=inp[0].shape[1]))
    net(torch.rand(1, 3, 6, 6))
    assert seen["c"] == 4 * 4 + 2 * 4


@pytest.mark.parametrize("train", [False, True])
def test_global_skip_zero_last_layer_returns_the_input(train):
    torch.manual_seed(0)
    net = DeepGenerativeFilter(**TINY).train(train)
    with torch.no_grad():
        net.last_conv.weight.zero_()
        net.last_conv.bias.zero_()
    x = torch.rand(2, 3, 9, 14)
    torch.testing.assert_close(net(x), x, rtol=0, atol=0)


def test_without_global_skip_tanh_is_mapped_to_unit_range():
    torch.manual_seed(0)
    net = DeepGenerativeFilter(**TINY, global_skip=False).eval()
    x = torch.rand(1, 3, 7, 8)
    with torch.no_grad():
        torch.testing.assert_close(net(x), (net.residual(x) + 1) / 2)
        net.last_conv.weight.zero_()
        net.last_conv.bias.zero_()
        torch.testing.assert_close(net(x), torch.full_like(x, 0.5))


@pytest.mark.parametrize("unshuffle", [1, 2])
@pytest.mark.parametrize("size", [(1, 1), (3, 5), (37, 53)])
def test_output_shape_for_any_size(size, unshuffle):
    torch.manual_seed(0)
    net = DeepGenerativeFilter(**TINY, pixel_unshuffle=unshuffle).eval()
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_pixel_unshuffle_global_skip_still_returns_the_input():
    net = DeepGenerativeFilter(**TINY, pixel_unshuffle=2).eval()
    with torch.no_grad():
        net.last_conv.weight.zero_()
        net.last_conv.bias.zero_()
    x = torch.rand(2, 3, 7, 10)
    torch.testing.assert_close(net(x), x, rtol=0, atol=0)
    assert net.head[1].in_channels == 12 and net.last_conv.out_channels == 12


def test_registry_contract_odd_size_batch_two_gradients_everywhere():
    check_contract(DeepGenerativeFilter(**TINY))


def test_eval_is_deterministic_and_train_uses_dropout():
    torch.manual_seed(0)
    net = DeepGenerativeFilter(**TINY)
    x = torch.rand(2, 3, 12, 12)
    with torch.no_grad():
        net(x)  # one train step of BatchNorm statistics
        a, b = net(x), net(x)
        assert not torch.equal(a, b)  # dropout 0.5 after the transition
        net.eval()
        torch.testing.assert_close(net(x), net(x), rtol=0, atol=0)


# Parameter count of the paper size. The paper states none; the reference is the authors' released
# Torch generator (sainandan-ramakrishnan/Deep-Generative-Filter-for-motion-deblurring: models2.lua,
# densefield.lua, opt.txt growthRate 64, depth 64, bottleneck -> 10 layers), counted here layer by
# layer: convs (weights + bias) and BatchNorm (scale + shift).
def _released_count(k: int = 64, layers: int = 10, channels: int = 3) -> int:
    conv = lambda ks, cin, cout: ks * ks * cin * cout + cout  # noqa: E731
    bn = lambda c: 2 * c  # noqa: E731
    n = conv(3, channels, 4 * k)                                     # head
    for i in range(layers):                                          # DenseConnectLayerCustom
        n += conv(1, 4 * k + i * k, 4 * k) + bn(4 * k) + conv(3, 4 * k, k) + bn(k)
    n += conv(1, 4 * k + layers * k, 4 * k) + bn(4 * k)              # LastLayer
    n += conv(3, 4 * k, k) + conv(3, k, channels)                    # tail
    return n


def test_paper_size_matches_the_released_generator():
    assert count_params(DeepGenerativeFilter) == pytest.approx(_released_count(), rel=0.01)
    assert count_params(DeepGenerativeFilter) == pytest.approx(3.26e6, rel=0.01)


@pytest.mark.parametrize("options, message", [
    (dict(growth_rate=0), "growth_rate: expected an integer >= 1, got 0"),
    (dict(num_layers=2.5), "num_layers"),
    (dict(dilations=[]), "dilations: expected a non-empty list"),
    (dict(dilations=[1, 0]), "dilations"),
    (dict(dropout=1.0), "dropout: expected a probability"),
    (dict(global_skip=1), "global_skip"),
    (dict(pixel_unshuffle=3), "pixel_unshuffle: expected 1, 2 or 4, got 3"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        DeepGenerativeFilter(**{**TINY, **options})


def test_bad_input_is_refused():
    with pytest.raises(ImageError, match=r"expected \(B, 3, H, W\), got \(3, 8, 8\)"):
        DeepGenerativeFilter(**TINY)(torch.rand(3, 8, 8))
