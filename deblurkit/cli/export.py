"""``deblurkit export --model NAME --onnx OUT.onnx``: export a model to ONNX, checked against torch.

The ONNX graph has input ``image`` and output ``output``, both ``(B, 3, H, W)`` float32 in [0, 1]
with dynamic batch, height and width. Before anything is written the export is run with
onnxruntime on two input sizes and compared to torch (max abs difference <= 1e-4, else exit 2).
The file is written atomically. ``--model`` is a registry name or a ``.safetensors`` file (with
``--arch NAME`` when the file does not record its architecture).

``--int8 --calibration DIR`` writes instead a static int8 model (onnxruntime QDQ, convolutions
only; ``deblurkit/infer/quantize.py``) calibrated on crops of the photos in ``DIR`` (give photos
like the ones to deblur: blurry ones). It is compared with the fp32 export on those crops, and
refused (nothing written, exit 2) when it is less than 30 dB PSNR from it. Whether int8 is faster
on a machine is measured by ``benchmarks/inference_variants.py``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from ..errors import ConfigError

HELP = "export a model to ONNX"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="default",
                        help="registry name or path of a .safetensors file (default: %(default)s)")
    parser.add_argument("--arch", default=None, metavar="NAME",
                        help="architecture of a .safetensors --model without 'arch' metadata")
    parser.add_argument("--onnx", required=True, type=Path, metavar="OUT.onnx",
                        help="where to write the ONNX file")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: %(default)s)")
    parser.add_argument("--int8", action="store_true",
                        help="write a static int8 (QDQ) model calibrated on --calibration photos")
    parser.add_argument("--calibration", type=Path, metavar="DIR",
                        help="folder of photos (searched recursively) to calibrate --int8 on")
    parser.add_argument("--calibration-count", type=int, default=16, metavar="N",
                        help="use at most N photos of --calibration (default: %(default)s)")


MIN_INT8_PSNR = 30.0


def _calibration_images(folder: Path, count: int) -> list:
    from ..io import read_image
    from .deblur import image_files

    if not folder.is_dir():
        raise ConfigError(f"calibration: {folder} is not a folder")
    files = image_files(folder)[:count]
    if not files:
        raise ConfigError(f"calibration: no image files found in {folder}")
    images = []
    for p in files:
        pixels = read_image(p).pixels
        if pixels.ndim == 2 or pixels.shape[2] < 3:  # grey (+ alpha): replicated to RGB
            pixels = np.repeat(pixels[:, :, :1] if pixels.ndim == 3 else pixels[:, :, None], 3, axis=2)
        images.append(pixels[:, :, :3])
    return images


def run(args: argparse.Namespace) -> int:
    from ..infer.api import load_model
    from ..infer.backends import CHECK_SHAPES, EXPORT_ATOL, export_onnx

    out = args.onnx
    if out.exists() and out.is_dir():
        raise ConfigError(f"onnx: {out} is a folder; give a file path such as model.onnx")
    model_path = Path(args.model)
    if model_path.is_file() and model_path.resolve() == out.resolve():
        raise ConfigError(f"onnx: {out} is the input weights file; refusing to overwrite it")
    if not 7 <= args.opset <= 23:
        raise ConfigError(f"opset: expected 7-23, got {args.opset}")
    if args.int8 != (args.calibration is not None):
        raise ConfigError("int8: --int8 and --calibration DIR go together (int8 ranges come from "
                          "calibration photos)")
    if args.calibration_count < 1:
        raise ConfigError(f"calibration-count: expected >= 1, got {args.calibration_count}")
    model = load_model(args.model, arch=args.arch, device="cpu")
    if args.int8:
        return _export_int8(args, model, out)
    data = export_onnx(model, out, opset=args.opset)
    shapes = ", ".join("x".join(map(str, s)) for s in CHECK_SHAPES)
    print(f"wrote {out} ({len(data) / 1e6:.1f} MB, opset {args.opset}, dynamic batch/H/W); "
          f"matches torch within {EXPORT_ATOL:g} on inputs {shapes}")
    return 0


def _export_int8(args: argparse.Namespace, model, out: Path) -> int:
    import torch

    from ..errors import WeightsError
    from ..infer.backends import OnnxRunner, export_onnx
    from ..infer.quantize import calibration_inputs, quantize_int8
    from ..io.atomic import atomic_path

    images = _calibration_images(args.calibration, args.calibration_count)
    crops = calibration_inputs(images, crop=256, per_image=1)
    data = export_onnx(model, None, opset=args.opset)
    q = quantize_int8(data, crops)
    fp32, int8 = OnnxRunner(data), OnnxRunner(q)
    worst = float("inf")
    for x in crops:
        t = torch.from_numpy(x)
        mse = float((fp32(t) - int8(t)).pow(2).mean())
        worst = min(worst, 10 * math.log10(1 / max(mse, 1e-20)))
    if worst < MIN_INT8_PSNR:
        raise WeightsError(f"int8: the quantized model is only {worst:.1f} dB PSNR from fp32 on the "
                           f"calibration crops (< {MIN_INT8_PSNR:g}); nothing written, use the fp32 export")
    with atomic_path(out) as tmp:
        tmp.write_bytes(q)
    print(f"wrote {out} ({len(q) / 1e6:.1f} MB, int8 QDQ convolutions, calibrated on {len(crops)} crops "
          f"of {args.calibration}); within {worst:.1f} dB PSNR of fp32 on them (worst crop)")
    return 0
