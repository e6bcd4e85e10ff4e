"""ONNX export (checked against torch, dynamic H/W), onnxruntime runner, export cache, devices."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

import deblurkit.infer.api as api
import deblurkit.infer.backends as backends
from deblurkit.errors import ConfigError, ImageError, WeightsError
from deblurkit.infer import deblur, export_onnx, get_runner
from deblurkit.infer.backends import OnnxRunner, TorchRunner, cached_onnx, resolve_device
from deblurkit.models.nafnet import NAFNet


def tiny_nafnet(seed: int = 0) -> NAFNet:
    """A 2-level NAFNet with randomised block scales (at init every block is the identity)."""
    torch.manual_seed(seed)
    net = NAFNet(width=8, enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1), identity_init=False)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(("beta", "gamma")):
                p.normal_(0, 0.3)
    return net.eval()


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBLURKIT_CACHE", str(tmp_path / "cache"))
    api.clear_cache()
    yield
    api.clear_cache()


def test_export_matches_torch_on_new_sizes(tmp_path):
    net = tiny_nafnet()
    path = tmp_path / "m.onnx"
    data = export_onnx(net, path)
    assert path.read_bytes() == data
    graph = onnx.load(str(path)).graph
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims[1] == 3 and all(isinstance(d, str) for d in (dims[0], dims[2], dims[3]))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in [(1, 3, 33, 50), (3, 3, 16, 24)]:  # sizes not used by the export's own check
        x = torch.rand(shape)
        with torch.no_grad():
            ref = net(x).numpy()
        got = sess.run(None, {"image": x.numpy()})[0]
        assert got.shape == ref.shape
        assert np.abs(got - ref).max() <= 1e-4


class BakesShape(nn.Module):
    """Its output depends on H through a Python int, which tracing freezes: exports wrongly."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        h = int(x.shape[-2])
        return x * self.scale * (h / 100.0)


def test_export_that_does_not_match_is_refused_and_not_written(tmp_path):
    path = tmp_path / "bad.onnx"
    with pytest.raises(WeightsError, match="max abs difference to torch"):
        export_onnx(BakesShape(), path)
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_onnx_session_options():
    runner = OnnxRunner(export_onnx(tiny_nafnet()), "cpu")
    opts = runner.session.get_session_options()
    assert opts.intra_op_num_threads == torch.get_num_threads()
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    with pytest.raises(WeightsError, match="ONNX bytes: cannot be loaded"):
        OnnxRunner(b"garbage", "cpu")
    data = export_onnx(tiny_nafnet())
    x = torch.rand(1, 3, 21, 30)
    for level, expected in [("disable", ort.GraphOptimizationLevel.ORT_DISABLE_ALL),
                            ("basic", ort.GraphOptimizationLevel.ORT_ENABLE_BASIC),
                            ("extended", ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)]:
        other = OnnxRunner(data, "cpu", graph_optimization=level)
        assert other.session.get_session_options().graph_optimization_level == expected
        assert (other(x) - runner(x)).abs().max() <= 1e-5  # same model, other graph rewrites
    with pytest.raises(ConfigError, match="graph_optimization: expected one of disable, basic, extended, all, got 'max'"):
        OnnxRunner(data, "cpu", graph_optimization="max")
    # reflect padding traced into the graph cannot pad a 2-pixel side: one clear line, not a crash
    with pytest.raises(ImageError, match="image: onnxruntime cannot run this model on a 2x9 input"):
        runner(torch.rand(1, 3, 2, 9))


def test_cache_exports_once_and_tracks_weights(tmp_path, monkeypatch):
    net = tiny_nafnet()
    first = cached_onnx(net, "tiny net")
    assert first.parent == tmp_path / "cache" and first.name.startswith("tiny_net-")
    calls = []
    real_export = backends.export_onnx
    monkeypatch.setattr(backends, "export_onnx", lambda *a, **k: calls.append(1))
    assert cached_onnx(net, "tiny net") == first and calls == []  # reused, not re-exported
    monkeypatch.setattr(backends, "export_onnx", real_export)
    with torch.no_grad():
        net.ending.bias.add_(0.01)
    second = cached_onnx(net, "tiny net")
    assert second != first and second.exists() and second.parent == first.parent


