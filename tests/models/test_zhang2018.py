"""Zhang et al. (CVPR 2018) spatially variant RNN deblurring network; survey eq. 22."""

from __future__ import annotations

import pytest
import torch

from deblurkit.errors import ConfigError, ImageError
from deblurkit.models.zhang2018 import (
    DIRECTIONS,
    SpatiallyVariantRNNLayer,
    ZhangSVRNN,
    spatially_variant_rnn,
)
from model_helpers import check_contract

TINY = dict(feat_channels=4, rnn_channels=4, rnn_layers=2, feat_kernels=[3, 3], dec_kernels=[3, 3],
            guide_width=4, guide_convs=[1, 1, 1, 1], gate_kernel=1)


def _pixel_loop(x: torch.Tensor, p: torch.Tensor, direction: str) -> torch.Tensor:
    """Eq. 22 pixel by pixel with Python floats: h[k] = (1 - p[k]) x[k] + p[k] h[k-1], h[-1] = 0."""
    xs, ps = x.tolist(), p.tolist()
    b_n, c_n, h_n, w_n = x.shape
    out = [[[[0.0] * w_n for _ in range(h_n)] for _ in range(c_n)] for _ in range(b_n)]
    for b in range(b_n):
        for c in range(c_n):
            if direction in ("left_to_right", "right_to_left"):
                lines = [[(i, j) for j in range(w_n)] for i in range(h_n)]
            else:
                lines = [[(i, j) for i in range(h_n)] for j in range(w_n)]
            for line in lines:
                if direction in ("right_to_left", "bottom_to_top"):
                    line = line[::-1]
                prev = 0.0
                for i, j in line:
                    pk = ps[b][c][i][j]
                    prev = (1.0 - pk) * xs[b][c][i][j] + pk * prev
                    out[b][c][i][j] = prev
    return torch.tensor(out, dtype=x.dtype)


def _xp(shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=dtype)
    p = torch.rand(*shape, generator=g, dtype=dtype) * 1.98 - 0.99  # (-1, 1) as tanh gives
    return x, p


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_recurrence_equals_a_pixel_loop(direction):
    x, p = _xp((2, 3, 5, 7))
    torch.testing.assert_close(spatially_variant_rnn(x, p, direction), _pixel_loop(x, p, direction))


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_recurrence_float32_matches_the_pixel_loop(direction):
    x, p = _xp((1, 2, 6, 4), seed=3, dtype=torch.float32)
    torch.testing.assert_close(spatially_variant_rnn(x, p, direction), _pixel_loop(x, p, direction),
                               rtol=1e-5, atol=1e-5)


def test_recurrence_constructed_case():
    # x = 1, p = 1/2 everywhere: h[k] = 1/2 + h[k-1]/2 = 1 - 2^-(k+1) along the scan
    x = torch.ones(1, 1, 3, 4, dtype=torch.float64)
    p = torch.full_like(x, 0.5)
    k = torch.arange(4, dtype=torch.float64)
    ramp = 1 - 0.5 ** (k + 1)
    torch.testing.assert_close(spatially_variant_rnn(x, p, "left_to_right")[0, 0], ramp.expand(3, 4))
    torch.testing.assert_close(spatially_variant_rnn(x, p, "right_to_left")[0, 0], ramp.flip(0).expand(3, 4))
    ramp3 = 1 - 0.5 ** (torch.arange(3, dtype=torch.float64) + 1)
    torch.testing.assert_close(spatially_variant_rnn(x, p, "top_to_bottom")[0, 0], ramp3[:, None].expand(3, 4))
    torch.testing.assert_close(spatially_variant_rnn(x, p, "bottom_to_top")[0, 0],
                               ramp3.flip(0)[:, None].expand(3, 4))
    # p = 0: no recurrence, h = x
    y = torch.randn(2, 2, 3, 3, dtype=torch.float64)
    for d in DIRECTIONS:
        torch.testing.assert_close(spatially_variant_rnn(y, torch.zeros_like(y), d), y)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_recurrence_gradient_is_correct(direction):
    x, p = _xp((2, 2, 3, 4), seed=5)
    x.requires_grad_(True)
    p.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: spatially_variant_rnn(a, b, direction), (x, p))


def test_recurrence_second_derivative_is_correct():
    x, p = _xp((1, 2, 3, 3), seed=6)
    x.requires_grad_(True)
    p.requires_grad_(True)
    for d in ("left_to_right", "bottom_to_top"):
        assert torch.autograd.gradgradcheck(lambda a, b: spatially_variant_rnn(a, b, d), (x, p))


def test_recurrence_refuses_bad_arguments():
    x, p = _xp((1, 1, 2, 2))
    with pytest.raises(ConfigError, match="direction.*'diagonal'"):
        spatially_variant_rnn(x, p, "diagonal")
    with pytest.raises(ImageError, match=r"p: expected the shape of x \(1, 1, 2, 2\), got \(1, 1, 2, 3\)"):
        spatially_variant_rnn(x, torch.zeros(1, 1, 2, 3, dtype=x.dtype), "left_to_right")
    with pytest.raises(ImageError, match=r"x: expected a \(B, C, H, W\) tensor, got \(2, 2\)"):
        spatially_variant_rnn(x[0, 0], p[0, 0], "left_to_right")
    with pytest.raises(ImageError, match="dtype"):
        spatially_variant_rnn(x, p.float(), "left_to_right")


