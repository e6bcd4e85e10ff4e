"""int8 quantization through onnxruntime (deblurkit/infer/quantize.py)."""

from __future__ import annotations

import io

import numpy as np
import onnx
import pytest
import torch

from deblurkit.errors import ConfigError, ImageError
from deblurkit.infer import OnnxRunner, export_onnx
from deblurkit.infer.quantize import calibration_inputs, quantize_int8
from deblurkit.models.nafnet import NAFNet


def _photo(seed: int, h: int = 80, w: int = 96) -> np.ndarray:
    """A smooth random picture in [0, 1] (activations with realistic ranges, unlike white noise)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, h // 8, w // 8, generator=g)
    return torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear")[0].permute(1, 2, 0).numpy()


@pytest.fixture(scope="module")
def fp32_and_int8():
    torch.manual_seed(0)
    net = NAFNet(width=8, enc_blocks=[1, 1], middle_blocks=1, dec_blocks=[1, 1], pixel_unshuffle=2,
                 identity_init=False).eval()
    data = export_onnx(net)
    q = quantize_int8(data, calibration_inputs([_photo(i) for i in range(4)], crop=64, per_image=2))
    return net, data, q


def test_only_convolutions_are_quantized(fp32_and_int8):
    _, data, q = fp32_and_int8
    ops = [n.op_type for n in onnx.load(io.BytesIO(q)).graph.node]
    fp32_convs = sum(n.op_type == "Conv" for n in onnx.load(io.BytesIO(data)).graph.node)
    assert ops.count("Conv") == fp32_convs
    # every Conv gets its input and weight through QuantizeLinear/DequantizeLinear pairs
    assert ops.count("DequantizeLinear") >= 2 * fp32_convs
    assert "QuantizeLinear" in ops
    assert not any(op.startswith("QLinear") and op != "QLinearConv" for op in ops)


def test_int8_output_is_close_to_fp32_but_not_identical(fp32_and_int8):
    net, data, q = fp32_and_int8
    x = torch.from_numpy(_photo(10, 72, 88)).permute(2, 0, 1)[None].contiguous()
    ref = OnnxRunner(data)(x)
    got = OnnxRunner(q)(x)
    assert got.shape == ref.shape
    err = (got - ref).abs()
    psnr = 10 * torch.log10(1 / err.pow(2).mean())
    assert psnr > 30, f"int8 output only {psnr:.1f} dB from fp32"
    assert err.max() > 0  # it really is a different (rounded) model


def test_calibration_inputs_shapes_and_refusals():
    crops = calibration_inputs([_photo(0, 40, 50), _photo(1, 100, 120)], crop=32, per_image=3, seed=1)
    assert len(crops) == 6 and all(c.shape == (1, 3, 32, 32) and c.dtype == np.float32 for c in crops)
    assert calibration_inputs([_photo(0, 20, 24)], crop=32)[0].shape == (1, 3, 20, 24)  # small: whole
    again = calibration_inputs([_photo(0, 40, 50), _photo(1, 100, 120)], crop=32, per_image=3, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(crops, again))
    with pytest.raises(ConfigError, match="got none"):
        calibration_inputs([])
    with pytest.raises(ImageError, match=r"calibration image 0: values must lie in \[0, 1\]"):
        calibration_inputs([_photo(0) * 3])
    with pytest.raises(ImageError, match="calibration image 0: expected an H x W x 3 float array, got uint8"):
        calibration_inputs([np.zeros((8, 8, 3), np.uint8)])
    with pytest.raises(ConfigError, match="crop.*8"):
        calibration_inputs([_photo(0)], crop=8)


def test_quantize_refuses_bad_arguments(fp32_and_int8):
    _, data, _ = fp32_and_int8
    ok = calibration_inputs([_photo(0)], crop=32)
    with pytest.raises(ConfigError, match="no inputs"):
        quantize_int8(data, [])
    with pytest.raises(ImageError, match=r"calibration input 0: expected a \(1, 3, h, w\) float32 array, got float64"):
        quantize_int8(data, [ok[0].astype(np.float64)])
    with pytest.raises(ConfigError, match="onnx_model: expected the ONNX model's bytes, got str"):
        quantize_int8("model.onnx", ok)
