"""`deblurkit export`: a checked ONNX file with dynamic H and W; refusals."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import deblurkit.infer.api as api
import deblurkit.models as models
from deblurkit.cli import main
from deblurkit.models.nafnet import NAFNet


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    monkeypatch.setenv("DEBLURKIT_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    net = NAFNet(width=8, enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1))
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(("beta", "gamma")):
                p.normal_(0, 0.2)
    net.eval()
    monkeypatch.setattr(models, "load_pretrained",
                        lambda name, device="cpu": net if name == "tiny" else None, raising=False)
    api.clear_cache()
    yield net
    api.clear_cache()


def test_export_writes_checked_dynamic_onnx(tmp_path, tiny, capsys):
    out = tmp_path / "sub" / "tiny.onnx"
    assert main(["export", "--model", "tiny", "--onnx", str(out)]) == 0
    assert "matches torch within 0.0001" in capsys.readouterr().out
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = torch.rand(1, 3, 29, 61)
    with torch.no_grad():
        ref = tiny(x).numpy()
    assert np.abs(sess.run(None, {"image": x.numpy()})[0] - ref).max() <= 1e-4
    assert [p.name for p in out.parent.iterdir()] == ["tiny.onnx"]  # no temporary file left


def test_export_refusals(tmp_path, tiny, capsys):
    assert main(["export", "--model", "tiny", "--onnx", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["export", "--model", "tiny", "--onnx", str(tmp_path / "m.onnx"),
                 "--opset", "3"]) == 2
    assert "opset: expected 7-23, got 3" in capsys.readouterr().err
    assert main(["export", "--model", str(tmp_path / "none.safetensors"), "--onnx",
                 str(tmp_path / "m.onnx")]) == 2
    assert "weights file not found" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def _calibration_folder(folder, n=3):
    from deblurkit.io import write_image

    folder.mkdir()
    g = np.random.default_rng(0)
    for i in range(n):
        low = g.random((6, 8, 3)).astype(np.float32)
        img = np.kron(low, np.ones((10, 10, 1), np.float32))  # 60 x 80, blocky but not noise
        write_image(folder / f"p{i}.png", img)
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_export_int8_writes_a_quantized_model_close_to_torch(tmp_path, tiny, capsys):
    cal = _calibration_folder(tmp_path / "cal")
    out = tmp_path / "q.onnx"
    assert main(["export", "--model", "tiny", "--onnx", str(out), "--int8", "--calibration", str(cal)]) == 0
    text = capsys.readouterr().out
    assert "int8 QDQ convolutions, calibrated on 3 crops" in text
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    x = torch.from_numpy(np.kron(np.random.default_rng(1).random((3, 5, 7)), np.ones((1, 8, 8)))
                         ).float()[None]
    with torch.no_grad():
        ref = tiny(x).numpy()
    err = sess.run(None, {"image": x.numpy()})[0] - ref
    assert 0 < np.abs(err).max() and 10 * np.log10(1 / np.mean(err ** 2)) > 30
    # the int8 file is a model for `deblurkit deblur` too
    assert main(["deblur", str(cal / "p0.png"), "-o", str(tmp_path / "out"), "--model", str(out)]) == 0
    from deblurkit.io import read_image

    restored = read_image(tmp_path / "out" / "p0.png").pixels
    src = read_image(cal / "p0.png").pixels
    with torch.no_grad():
        expect = tiny(torch.from_numpy(src).permute(2, 0, 1)[None]).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    assert restored.shape == src.shape and np.abs(restored - expect).max() < 0.05


def test_export_int8_refusals(tmp_path, tiny, capsys):
    out = tmp_path / "q.onnx"
    assert main(["export", "--model", "tiny", "--onnx", str(out), "--int8"]) == 2
    assert "--int8 and --calibration DIR go together" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["export", "--model", "tiny", "--onnx", str(out), "--int8", "--calibration", str(empty)]) == 2
    assert f"calibration: no image files found in {empty}" in capsys.readouterr().err
    assert main(["export", "--model", "tiny", "--onnx", str(out), "--int8", "--calibration",
                 str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert not out.exists()


def test_deblur_with_the_bf16_backend(tmp_path, tiny):
    from deblurkit.io import read_image

    cal = _calibration_folder(tmp_path / "photos", n=1)
    for backend in ("torch", "torch-bf16"):
        assert main(["deblur", str(cal / "p0.png"), "-o", str(tmp_path / backend), "--model", "tiny",
                     "--backend", backend]) == 0
    fp32 = read_image(tmp_path / "torch" / "p0.png").pixels
    bf16 = read_image(tmp_path / "torch-bf16" / "p0.png").pixels
    assert fp32.shape == bf16.shape and np.abs(fp32 - bf16).max() <= 6 / 255
