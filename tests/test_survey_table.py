"""benchmarks/survey_table.py: smoke run on constructed data with tiny models, checked against
scikit-image's PSNR; argument errors; the ratio arithmetic; Table 1's figure for tao2018."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from benchmark_loader import load_benchmark
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio

from deblurkit import models
from deblurkit.errors import ConfigError, WeightsError
from deblurkit.io import write_image

TRAINED = ("kupyn2018", "tao2018")  # one single-output and one multi-scale (list output) model


@pytest.fixture(scope="module")
def st():
    return load_benchmark("survey_table")


def _tiny_weights(name: str, path: Path, seed: int = 0) -> Path:
    """A tiny-size model of ``name`` nudged off its init, saved as the GPU runs save theirs
    (safetensors with 'arch' and 'options' metadata)."""
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    net = models.create(name, size="tiny")
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    tensors = {k: v.detach().contiguous().clone() for k, v in net.state_dict().items()}
    save_file(tensors, str(path), metadata={
        "arch": name, "options": json.dumps(dict(models.MODELS[name].sizes["tiny"]))})
    return path


@pytest.fixture
def data(tmp_path, monkeypatch, rng):
    """DEBLURKIT_DATA with one paired set of one 40x56 pair (sharp: smoothed noise; blur: sharp
    blurred horizontally)."""
    root = tmp_path / "data"
    sharp = ndimage.gaussian_filter(rng.random((40, 56, 3)), (1.5, 1.5, 0)).astype(np.float32)
    blur = ndimage.uniform_filter1d(sharp, 7, axis=1).astype(np.float32)
    for sub, img in (("sharp", sharp), ("blur", blur)):
        (root / "dev" / "tiny_set" / sub).mkdir(parents=True)
        write_image(root / "dev" / "tiny_set" / sub / "p0.png", img)
    monkeypatch.setenv("DEBLURKIT_DATA", str(root))
    return root / "dev" / "tiny_set"


@pytest.fixture
def small(st, monkeypatch):
    """Every model at its tiny size, times and MACs at 64x48 instead of 1280x720."""
    monkeypatch.setattr(st, "build", lambda name, size: models.create(name, size="tiny"))
    # no shipped weights either: every model is tiny here (the shipped default is not)
    monkeypatch.setattr(models, "resolve_weights_entry",
                        lambda name: (_ for _ in ()).throw(WeightsError(f"model {name!r}: none shipped")))
    monkeypatch.setattr(st, "H", 48)
    monkeypatch.setattr(st, "W", 64)
    return st


def test_smoke_run_has_a_row_per_method_and_matches_skimage(small, data, tmp_path, capsys):
    st = small
    weights = [f"{n}={_tiny_weights(n, tmp_path / f'{n}.safetensors')}" for n in TRAINED]
    out_json = tmp_path / "out.json"
    assert st.main(["--sets", "tiny_set", "--limit-pairs", "1", "--repeats", "1", "--limit", "1000",
                    "--weights", *weights, "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    for name in st.METHODS:  # one row in the CPU table and one in the paper table
        rows = [line for line in text.splitlines() if line.startswith(f"| {name} |")]
        assert len(rows) == 2, (name, rows)
        if name not in TRAINED:
            assert "untrained: skipped" in rows[0] and "| untrained |" in rows[0]
    assert "*blurred input*" in text

    report = json.loads(out_json.read_text())
    assert list(report["cpu"]) == list(st.METHODS) == list(report["paper"])
    # PSNR of input and output against an independent reference (scikit-image), on the one pair.
    from deblurkit.io import read_image

    blur = read_image(data / "blur" / "p0.png").pixels[:, :, :3]
    sharp = read_image(data / "sharp" / "p0.png").pixels[:, :, :3]
    for name in TRAINED:
        q = report["cpu"][name]["quality"]["tiny_set"]
        assert q["pairs"] == 1
        assert q["psnr_in"] == pytest.approx(peak_signal_noise_ratio(sharp, blur, data_range=1), abs=1e-3)
        net = models.create(name, size="tiny")
        from safetensors.torch import load_file

        net.load_state_dict(load_file(str(tmp_path / f"{name}.safetensors")))
        with torch.no_grad():
            y = net.eval()(torch.from_numpy(blur).permute(2, 0, 1)[None])
        y = (y[0] if isinstance(y, list) else y)[0].permute(1, 2, 0).clamp(0, 1).numpy()
        assert q["psnr"] == pytest.approx(peak_signal_noise_ratio(sharp, y, data_range=1), abs=1e-2)
        assert q["gain"] == pytest.approx(q["psnr"] - q["psnr_in"], abs=1e-9)
        assert report["cpu"][name]["weights"].endswith(f"{name}.safetensors")
    for name, r in report["cpu"].items():
        assert r["params"] == models.count_parameters(models.create(name, size="tiny"))
        assert r["time"]["seconds"] is not None and r["time"]["seconds"] > 0
    # tao2018's published figure is compared with the same structure at 3x3 kernels (Table 1)
    fig = report["paper"]["tao2018"]["figure"]
    assert fig["params"] == 3.76e6 and fig["ours"] == 3_764_195 and fig["own"] is True
    assert report["paper"]["kupyn2018"]["figure"]["own"] is False
    assert report["paper"]["nafnet"]["size"] == "w64"


def test_normalise_divides_by_the_reference(st):
    assert st.normalise({"a": 2.0, "b": 5.0, "c": None}, "a") == {"a": 1.0, "b": 2.5, "c": None}
    assert st.normalise({"a": None, "b": 5.0}, "a") == {"a": None, "b": None}
    assert st.normalise({"a": 0.0, "b": 5.0}, "a") == {"a": None, "b": None}
    # Table III: Kupyn 0.8 s = 1, Nah 4.3 s = 5.375
    ratios = st.normalise(dict(st.TABLE3_GPU_SECONDS), "kupyn2018")
    assert ratios["nah2017"] == pytest.approx(4.3 / 0.8) and ratios["tao2018"] == pytest.approx(2.0)


def test_time_model_over_the_limit_reports_the_estimate(small):
    image = np.zeros((48, 64, 3), np.uint8)
    t = small.time_model(models.create("kupyn2018", size="tiny"), image, 1, limit=1e-9)
    assert t["seconds"] is None and t["note"].startswith("skipped")
    assert t["estimate"] is not None and t["estimate"] >= 0
    t = small.time_model(models.create("nah2017", size="tiny"), image, 1, limit=1000)
    assert t["seconds"] > 0 and t["estimate"] is None


def test_paper_size_of_each_method(st):
    assert {n: st.paper_size(n) for n in st.METHODS} == {
        **{n: "paper" for n in st.METHODS if n != "nafnet"}, "nafnet": "w64"}
    with pytest.raises(ConfigError, match="model 'nafnet-w32': no 'paper' size"):
        st.paper_size("nafnet-w32")


def test_bad_arguments_are_refused(st, data, tmp_path):
    methods = list(st.METHODS)
    with pytest.raises(ConfigError, match=r"--weights 'nah2017': expected NAME=PATH"):
        st.parse_weights(["nah2017"], methods)
    with pytest.raises(ConfigError, match=r"--weights 'foo=x.safetensors': 'foo' is not one of"):
        st.parse_weights(["foo=x.safetensors"], methods)
    with pytest.raises(WeightsError, match=r"--weights 'nah2017=.*missing.safetensors': file .* not found"):
        st.parse_weights([f"nah2017={tmp_path / 'missing.safetensors'}"], methods)
    w = _tiny_weights("tao2018", tmp_path / "tao.safetensors")
    with pytest.raises(ConfigError, match="given twice"):
        st.parse_weights([f"tao2018={w}", f"tao2018={w}"], methods)
    with pytest.raises(ConfigError, match=r"--weights kupyn2018=.*tao.safetensors: the file records "
                                          r"arch 'tao2018', not 'kupyn2018'"):
        st.trained_model("kupyn2018", w)
    with pytest.raises(ConfigError, match=r"--sets 'nope': no folder"):
        st.main(["--sets", "nope"])
    with pytest.raises(ConfigError, match=r"--models 'deepdeblur': unknown"):
        st.main(["--models", "deepdeblur"])
    with pytest.raises(ConfigError, match=r"--repeats 0: expected an integer >= 1"):
        st.main(["--sets", "tiny_set", "--repeats", "0"])
    with pytest.raises(ConfigError, match=r"--limit -1.0: expected a positive"):
        st.main(["--sets", "tiny_set", "--limit", "-1"])
