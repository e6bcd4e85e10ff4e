"""int8 quantization of an exported model with onnxruntime (static, QDQ format).

The weights of every ``Conv`` become int8 with one scale per output channel; the activations
entering them become uint8 with one scale per tensor, fixed from the min/max seen on calibration
inputs (``onnxruntime.quantization.quantize_static``, ``CalibrationMethod.MinMax``). Only
convolutions are quantized by default: NAFNet's LayerNorm and SimpleGate products stay in fp32,
where rounding them would cost quality for no speed (they are memory bound, not compute bound).
Whether int8 is worth it is measured, not assumed: ``benchmarks/inference_variants.py`` reports its
speed and its dev-set gains beside fp32.

    >>> data = export_onnx(model)                                   # fp32, checked against torch
    >>> q = quantize_int8(data, calibration_inputs(photos))         # bytes of the int8 model
    >>> deblur(image, OnnxRunner(q))
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ConfigError, ImageError

__all__ = ["calibration_inputs", "quantize_int8", "QUANTIZED_OPS"]

QUANTIZED_OPS = ("Conv",)


def calibration_inputs(images: Sequence[np.ndarray], *, crop: int = 256, per_image: int = 1,
                       seed: int = 0) -> list[np.ndarray]:
    """Model inputs for calibration: random ``crop x crop`` windows of ``images``.

    Args:
        images: ``H x W x 3`` (or ``H x W x 4``, alpha dropped) float arrays in [0, 1], photos like
            the ones the quantized model will see (blurry photos).
        crop: side of each window; images smaller than it are used whole.
        per_image: windows per image.
        seed: seeds the window positions.

    Returns:
        ``(1, 3, h, w)`` float32 arrays (``h, w <= crop``).
    """
    if not images:
        raise ConfigError("calibration images: got none; give at least one photo")
    if isinstance(crop, bool) or not isinstance(crop, int) or crop < 16:
        raise ConfigError(f"calibration crop: expected an integer >= 16, got {crop!r}")
    if isinstance(per_image, bool) or not isinstance(per_image, int) or per_image < 1:
        raise ConfigError(f"calibration per_image: expected an integer >= 1, got {per_image!r}")
    rng = np.random.default_rng(seed)
    out = []
    for i, img in enumerate(images):
        a = np.asarray(img)
        if a.ndim != 3 or a.shape[2] not in (3, 4) or not np.issubdtype(a.dtype, np.floating):
            raise ImageError(f"calibration image {i}: expected an H x W x 3 float array, "
                             f"got {a.dtype} {a.shape}")
        if a.size and (float(a.min()) < 0 or float(a.max()) > 1):
            raise ImageError(f"calibration image {i}: values must lie in [0, 1], "
                             f"got [{float(a.min()):.3g}, {float(a.max()):.3g}]")
        h, w = a.shape[:2]
        for _ in range(per_image):
            y = int(rng.integers(0, h - crop + 1)) if h > crop else 0
            x = int(rng.integers(0, w - crop + 1)) if w > crop else 0
            window = a[y:y + crop, x:x + crop, :3]
            out.append(np.ascontiguousarray(window.transpose(2, 0, 1)[None], dtype=np.float32))
    return out


def quantize_int8(onnx_model: bytes, calibration: Sequence[np.ndarray], *,
                  op_types: Sequence[str] = QUANTIZED_OPS, per_channel: bool = True) -> bytes:
    """Static int8 quantization (QDQ) of an ONNX model with input ``image``.

    Args:
        onnx_model: the fp32 model's bytes (from :func:`deblurkit.infer.export_onnx`).
        calibration: ``(1, 3, h, w)`` float32 inputs (:func:`calibration_inputs`); their
            activations fix the int8 ranges.
        op_types: ONNX operator types to quantize (default: convolutions only).
        per_channel: one weight scale per output channel (else per tensor).

    Returns:
        The quantized model as bytes (runs in onnxruntime's CPU provider; same input/output).
    """
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)

    if not isinstance(onnx_model, (bytes, bytearray)) or not onnx_model:
        raise ConfigError(f"onnx_model: expected the ONNX model's bytes, got {type(onnx_model).__name__}")
    if not calibration:
        raise ConfigError("calibration: got no inputs; give at least one (1, 3, h, w) array")
    for i, x in enumerate(calibration):
        if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim != 4 or x.shape[:2] != (1, 3):
            got = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
            raise ImageError(f"calibration input {i}: expected a (1, 3, h, w) float32 array, got {got}")
    if not op_types or not all(isinstance(t, str) for t in op_types):
        raise ConfigError(f"op_types: expected ONNX operator names such as 'Conv', got {op_types!r}")

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(calibration)

        def get_next(self):  # noqa: D401 - onnxruntime's interface
            x = next(self._it, None)
            return None if x is None else {"image": x}

    root = logging.getLogger()
    level = root.level
    with tempfile.TemporaryDirectory(prefix="deblurkit-int8-") as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(bytes(onnx_model))
        root.setLevel(logging.ERROR)  # onnxruntime logs a pre-processing suggestion on the root logger
        try:
            quantize_static(src, dst, _Reader(), quant_format=QuantFormat.QDQ,
                            op_types_to_quantize=list(op_types), per_channel=per_channel,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax)
        finally:
            root.setLevel(level)
        return dst.read_bytes()
