"""Kernel estimators through ``deblurkit.infer.deblur`` and ``deblurkit deblur --model NAME``:
torch backend only, never tiled, explicit errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from deblurkit import estimation
from deblurkit.blur import blur, camera_shake_kernel
from deblurkit.cli import main
from deblurkit.errors import ConfigError
from deblurkit.estimation import L0Blind
from deblurkit.estimation.base import EstimatorModule
from deblurkit.infer import clear_cache, deblur, get_runner


class Recorder:
    """A fake uniform estimator: records the shapes it is given, returns the image inverted."""

    kind = "uniform"

    def __init__(self):
        self.shapes = []

    def estimate_kernel(self, image):
        return np.ones((1, 1), np.float32)

    def deblur(self, image):
        self.shapes.append(image.shape)
        return (1.0 - image).astype(np.float32)


@pytest.fixture
def recorder(monkeypatch):
    """Register ``Recorder`` as estimator "recorder" for one test."""
    made = []

    def factory():
        made.append(Recorder())
        return made[-1]

    monkeypatch.setattr(estimation, "ESTIMATORS", dict(estimation.ESTIMATORS))
    estimation.register("recorder", factory)
    clear_cache()
    yield made
    clear_cache()


@pytest.fixture(scope="module")
def blurred(camera):
    sharp = np.ascontiguousarray(camera[120:220, 180:300])
    return np.clip(blur(sharp, camera_shake_kernel(9, 3), boundary="reflect"), 0, 1)


def test_deblur_by_estimator_name_equals_the_estimator(blurred):
    est = L0Blind()
    expected = est.deblur(blurred)
    out = deblur(blurred, "classical")
    assert out.shape == blurred.shape and out.dtype == np.float32
    assert np.allclose(out, expected, atol=1e-5)
    rgb = np.stack([blurred, blurred[::-1], np.roll(blurred, 7, axis=1)], axis=2)
    assert np.allclose(deblur(rgb, "classical", backend="torch"), est.deblur(rgb), atol=1e-5)


def test_auto_backend_is_torch_and_onnx_is_refused():
    runner = get_runner("classical")
    assert runner.backend == "torch"
    assert get_runner("classical", backend="torch") is runner        # cached per name/device
    for backend in ("onnxruntime", "torch-bf16"):
        with pytest.raises(ConfigError, match=f"backend: estimator 'classical' runs on the torch fp32 "
                                              f"backend only, not '{backend}'"):
            get_runner("classical", backend=backend)
    with pytest.raises(ConfigError, match="arch: 'nafnet' applies only to a .safetensors"):
        get_runner("classical", arch="nafnet")


def test_estimators_are_never_tiled(recorder):
    big = np.full((1300, 1250, 3), 0.25, np.float32)          # 1.6 MP: end-to-end models tile it
    out = deblur(big, "recorder")
    assert recorder[0].shapes == [(1300, 1250, 3)]               # one call on the whole image
    assert np.allclose(out, 0.75)
    with pytest.raises(ConfigError, match="tile: tiling applies to end-to-end models; estimator "
                                          "'recorder' estimates one blur from the whole image"):
        deblur(big[:64, :64], "recorder", tile=32)
    with pytest.raises(ConfigError, match="overlap=8"):
        deblur(big[:64, :64], "recorder", overlap=8)


def test_an_estimator_module_runs_on_torch_without_export(recorder):
    module = EstimatorModule(Recorder())
    img = np.random.default_rng(0).random((70, 80, 3)).astype(np.float32)
    out = deblur(img, module)                                   # backend auto: no ONNX export
    assert np.allclose(out, 1.0 - img, atol=1e-6)
    with pytest.raises(ConfigError, match="tile"):
        deblur(img, module, tile=32)
    grey = img[..., 0]
    assert np.allclose(deblur(grey, module), 1.0 - grey, atol=1e-6)   # grey in, grey out


def test_cli_deblur_with_an_estimator(tmp_path, blurred, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.round(blurred * 255).astype(np.uint8)).save(src / "b.png")
    assert main(["deblur", str(src / "b.png"), "-o", str(tmp_path / "out"),
                 "--model", "classical"]) == 0
    result = np.asarray(Image.open(tmp_path / "out" / "b.png"), dtype=np.float32) / 255
    assert result.shape == blurred.shape
    expected = L0Blind().deblur(np.asarray(Image.open(src / "b.png"), dtype=np.float32) / 255)
    assert np.abs(result - expected).max() <= 1 / 255 + 1e-6
    capsys.readouterr()
    assert main(["deblur", str(src / "b.png"), "-o", str(tmp_path / "tiled"),
                 "--model", "classical", "--tile", "64"]) == 2
    assert "is a kernel estimator, which estimates one blur from the whole image" in capsys.readouterr().err
    assert not (tmp_path / "tiled" / "b.png").exists()
    assert main(["deblur", str(src / "b.png"), "-o", str(tmp_path / "onnx"),
                 "--model", "classical", "--backend", "onnxruntime"]) == 2
    assert "torch fp32 backend only" in capsys.readouterr().err