def test_unwritable_cache_exports_in_memory(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("DEBLURKIT_CACHE", str(blocker / "cache"))
    net = tiny_nafnet()
    with caplog.at_level("WARNING", logger="deblurkit.infer"):
        got = cached_onnx(net, "tiny")
    assert isinstance(got, bytes) and "cannot be written" in caplog.text
    x = torch.rand(1, 3, 32, 40)
    with torch.no_grad():
        assert (OnnxRunner(got)(x) - net(x)).abs().max() <= 1e-4


def test_deblur_onnxruntime_equals_torch(rng):
    net = tiny_nafnet(1)
    img = rng.random((37, 53, 3)).astype(np.float32)
    a = deblur(img, net, backend="torch")
    b = deblur(img, net, backend="onnxruntime")
    assert np.abs(a - b).max() <= 1e-4
    assert np.abs(a - img).max() > 1e-3  # the net does something
    runner = get_runner(net, backend="onnxruntime")
    assert isinstance(runner, OnnxRunner) and get_runner(net, backend="onnxruntime") is runner
    with torch.no_grad():
        net.ending.bias.add_(0.05)  # an in-place change: the cached export must not be reused
    changed = get_runner(net, backend="onnxruntime")
    assert changed is not runner
    assert np.abs(deblur(img, changed) - deblur(img, net)).max() <= 1e-4
    assert np.abs(deblur(img, runner) - b).max() == 0  # a runner brings its own backend
    runner = changed
    with pytest.raises(ConfigError, match="does not match"):
        deblur(img, runner, backend="torch")


def test_tiled_nafnet_agrees_with_whole_image(astronaut):
    # 152 x 192 is a multiple of the net's 4 so neither run pads inside the model. NAFNet's channel
    # attention pools over the whole input, so tiles cannot match exactly; stated tolerance for
    # this net: max difference < 5e-3 and no seam (the difference field changes by < 5e-3 between
    # neighbouring pixels). Negative control: hard seams (overlap 0) break both bounds.
    torch.manual_seed(2)
    net = NAFNet(width=8, enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1), identity_init=False)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(("beta", "gamma")):
                p.normal_(0, 0.1)
    net.eval()
    img = np.ascontiguousarray(astronaut[100:252, 150:342])
    whole = deblur(img, net)
    assert np.abs(whole - img).mean() > 0.02  # the net changes the image a lot
    for overlap, ok in ((32, True), (0, False)):
        diff = (deblur(img, net, tile=96, overlap=overlap) - whole).astype(np.float64)
        step = max(np.abs(np.diff(diff, axis=0)).max(), np.abs(np.diff(diff, axis=1)).max())
        assert (np.abs(diff).max() < 5e-3 and step < 5e-3) == ok, (overlap, np.abs(diff).max(), step)


def test_torch_runner_variants_agree():
    net = tiny_nafnet(3)
    x = torch.rand(1, 3, 40, 44)
    ref = TorchRunner(net)(x)
    assert torch.allclose(TorchRunner(net, channels_last=True)(x), ref, atol=1e-5)
    bf16 = TorchRunner(net, autocast_dtype=torch.bfloat16)(x)
    assert bf16.dtype == torch.float32 and (bf16 - ref).abs().max() < 0.1


def test_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="device: 'gpu'"):
        resolve_device("gpu")
    with pytest.raises(ConfigError, match="device: 'mps'"):
        resolve_device("mps")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")


def test_auto_backend_is_channels_last_torch_on_cpu(rng):
    net = tiny_nafnet(4)
    img = rng.random((70, 81, 3)).astype(np.float32)
    auto = deblur(img, net)
    assert np.abs(auto - deblur(img, net, backend="torch")).max() <= 1e-5
    assert np.abs(auto - deblur(img, net, backend="onnxruntime")).max() <= 1e-4
    tiny_side = rng.random((2, 9, 3)).astype(np.float32)  # onnxruntime alone refuses this size
    assert deblur(tiny_side, net).shape == (2, 9, 3)


def test_torch_bf16_backend_is_close_to_fp32_but_runs_in_bf16():
    from deblurkit.infer import make_runner

    net = tiny_nafnet()
    x = torch.rand(1, 3, 33, 47)
    ref = make_runner(net, "cpu", "torch")(x)
    runner = make_runner(net, "cpu", "torch-bf16")
    assert runner.autocast_dtype == torch.bfloat16 and runner.backend == "torch-bf16"
    got = runner(x)
    assert got.dtype == torch.float32 and got.shape == ref.shape
    err = (got - ref).abs().max()
    assert 0 < err < 0.05  # rounded to bf16 inside, yet the same model
    with pytest.raises(ConfigError, match="backend: 'bf16' is not one of auto, torch, torch-bf16, onnxruntime"):
        make_runner(net, "cpu", "bf16")
