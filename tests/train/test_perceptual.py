"""Perceptual loss (survey eq. 27) on VGG features read from a user-provided safetensors file."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from deblurkit.errors import ConfigError, ImageError, WeightsError
from deblurkit.train import perceptual as P


def test_layer_table_matches_torchvision():
    # torchvision: vgg16().features has 31 modules, vgg19().features 37; conv3_3 is index 14 in both
    # (DeblurGAN's conv_3_3_layer = 14); conv parameter totals 14,714,688 and 20,024,384.
    assert len(P.vgg_layer_names("vgg16")) == 31 and len(P.vgg_layer_names("vgg19")) == 37
    assert P.vgg_layer_index("vgg16", "conv3_3") == P.vgg_layer_index("vgg19", "conv3_3") == 14
    assert P.vgg_layer_index("vgg16", "relu5_3") == 29 and P.vgg_layer_index("vgg19", "pool5") == 36
    for net, total in (("vgg16", 14_714_688), ("vgg19", 20_024_384)):
        shapes = P.vgg_state_shapes(net)
        assert sum(math.prod(s) for s in shapes.values()) == total
    assert P.vgg_state_shapes("vgg16", "conv1_2") == {
        "features.0.weight": (64, 3, 3, 3), "features.0.bias": (64,),
        "features.2.weight": (64, 64, 3, 3), "features.2.bias": (64,)}
    with pytest.raises(ConfigError, match="perceptual layer 'conv3_4': not a layer of vgg16; choose one of"):
        P.vgg_layer_index("vgg16", "conv3_4")
    with pytest.raises(ConfigError, match="perceptual network 'vgg11'"):
        P.vgg_layer_names("vgg11")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Random VGG16 weights up to conv3_3 under torchvision's key names, plus an unused key."""
    g = torch.Generator().manual_seed(0)
    state = {k: torch.randn(s, generator=g) * (0.1 if len(s) > 1 else 0.01)
             for k, s in P.vgg_state_shapes("vgg16", "conv3_3").items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    path = tmp_path_factory.mktemp("vgg") / "vgg16.safetensors"
    save_file(state, str(path))
    return path, state


def _reference_features(x, state):
    """conv3_3 of VGG16 by hand: (conv-relu)x2, pool, (conv-relu)x2, pool, conv-relu, conv-relu, conv."""
    mean = torch.tensor(P.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(P.IMAGENET_STD).view(1, 3, 1, 1)
    y = (x - mean) / std

    def conv(y, i):
        return F.conv2d(y, state[f"features.{i}.weight"], state[f"features.{i}.bias"], padding=1)

    y = F.max_pool2d(F.relu(conv(F.relu(conv(y, 0)), 2)), 2)
    y = F.max_pool2d(F.relu(conv(F.relu(conv(y, 5)), 7)), 2)
    return conv(F.relu(conv(F.relu(conv(y, 10)), 12)), 14)


def test_features_equal_a_hand_written_vgg(weights):
    path, state = weights
    feats = P.load_vgg_features(path, "vgg16", "conv3_3")
    x = torch.rand(2, 3, 24, 20, generator=torch.Generator().manual_seed(1))
    got = feats(x)
    assert got.shape == (2, 256, 6, 5)
    assert torch.allclose(got, _reference_features(x, state), rtol=1e-4, atol=1e-5)
    assert not feats.training and not any(p.requires_grad for p in feats.parameters())
    # a grey image is the same grey repeated in three channels
    grey = x[:, :1]
    assert torch.allclose(feats(grey), feats(grey.repeat(1, 3, 1, 1)))


def test_perceptual_loss_is_zero_for_identical_images_and_positive_otherwise(weights):
    path, state = weights
    loss = P.PerceptualLoss(P.load_vgg_features(path))
    g = torch.Generator().manual_seed(2)
    a = torch.rand(2, 3, 16, 16, generator=g)
    b = torch.rand(2, 3, 16, 16, generator=g)
    assert loss(a, a.clone()).item() == 0.0
    pred = b.clone().requires_grad_(True)
    value = loss(pred, a)
    ref = (_reference_features(b, state) - _reference_features(a, state)).square().mean()
    assert value.item() > 0 and value.item() == pytest.approx(ref.item(), rel=1e-4)
    value.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert loss([b, b[..., ::2, ::2]], a).item() == pytest.approx(value.item())  # finest of a list
    loss.train()
    assert not loss.features.training


def test_missing_weights_file_is_one_clear_error(tmp_path):
    missing = tmp_path / "nowhere" / "vgg16.safetensors"
    with pytest.raises(ConfigError) as info:
        P.load_vgg_features(missing)
    msg = str(info.value)
    assert "\n" not in msg and str(missing) in msg and "no such file" in msg
    assert "never downloaded" in msg and "features.N.weight" in msg


def test_bad_weights_files_are_refused(tmp_path, weights):
    _, state = weights
    partial = {k: v for k, v in state.items() if k != "features.12.weight"}
    save_file(partial, str(tmp_path / "partial.safetensors"))
    with pytest.raises(WeightsError,
                       match=r"partial.safetensors: missing 1 key\(s\) of vgg16 up to conv3_3, e.g. 'features.12.weight'"):
        P.load_vgg_features(tmp_path / "partial.safetensors")
    wrong = dict(state, **{"features.0.weight": torch.zeros(64, 1, 3, 3)})
    save_file(wrong, str(tmp_path / "wrong.safetensors"))
    with pytest.raises(WeightsError,
                       match=r"features.0.weight has shape \(64, 1, 3, 3\), vgg16 needs \(64, 3, 3, 3\)"):
        P.load_vgg_features(tmp_path / "wrong.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError, match="junk.safetensors: cannot be read as safetensors"):
        P.load_vgg_features(tmp_path / "junk.safetensors")
    # a shallower layer needs only the first convolutions of the same file
    assert P.load_vgg_features(tmp_path / "partial.safetensors", "vgg16", "relu2_2")(torch.rand(1, 3, 8, 8)).shape[1] == 128


def test_bad_inputs_are_refused(weights):
    feats = P.load_vgg_features(weights[0], "vgg16", "conv1_1")
    with pytest.raises(ImageError, match="expected a floating"):
        feats(torch.rand(1, 2, 8, 8))
    with pytest.raises(ImageError, match="pred shape"):
        P.perceptual_loss(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9), feats)
