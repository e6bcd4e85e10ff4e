"""deblur(): dtype/shape round trips, grey and alpha handling, clipping, tiling, caching, refusals.

The models here are small stand-in modules with known outputs, so that every expected result is
computed independently with numpy; no shipped weights are needed.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch import nn

import deblurkit.infer.api as api
from deblurkit.errors import ConfigError, ImageError, WeightsError
from deblurkit.infer import deblur, get_runner
from deblurkit.infer.backends import OnnxRunner, TorchRunner


class Affine(nn.Module):
    """Per-channel ``y = a_c * x + b_c``: a known pointwise model."""

    def __init__(self, a=(0.5, 0.5, 0.5), b=(0.25, 0.25, 0.25)):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a).view(1, 3, 1, 1))
        self.b = nn.Parameter(torch.tensor(b).view(1, 3, 1, 1))

    def forward(self, x):
        assert x.shape[1] == 3 and x.dtype == torch.float32
        return x * self.a + self.b


def _np_affine(x01: np.ndarray, a=(0.5, 0.5, 0.5), b=(0.25, 0.25, 0.25)) -> np.ndarray:
    return x01 * np.asarray(a, np.float64) + np.asarray(b, np.float64)


@pytest.fixture(scope="module", autouse=True)
def _onnx_cache(tmp_path_factory):
    """The default backend ("auto") exports to ONNX on the CPU: keep its cache out of ~/.cache."""
    old = os.environ.get("DEBLURKIT_CACHE")
    os.environ["DEBLURKIT_CACHE"] = str(tmp_path_factory.mktemp("onnx-cache"))
    yield
    if old is None:
        del os.environ["DEBLURKIT_CACHE"]
    else:
        os.environ["DEBLURKIT_CACHE"] = old


@pytest.fixture(autouse=True)
def _fresh_cache():
    api.clear_cache()
    yield
    api.clear_cache()


def test_uint8_round_trip(rng):
    img = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
    out = deblur(img, Affine())
    assert out.dtype == np.uint8 and out.shape == img.shape
    ref = np.rint(_np_affine(img / 255.0) * 255).astype(np.uint8)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1  # float32 vs float64 rounding ties
    assert np.mean(out == ref) > 0.99


def test_uint16_round_trip(rng):
    img = rng.integers(0, 65536, (17, 12, 3), dtype=np.uint16)
    out = deblur(img, Affine())
    assert out.dtype == np.uint16 and out.shape == img.shape
    ref = np.rint(_np_affine(img / 65535.0) * 65535)
    assert np.abs(out.astype(np.int64) - ref).max() <= 2  # float32 has 24 bits of mantissa


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_float_round_trip_and_clipping(rng, dtype):
    img = rng.random((9, 14, 3)).astype(dtype)
    out = deblur(img, Affine(a=(2.0, 1.0, -1.0), b=(-0.5, 0.0, 0.5)))
    assert out.dtype == dtype and out.shape == img.shape
    ref = np.clip(_np_affine(img.astype(np.float64), (2.0, 1.0, -1.0), (-0.5, 0.0, 0.5)), 0, 1)
    assert out.min() >= 0 and out.max() <= 1  # the documented output range step
    tol = 1e-3 if dtype == np.float16 else 1e-6
    assert np.abs(out.astype(np.float64) - ref).max() < tol


def test_grey_is_replicated_and_averaged(rng):
    a, b = (0.2, 0.5, 0.8), (0.0, 0.1, 0.2)
    for img in (rng.random((10, 13)).astype(np.float32), rng.random((10, 13, 1)).astype(np.float32)):
        out = deblur(img, Affine(a, b))
        assert out.shape == img.shape and out.dtype == np.float32
        ref = img.astype(np.float64) * np.mean(a) + np.mean(b)
        assert np.abs(out - ref).max() < 1e-6


def test_alpha_passes_through_unchanged(rng):
    img = rng.integers(0, 256, (11, 8, 4), dtype=np.uint8)
    out = deblur(img, Affine())
    assert out.shape == img.shape
    assert np.array_equal(out[..., 3], img[..., 3])
    ref = np.rint(_np_affine(img[..., :3] / 255.0) * 255)
    assert np.abs(out[..., :3] - ref).max() <= 1
    f = rng.random((6, 7, 4)).astype(np.float32)
    assert np.array_equal(deblur(f, Affine())[..., 3], f[..., 3])


def test_module_mode_is_restored():
    net = nn.Sequential(nn.Conv2d(3, 3, 1), nn.Dropout(0.9))  # dropout would change the output
    nn.init.dirac_(net[0].weight)
    nn.init.zeros_(net[0].bias)
    net.train()
    img = np.random.default_rng(1).random((8, 9, 3)).astype(np.float32)
    assert np.abs(deblur(img, net) - img).max() < 1e-6  # ran in eval mode: dropout off
    assert net.training and net[1].training  # and the caller's mode is back


def test_torch_inputs_keep_type_shape_and_device():
    x = torch.rand(2, 3, 15, 10)
    out = deblur(x, Affine())
    assert isinstance(out, torch.Tensor) and out.shape == x.shape and out.dtype == x.dtype
    assert torch.allclose(out, x * 0.5 + 0.25, atol=1e-6)
    chw = torch.rand(4, 9, 9, dtype=torch.float64)
    out = deblur(chw, Affine())
    assert out.shape == chw.shape and out.dtype == torch.float64
    assert torch.equal(out[3], chw[3])  # alpha
    assert torch.allclose(out[:3], chw[:3] * 0.5 + 0.25, atol=1e-6)
    u8 = torch.randint(0, 256, (3, 5, 6), dtype=torch.uint8)
    out = deblur(u8, Affine())
    assert out.dtype == torch.uint8 and out.shape == u8.shape
    assert (out.int() - torch.round((u8 / 255 * 0.5 + 0.25) * 255).int()).abs().max() <= 1


def test_tiling_and_ensemble_agree_with_whole_image(rng, monkeypatch):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.Tanh(), nn.Conv2d(6, 3, 3, padding=1),
                        nn.Sigmoid()).eval()
    img = rng.random((70, 95, 3)).astype(np.float32)
    whole = deblur(img, net)
    tiled = deblur(img, net, tile=40, overlap=8)  # margin 2 >= receptive radius 2: exact
    assert np.abs(tiled - whole).max() < 1e-5
    # automatic tiling above the threshold (lowered here so a small image crosses it)
    calls = []
    runner = get_runner(net)
    monkeypatch.setattr(api, "AUTO_TILE_PIXELS", 64 * 64)
    logged = type("Logged", (), {"device": runner.device, "backend": "torch",
                                 "__call__": lambda self, t: calls.append(t.shape) or runner(t)})()
    auto = deblur(img, logged, overlap=8)
    assert len(calls) > 1 and all(s[-2] * s[-1] <= 64 * 64 for s in calls)
    assert np.abs(auto - whole).max() < 1e-5
    monkeypatch.undo()
    # ensemble of a pointwise model = the model
    pointwise = deblur(img, Affine(), ensemble=True)
    assert np.abs(pointwise - deblur(img, Affine())).max() < 1e-6


def test_named_models_are_loaded_once(monkeypatch):
    import deblurkit.models as models

    loads = []

    def fake_load(name, device="cpu"):
        loads.append((name, device))
        return Affine()

    monkeypatch.setattr(models, "load_pretrained", fake_load, raising=False)
    img = np.full((8, 8, 3), 0.5, np.float32)
    for _ in range(3):
        out = deblur(img, "toy")
    assert loads == [("toy", "cpu")]
    assert np.allclose(out, 0.5)
    runner = get_runner("toy", backend="torch")
    assert isinstance(runner, TorchRunner) and runner is get_runner("toy", backend="torch")
    auto = get_runner("toy")  # default backend on the CPU: torch, channels-last
    assert isinstance(auto, TorchRunner) and auto.channels_last and auto is get_runner("toy")
    assert isinstance(get_runner("toy", backend="onnxruntime"), OnnxRunner)


@pytest.mark.parametrize("bad,match", [
    (np.full((4, 4, 3), np.nan, np.float32), "image: contains 48 NaN"),
    (np.full((4, 4, 3), 1.5, np.float32), r"image: float values must lie in \[0, 1\]"),
    (-np.ones((4, 4, 3)), "min -1"),
    (np.zeros((4, 4, 3), np.int32), "image: dtype int32"),
    (np.zeros((4, 4, 2), np.float32), "image: has 2 channels"),
    (np.zeros((1, 4, 4, 3), np.float32), "image: expected an H x W"),
    (np.zeros((0, 4, 3), np.float32), "image: is empty"),
    (torch.full((3, 4, 4), float("inf")), "image: contains 48 NaN or infinite"),
    (torch.zeros(3, 4, 4, dtype=torch.int64), "image: dtype torch.int64"),
    ([[0.5]], "image: expected a numpy array or a torch tensor"),
])
def test_bad_images_refused(bad, match):
    with pytest.raises(ImageError, match=match):
        deblur(bad, Affine())


def test_bad_options_refused():
    img = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(ConfigError, match="backend: 'tensorrt'"):
        deblur(img, Affine(), backend="tensorrt")
    with pytest.raises(ConfigError, match="tile"):
        deblur(img, Affine(), tile=16, overlap=8)
    with pytest.raises(ConfigError, match="tile: expected an int or a pair"):
        deblur(img, Affine(), tile=("a", "b"))
    with pytest.raises(ConfigError, match="ensemble"):
        deblur(img, Affine(), ensemble="yes")
    with pytest.raises(ConfigError, match="model: expected"):
        deblur(img, 42)
    with pytest.raises(ConfigError, match="device: 'tpu'"):
        deblur(img, Affine(), device="tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA refusal")
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(ConfigError, match="CUDA is not available"):
        deblur(np.zeros((8, 8, 3), np.float32), Affine(), device="cuda")


def test_weights_file_errors(tmp_path):
    with pytest.raises(WeightsError, match="weights file not found"):
        deblur(np.zeros((8, 8, 3), np.float32), str(tmp_path / "none.safetensors"))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError, match="junk.safetensors: not a readable safetensors"):
        api.load_model(junk, arch="nafnet")


def test_unusual_numpy_layouts(rng):
    img = rng.integers(0, 65536, (9, 11, 3), dtype=np.uint16)
    swapped = img.astype(">u2")  # big-endian
    flipped = img[::-1, ::-1]  # negative strides
    for arr, ref_in in ((swapped, img), (flipped, flipped.copy())):
        out = deblur(arr, Affine())
        assert out.dtype == np.uint16 and out.shape == arr.shape
        ref = np.rint(_np_affine(ref_in / 65535.0) * 65535)
        assert np.abs(out.astype(np.int64) - ref).max() <= 2


def test_onnx_file_is_a_model(tmp_path, rng):
    from deblurkit.infer import export_onnx

    path = tmp_path / "affine.onnx"
    export_onnx(Affine(), path)
    x = rng.random((13, 17, 3)).astype(np.float32)
    got = deblur(x, str(path))
    np.testing.assert_allclose(got, np.clip(_np_affine(x), 0, 1), rtol=0, atol=1e-6)
    runner = get_runner(path)
    assert isinstance(runner, OnnxRunner) and get_runner(str(path)) is runner  # cached
    with pytest.raises(ConfigError, match=r"affine.onnx is an ONNX model; it runs on onnxruntime"):
        get_runner(path, backend="torch")
    with pytest.raises(ConfigError, match="arch: 'nafnet' applies only to a .safetensors"):
        get_runner(path, arch="nafnet")
    with pytest.raises(WeightsError, match="missing.onnx: ONNX file not found"):
        deblur(x, str(tmp_path / "missing.onnx"))
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(WeightsError, match="junk.onnx: cannot be loaded by onnxruntime"):
        deblur(x, str(tmp_path / "junk.onnx"))
