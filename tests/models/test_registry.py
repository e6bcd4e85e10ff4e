"""The model registry: explicit registration, create(), list_models(), load_pretrained()."""

from __future__ import annotations

import json

import pytest
import torch

from deblurkit import models, paths
from deblurkit.errors import ConfigError, DeblurkitError, WeightsError
from deblurkit.models import registry
from deblurkit.models.nafnet import NAFNet
from deblurkit.models.weights import save_weights


def test_list_models_names_the_nafnet_sizes():
    names = models.list_models()
    assert names == sorted(names)
    for name in ("nafnet", "nafnet-w32", "nafnet-w64"):
        assert name in names
        assert models.MODELS[name].name == name
        assert models.MODELS[name].paper and models.MODELS[name].description


def test_duplicate_name_raises_and_registry_is_unchanged():
    before = dict(models.MODELS)
    spec = models.MODELS["nafnet"]
    with pytest.raises(ConfigError, match="'nafnet'.*already registered"):
        models.register(spec)
    assert models.MODELS == before


def test_register_new_spec_then_create(monkeypatch):
    monkeypatch.setattr(registry, "MODELS", dict(registry.MODELS))
    spec = models.ModelSpec(name="toy", constructor=lambda channels=3: torch.nn.Conv2d(channels, channels, 1),
                            defaults={"channels": 3}, description="toy", paper="none")
    registry.register(spec)
    assert "toy" in registry.list_models()
    assert isinstance(registry.create("toy", channels=2), torch.nn.Conv2d)


def test_register_refuses_a_size_with_unknown_options(monkeypatch):
    monkeypatch.setattr(registry, "MODELS", dict(registry.MODELS))
    spec = models.ModelSpec(name="toy2", constructor=torch.nn.Identity, defaults={},
                            description="", paper="", sizes={"big": {"width": 4}})
    with pytest.raises(ConfigError, match="size 'big'.*'width'"):
        registry.register(spec)


def test_unknown_name_lists_choices():
    with pytest.raises(DeblurkitError) as err:
        models.create("nafnett")
    msg = str(err.value)
    assert "'nafnett'" in msg and "\n" not in msg
    for name in models.list_models():
        assert name in msg


def test_unknown_option_is_named_with_valid_options():
    with pytest.raises(ConfigError) as err:
        models.create("nafnet", widht=8)
    msg = str(err.value)
    assert "'widht'" in msg and "width" in msg and "enc_blocks" in msg


def test_bad_option_value_is_refused_by_the_constructor():
    with pytest.raises(ConfigError, match="width.*-3"):
        models.create("nafnet", width=-3)
    with pytest.raises(ConfigError, match="enc_blocks.*dec_blocks"):
        models.create("nafnet", enc_blocks=[1, 1], dec_blocks=[1])


def test_options_and_sizes_are_applied():
    net = models.create("nafnet", size="tiny", width=4)
    assert isinstance(net, NAFNet)
    assert net.intro.out_channels == 4
    assert len(net.encoders) == len(models.MODELS["nafnet"].sizes["tiny"]["enc_blocks"])
    with pytest.raises(ConfigError, match="size 'huge'.*tiny"):
        models.create("nafnet", size="huge")
    # the defaults dict of a spec is never mutated by create()
    before = json.dumps(dict(models.MODELS["nafnet"].defaults), sort_keys=True)
    opts = models.model_options("nafnet")
    opts["enc_blocks"].append(99)
    assert json.dumps(dict(models.MODELS["nafnet"].defaults), sort_keys=True) == before


def _fake_weights_dir(tmp_path, monkeypatch, entries):
    monkeypatch.setattr(paths, "weights_dir", lambda: tmp_path)
    (tmp_path / "registry.json").write_text(json.dumps(entries))


def test_shipped_registry_file_is_valid_json_object():
    data = json.loads((paths.weights_dir() / "registry.json").read_text())
    assert isinstance(data, dict)
    from deblurkit.estimation import ESTIMATORS
    from deblurkit.models.weights import file_sha256

    for key, entry in data.items():
        assert entry["model"] in models.MODELS or entry["model"] in ESTIMATORS, key
        assert (paths.weights_dir() / entry["file"]).is_file(), key
        assert file_sha256(paths.weights_dir() / entry["file"]) == entry["sha256"], key


def test_load_pretrained_without_weights_says_how_to_train(tmp_path, monkeypatch):
    _fake_weights_dir(tmp_path, monkeypatch, {})
    with pytest.raises(WeightsError, match="'nafnet-w32': no shipped weights; train it"):
        models.load_pretrained("nafnet-w32")
    with pytest.raises(WeightsError, match="'default': no shipped weights"):
        models.load_pretrained("default")
    with pytest.raises(DeblurkitError, match="'nosuch': unknown"):
        models.load_pretrained("nosuch")


def test_load_pretrained_round_trip_and_default_alias(tmp_path, monkeypatch):
    torch.manual_seed(0)
    options = dict(models.MODELS["nafnet"].sizes["tiny"])
    net = models.create("nafnet", **options)
    for p in net.parameters():  # non-trivial values everywhere (beta/gamma start at 0)
        torch.nn.init.normal_(p, std=0.1)
    digest = save_weights(net, tmp_path / "tiny.safetensors", metadata={"model": "nafnet"})
    _fake_weights_dir(tmp_path, monkeypatch, {
        "nafnet-tiny-test": {"model": "nafnet", "options": options, "file": "tiny.safetensors",
                             "sha256": digest, "recipe": {}, "figures": {}, "default": True}})
    x = torch.rand(1, 3, 19, 23)
    expected = net.eval()(x)
    for name in ("nafnet-tiny-test", "default", "nafnet"):
        loaded = models.load_pretrained(name)
        assert not loaded.training
        torch.testing.assert_close(loaded(x), expected, rtol=0, atol=0)


def test_load_pretrained_refuses_a_wrong_sha(tmp_path, monkeypatch):
    options = dict(models.MODELS["nafnet"].sizes["tiny"])
    save_weights(models.create("nafnet", **options), tmp_path / "t.safetensors", metadata={})
    _fake_weights_dir(tmp_path, monkeypatch, {
        "t": {"model": "nafnet", "options": options, "file": "t.safetensors", "sha256": "0" * 64}})
    with pytest.raises(WeightsError, match="t.safetensors: sha256 mismatch: expected 0{64}, got [0-9a-f]{64}"):
        models.load_pretrained("t")


def test_corrupt_weights_registry_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "weights_dir", lambda: tmp_path)
    (tmp_path / "registry.json").write_text("{not json")
    with pytest.raises(WeightsError, match="registry.json: cannot be read as JSON"):
        models.load_pretrained("default")
    (tmp_path / "registry.json").write_text(json.dumps({"x": {"model": "nafnet"}}))
    with pytest.raises(WeightsError, match="entry 'x' lacks file, sha256"):
        models.load_pretrained("x")