def test_rnn_layer_with_zero_weights_fuses_four_copies_of_its_input():
    torch.manual_seed(0)
    layer = SpatiallyVariantRNNLayer(3).double()
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    out = layer(x, torch.zeros(2, 12, 5, 6, dtype=torch.float64))
    ref = torch.nn.functional.leaky_relu(layer.fuse(torch.cat([x] * 4, dim=1)), 0.1)
    torch.testing.assert_close(out, ref)


def test_rnn_layer_uses_each_direction_with_its_own_weights():
    torch.manual_seed(0)
    layer = SpatiallyVariantRNNLayer(2).double()
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64)
    gates = torch.rand(1, 8, 4, 5, dtype=torch.float64) * 1.8 - 0.9
    hs = [_pixel_loop(x, gates[:, 2 * i:2 * i + 2], d) for i, d in enumerate(DIRECTIONS)]
    ref = torch.nn.functional.leaky_relu(layer.fuse(torch.cat(hs, dim=1)), 0.1)
    torch.testing.assert_close(layer(x, gates), ref)


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (8, 8), (37, 53), (17, 9)])
def test_output_shape_for_any_size(size):
    torch.manual_seed(0)
    net = ZhangSVRNN(**TINY).eval()
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_registry_contract_odd_size_batch_two_gradients_everywhere():
    check_contract(ZhangSVRNN(**TINY))


def test_weight_maps_shape_range_and_layout():
    torch.manual_seed(0)
    net = ZhangSVRNN(**TINY)
    g = net.weights(torch.rand(2, 3, 16, 24))
    assert g.shape == (2, 4 * 2 * 4, 8, 12)  # 4 directions x 2 layers x 4 channels at half size
    assert g.abs().max() < 1


def test_global_residual_option_and_the_papers_default():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 13, 10)
    net = ZhangSVRNN(**TINY, global_residual=True).eval()
    with torch.no_grad():
        net.dec2.weight.zero_()
        net.dec2.bias.zero_()
        torch.testing.assert_close(net(x), x, rtol=0, atol=0)
    plain = ZhangSVRNN(**TINY).eval()  # the paper: the last conv outputs the image itself
    with torch.no_grad():
        plain.dec2.weight.zero_()
        plain.dec2.bias.zero_()
        assert plain(x).abs().max() == 0


def test_batch_items_are_independent():
    torch.manual_seed(0)
    net = ZhangSVRNN(**TINY).eval()
    x = torch.rand(2, 3, 11, 14)
    with torch.no_grad():
        torch.testing.assert_close(net(x)[1:], net(x[1:]), rtol=1e-5, atol=1e-6)


def test_receptive_field_spans_the_image():
    # the recurrence carries information across the whole row: a change at the left edge reaches
    # the right edge of a 64-pixel-wide image (a CNN of the same depth could not)
    torch.manual_seed(0)
    net = ZhangSVRNN(**TINY).double().eval()
    with torch.no_grad():
        net.gates.bias.fill_(3.0)  # p close to 1: long memory
    x = torch.rand(1, 3, 8, 64, dtype=torch.float64, requires_grad=True)
    net(x)[0, :, :, -1].sum().backward()
    assert x.grad[0, :, :, :8].abs().sum() > 0


# Parameter count of the paper size. The CVPR paper states its model size in MB, not a parameter
# count; the reference is the authors' released network (zhjwustc/cvpr18_rnn_deblur_matcaffe,
# matlab/test/model/test.prototxt), counted here layer by layer as (kernel, in, out), weights + bias.
_RELEASED_LAYERS = [
    (11, 3, 16), (7, 16, 32),                                   # conve1_1, conve1_2
    (3, 3, 64), (3, 64, 64), (3, 64, 128), (3, 128, 128),       # convg1_*, convg2_*
    (3, 128, 256), (3, 256, 256), (3, 256, 256),                # convg3_*
    (3, 256, 512), (3, 512, 512), (3, 512, 256),                # convg4_*
    (3, 512, 128), (3, 128, 128), (3, 256, 256), (3, 256, 512),  # convgd1, convgd1_2, convgd2, convgd2_2
    (3, 128, 32), (3, 128, 32), (3, 128, 32), (3, 128, 32),     # conv_rnn1..4 (the RNNs have none)
    (9, 64, 16), (5, 32, 3),                                    # convd1_1, convd1_2
]


def test_paper_size_matches_the_released_network():
    reference = sum(k * k * cin * cout + cout for k, cin, cout in _RELEASED_LAYERS)
    with torch.device("meta"):
        net = ZhangSVRNN()  # the constructor defaults are the paper's sizes
    n = sum(prm.numel() for prm in net.parameters())
    assert n == pytest.approx(reference, rel=0.01)
    assert n == pytest.approx(9.23e6, rel=0.01)


@pytest.mark.parametrize("options, message", [
    (dict(rnn_layers=0), "rnn_layers: expected an integer >= 1, got 0"),
    (dict(feat_kernels=[4, 3]), "feat_kernels: kernel sizes must be odd"),
    (dict(dec_kernels=[3]), "dec_kernels: expected a list of 2"),
    (dict(guide_convs=[1, 1, 1]), "guide_convs: expected 4 integers"),
    (dict(gate_kernel=2), "gate_kernel: expected an odd integer >= 1, got 2"),
    (dict(global_residual="yes"), "global_residual"),
    (dict(pad_mode="zeros"), "pad_mode.*'zeros'"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        ZhangSVRNN(**{**TINY, **options})


def test_bad_input_is_refused():
    net = ZhangSVRNN(**TINY)
    with pytest.raises(ImageError, match=r"expected \(B, 3, H, W\), got \(1, 1, 8, 8\)"):
        net(torch.rand(1, 1, 8, 8))
