"""NAFNet (Chen et al., "Simple Baselines for Image Restoration", ECCV 2022)."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from model_helpers import count_params

from deblurkit import models
from deblurkit.errors import ConfigError, ImageError
from deblurkit.models.nafnet import NAFBlock, NAFNet, layer_norm_2d, simple_gate

TINY = dict(width=8, enc_blocks=[1, 1], middle_blocks=1, dec_blocks=[1, 1])


def _count(**options) -> int:
    return count_params(NAFNet, **options)


def _randomise(net: torch.nn.Module, seed: int = 0, std: float = 0.1) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return net


# Published parameter counts. The paper reports MACs only; the counts come from the authors'
# repository (megvii-research/NAFNet): issue #60, maintainer: "29.16M parameters in NAFNet-width32
# for the denoising task" (SIDD layout enc [2,2,4,8], middle 12, dec [2,2,2,2]); issue #37,
# maintainer's ptflops dump: one NAFBlock at 256 channels has 0.466 M parameters in its convs.
# The GoPro layouts (options/test/GoPro/NAFNet-width{32,64}.yml: enc [1,1,1,28], middle 1,
# dec [1,1,1,1]) are listed in third-party comparison tables as 17.1 M (width 32) and 67.9 M
# (width 64) parameters.
@pytest.mark.parametrize("options, published", [
    (dict(width=32, enc_blocks=[2, 2, 4, 8], middle_blocks=12, dec_blocks=[2, 2, 2, 2]), 29.16e6),
    (dict(width=32, enc_blocks=[1, 1, 1, 28], middle_blocks=1, dec_blocks=[1, 1, 1, 1]), 17.1e6),
    (dict(width=64, enc_blocks=[1, 1, 1, 28], middle_blocks=1, dec_blocks=[1, 1, 1, 1]), 67.9e6),
])
def test_parameter_counts_match_published_figures(options, published):
    assert _count(**options) == pytest.approx(published, rel=0.01)


def test_registered_paper_sizes_have_the_paper_counts():
    for name, published in (("nafnet-w32", 17.1e6), ("nafnet-w64", 67.9e6)):
        opts = models.model_options(name)
        assert opts["enc_blocks"] == [1, 1, 1, 28] and opts["dec_blocks"] == [1, 1, 1, 1]
        assert opts["middle_blocks"] == 1 and opts["pixel_unshuffle"] == 1
        assert _count(**opts) == pytest.approx(published, rel=0.01)


def test_default_size_is_small():
    n = _count(**models.model_options("nafnet"))
    assert 0.5e6 < n < 3e6


def test_block_convolutions_match_the_maintainers_count():
    block = NAFBlock(256)
    conv_params = sum(p.numel() for n, p in block.named_parameters()
                      if not n.startswith(("norm", "beta", "gamma")))
    assert conv_params == pytest.approx(0.466e6, abs=0.0006e6)


def test_layer_norm_2d_matches_torch_layer_norm_over_channels():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 5, 7, 9, generator=g, dtype=torch.float64) * 3 + 1
    w = torch.randn(5, generator=g, dtype=torch.float64)
    b = torch.randn(5, generator=g, dtype=torch.float64)
    ref = F.layer_norm(x.permute(0, 2, 3, 1), (5,), w, b, eps=1e-6).permute(0, 3, 1, 2)
    torch.testing.assert_close(layer_norm_2d(x, w, b, 1e-6), ref)


def test_simple_gate_multiplies_the_two_halves():
    x = torch.arange(2 * 4 * 1 * 1, dtype=torch.float32).reshape(2, 4, 1, 1)
    out = simple_gate(x)
    assert out.shape == (2, 2, 1, 1)
    assert out.flatten().tolist() == [0 * 2, 1 * 3, 4 * 6, 5 * 7]


def test_block_is_identity_at_init_and_not_after_training_scales_move():
    block = NAFBlock(8)
    x = torch.randn(2, 8, 6, 5)
    torch.testing.assert_close(block(x), x, rtol=0, atol=0)
    with torch.no_grad():
        block.beta.fill_(0.5)
    assert not torch.allclose(block(x), x)


def test_untrained_network_is_the_identity_unless_asked_otherwise():
    x = torch.rand(2, 3, 21, 30)
    torch.testing.assert_close(NAFNet(**TINY)(x), x, rtol=0, atol=0)
    torch.testing.assert_close(models.create("nafnet")(x), x, rtol=0, atol=0)
    assert (NAFNet(**TINY, identity_init=False)(x) - x).abs().max() > 1e-4
    with pytest.raises(ConfigError, match="identity_init"):
        NAFNet(**TINY, identity_init=1)


def test_zero_ending_gives_the_input_back_exactly():
    net = NAFNet(**TINY)
    _randomise(net)
    with torch.no_grad():
        net.ending.weight.zero_()
        net.ending.bias.zero_()
    x = torch.rand(2, 3, 21, 30)
    torch.testing.assert_close(net(x), x, rtol=0, atol=0)


def test_level_widths_and_resolutions_follow_the_paper_u_net():
    net = NAFNet(width=8, enc_blocks=[1, 2, 0], middle_blocks=1, dec_blocks=[0, 1, 1])
    assert [d.in_channels for d in net.downs] == [8, 16, 32]
    assert [d.stride for d in net.downs] == [(2, 2)] * 3
    assert [len(e) for e in net.encoders] == [1, 2, 0]
    assert all(b.expand.in_channels == 64 for b in net.middle)
    assert [len(d) for d in net.decoders] == [0, 1, 1]
    assert [d[0].expand.in_channels for d in net.decoders if len(d)] == [16, 8]
    assert net.multiple == 8


@pytest.mark.parametrize("unshuffle", [1, 2])
@pytest.mark.parametrize("shape", [(1, 3, 1, 1), (1, 3, 3, 17), (3, 3, 37, 53), (2, 3, 32, 64)])
def test_any_size_and_batch(unshuffle, shape):
    net = _randomise(NAFNet(**TINY, pixel_unshuffle=unshuffle)).eval()
    x = torch.rand(*shape)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    if shape[0] > 1:  # images of a batch do not interact (LayerNorm per pixel, attention per image)
        with torch.no_grad():
            torch.testing.assert_close(net(x[1:2]), y[1:2], rtol=1e-5, atol=1e-5)


def test_padding_is_reflect_and_cropped_back():
    net = NAFNet(**TINY, pad_mode="reflect")
    x = torch.rand(1, 3, 5, 6)
    padded = net._pad(x)
    assert padded.shape[-2:] == (8, 8)
    torch.testing.assert_close(padded[..., 5, :6], x[..., 3, :])  # reflect: row 5 mirrors row 3
    rep = NAFNet(**TINY, pad_mode="replicate")._pad(x)
    torch.testing.assert_close(rep[..., 7, :6], x[..., 4, :])
    # reflect cannot pad 3 rows onto a 1-row image: falls back to replicate
    tiny = net._pad(torch.rand(1, 3, 1, 8))
    assert tiny.shape[-2:] == (4, 8) and torch.equal(tiny[..., 3, :], tiny[..., 0, :])


def test_bad_inputs_and_options_are_refused():
    net = NAFNet(**TINY)
    with pytest.raises(ImageError, match=r"expected \(B, 3, H, W\), got \(1, 4, 8, 8\)"):
        net(torch.rand(1, 4, 8, 8))
    with pytest.raises(ImageError, match=r"got \(3, 8, 8\)"):
        net(torch.rand(3, 8, 8))
    with pytest.raises(ConfigError, match="pad_mode.*'zeros'"):
        NAFNet(pad_mode="zeros")
    with pytest.raises(ConfigError, match="pixel_unshuffle.*3"):
        NAFNet(pixel_unshuffle=3)
    with pytest.raises(ConfigError, match="enc_blocks.*-1"):
        NAFNet(enc_blocks=[1, -1], dec_blocks=[1, 1])


def test_grey_input():
    net = NAFNet(in_channels=1, **TINY)
    assert net(torch.rand(2, 1, 9, 11)).shape == (2, 1, 9, 11)


def test_onnx_export_with_dynamic_size_matches_torch():
    ort = pytest.importorskip("onnxruntime")
    net = _randomise(NAFNet(**TINY, pixel_unshuffle=2)).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # legacy-exporter deprecation and tracer notes
        torch.onnx.export(net, (torch.rand(1, 3, 37, 53),), buf, dynamo=False, opset_version=17,
                          input_names=["image"], output_names=["restored"],
                          dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                        "restored": {0: "batch", 2: "height", 3: "width"}})
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    for shape in [(1, 3, 37, 53), (2, 3, 48, 66)]:
        x = torch.rand(*shape)
        got = sess.run(None, {"image": x.numpy()})[0]
        with torch.no_grad():
            ref = net(x).numpy()
        assert got.shape == shape
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    net = _randomise(NAFNet(**TINY)).eval()
    x = torch.rand(2, 3, 37, 53)
    with torch.no_grad():
        ref = net(x)
        got = net.cuda()(x.cuda()).cpu()
    torch.testing.assert_close(got, ref, rtol=1e-3, atol=1e-3)


def test_local_mean_equals_scipy_uniform_filter_inside_and_repeats_at_the_border():
    from scipy import ndimage

    from deblurkit.models.nafnet import local_mean

    x = torch.rand(2, 3, 20, 23, dtype=torch.float64)
    k = 5
    got = local_mean(x, k).numpy()
    ref = ndimage.uniform_filter(x.numpy(), size=(1, 1, k, k), mode="constant")
    r = k // 2
    np.testing.assert_allclose(got[..., r:-r, r:-r], ref[..., r:-r, r:-r], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got[..., :r, r:-r], np.repeat(got[..., r:r + 1, r:-r], r, axis=2))
    np.testing.assert_array_equal(got[..., r:-r, -r:], np.repeat(got[..., r:-r, -r - 1:-r], r, axis=3))
    whole = local_mean(x, 1000).numpy()  # a window covering the image: the global mean everywhere
    np.testing.assert_allclose(whole, np.broadcast_to(x.numpy().mean(axis=(2, 3), keepdims=True), x.shape))


def test_pool_window_scales_per_level_and_covering_window_equals_global_pooling():
    net = NAFNet(**TINY, pixel_unshuffle=2, pool_window=96)
    windows = ([b.pool_window for lvl in net.encoders for b in lvl], [b.pool_window for b in net.middle],
               [b.pool_window for lvl in net.decoders for b in lvl])
    assert windows == ([48, 24], [12], [24, 48])
    net.set_pool_window(None)
    assert all(b.pool_window is None for b in net.modules() if isinstance(b, NAFBlock))
    x = torch.rand(1, 3, 40, 52)
    x[..., 26:] += 1.0  # halves with different statistics: local and global means differ
    glob = _randomise(NAFNet(**TINY, pixel_unshuffle=2)).eval()
    big = _randomise(NAFNet(**TINY, pixel_unshuffle=2, pool_window=10_000)).eval()
    with torch.no_grad():
        torch.testing.assert_close(big(x), glob(x), rtol=0, atol=1e-5)


def test_local_pooling_changes_a_block_and_a_covering_window_does_not():
    block = _randomise(NAFBlock(4), std=0.3).eval()
    x = torch.rand(1, 4, 16, 32)
    x[..., 16:] *= torch.tensor([3.0, -2.0, 0.5, 1.0]).view(1, 4, 1, 1)  # survives the LayerNorm
    with torch.no_grad():
        ref = block(x)
        block.pool_window = 10_000
        torch.testing.assert_close(block(x), ref, rtol=0, atol=1e-6)
        block.pool_window = 4
        local = block(x)
    assert (local - ref).abs().max() > 1e-4  # 100x the tolerance of the covering-window check


@pytest.mark.parametrize("bad", [0, -3, True, 2.5, "64"])
def test_bad_pool_window_is_refused(bad):
    with pytest.raises(ConfigError, match=f"pool_window.*{bad!r}"):
        NAFNet(**TINY, pool_window=bad)
