"""``deblurkit export --model NAME --onnx OUT.onnx``: export a model to ONNX, checked against torch.

The ONNX graph has input ``image`` and output ``output``, both ``(B, 3, H, W)`` float32 in [0, 1]
with dynamic batch, height and width. Before anything is written the export is run with
onnxruntime on two input sizes and compared to torch (max abs difference <= 1e-4, else exit 2).
The file is written atomically. ``--model`` is a registry name or a ``.safetensors`` file (with
``--arch NAME`` when the file does not record its architecture).
"""

from __future__ import annotations

import argparse
from pathlib import Path

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
    model = load_model(args.model, arch=args.arch, device="cpu")
    data = export_onnx(model, out, opset=args.opset)
    shapes = ", ".join("x".join(map(str, s)) for s in CHECK_SHAPES)
    print(f"wrote {out} ({len(data) / 1e6:.1f} MB, opset {args.opset}, dynamic batch/H/W); "
          f"matches torch within {EXPORT_ATOL:g} on inputs {shapes}")
    return 0
