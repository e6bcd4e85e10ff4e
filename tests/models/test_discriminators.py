"""Discriminators against their papers' tables (parameter counts, receptive field, output sizes)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deblurkit.errors import ConfigError, ImageError
from deblurkit.models import MODELS, count_parameters
from deblurkit.models.discriminators import (
    DISCRIMINATORS,
    create_discriminator,
    discriminator_options,
    list_discriminators,
)


def test_registry_is_separate_from_the_generators():
    assert set(list_discriminators()) == {"patchgan", "patchgan_conditional", "wgan_gp_critic", "nah2017_discriminator"}
    assert not set(DISCRIMINATORS) & set(MODELS)


def _conv_params(cin, cout, k, bias):
    return cin * cout * k * k + (cout if bias else 0)


def test_patchgan_parameter_count_follows_pix2pix():
    # C64 (no norm, bias) - C128 - C256 - C512 (batch norm: no conv bias, 2 BN params / channel) - C1.
    def expected(cin):
        return (_conv_params(cin, 64, 4, True) + _conv_params(64, 128, 4, False) + 2 * 128
                + _conv_params(128, 256, 4, False) + 2 * 256 + _conv_params(256, 512, 4, False) + 2 * 512
                + _conv_params(512, 1, 4, True))

    assert count_parameters(create_discriminator("patchgan")) == expected(3) == 2_765_633
    assert count_parameters(create_discriminator("patchgan_conditional")) == expected(6) == 2_768_705


def test_nah2017_parameter_count_follows_their_table_1():
    # Nah et al. Table 1: 5x5 convs 3->32->32->64->64->128->128->256->256->512, a 4x4 conv 512->512,
    # a fully connected 512->1; no biases.
    widths = [3, 32, 32, 64, 64, 128, 128, 256, 256, 512]
    expected = sum(_conv_params(a, b, 5, False) for a, b in zip(widths, widths[1:]))
    expected += _conv_params(512, 512, 4, False) + 512
    d = create_discriminator("nah2017_discriminator")
    assert count_parameters(d) == expected == 10_725_216
    assert all(m.bias is None for m in d.modules() if isinstance(m, nn.Conv2d))


def test_nah2017_classifies_256_patches():
    d = create_discriminator("nah2017_discriminator", width=8)
    assert d(torch.rand(2, 3, 256, 256)).shape == (2, 1, 1, 1)
    assert d.output_size(512, 768) == (2, 3)
    with pytest.raises(ImageError, match="256x256"):
        d(torch.rand(1, 3, 128, 128))


@pytest.mark.parametrize("name,options", [("patchgan", {}), ("wgan_gp_critic", {"norm": "none"})])
def test_patchgan_scores_see_a_70x70_patch(name, options):
    """The support of one score's gradient with respect to the input is exactly 70x70."""
    torch.manual_seed(0)
    d = create_discriminator(name, width=4, **options).eval()  # eval: batch norm acts per pixel
    assert d.receptive_field == 70
    x = torch.rand(1, 3, 160, 160, requires_grad=True)
    out = d(x)
    i, j = out.shape[-2] // 2, out.shape[-1] // 2
    out[0, 0, i, j].backward()
    support = x.grad[0].abs().sum(0) > 0
    rows = support.any(1).nonzero().flatten()
    cols = support.any(0).nonzero().flatten()
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70


def test_wgan_gp_critic_has_no_batch_norm_and_no_sigmoid():
    torch.manual_seed(0)
    d = create_discriminator("wgan_gp_critic", width=8)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in d.modules())
    assert any(isinstance(m, nn.InstanceNorm2d) for m in d.modules())
    assert not any(isinstance(m, nn.Sigmoid) for m in d.modules())
    out = d(torch.rand(4, 3, 32, 32))
    assert out.min() < 0  # raw critic values, not probabilities


def test_conditional_discriminator_takes_the_blurred_image_too():
    d = create_discriminator("patchgan_conditional", width=4)
    assert d.conditional and d.in_channels == 6
    assert d(torch.rand(1, 6, 64, 64)).shape[1] == 1
    with pytest.raises(ImageError, match="expected 6 channels .*blur.* got 3"):
        d(torch.rand(1, 3, 64, 64))
    grey = create_discriminator("patchgan", image_channels=1, conditional=True, width=4)
    assert grey.in_channels == 2


def test_too_small_inputs_are_refused_with_the_minimum_size():
    d = create_discriminator("patchgan", width=4)
    with pytest.raises(ImageError, match=r"16x16 is too small .*at least 24x24"):
        d(torch.rand(1, 3, 16, 16))
    assert d(torch.rand(1, 3, 24, 24)).shape[-2:] == (1, 1)


def test_bad_names_and_options_are_refused():
    with pytest.raises(ConfigError, match="discriminator 'vgg': unknown; choose one of: nah2017_discriminator, patchgan"):
        create_discriminator("vgg")
    with pytest.raises(ConfigError, match="unknown option 'depth'; valid options: conditional"):
        create_discriminator("patchgan", depth=3)
    with pytest.raises(ConfigError, match="option norm: expected 'batch', 'instance' or 'none', got 'layer'"):
        create_discriminator("patchgan", norm="layer")
    with pytest.raises(ConfigError, match="option width: expected an integer >= 1, got 0"):
        create_discriminator("wgan_gp_critic", width=0)
    with pytest.raises(ConfigError, match="option conditional: expected true or false, got 'yes'"):
        create_discriminator("nah2017_discriminator", conditional="yes")
    assert discriminator_options("patchgan_conditional")["conditional"] is True
