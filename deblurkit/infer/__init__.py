"""deblurkit.infer: run a trained model on photos of any size.

- :func:`deblur` (``api.py``): numpy/torch image in, same type, dtype and shape out.
- :func:`run_tiled`, :func:`auto_tile` (``tiling.py``): overlapping tiles blended without seams.
- :func:`self_ensemble` (``ensemble.py``): x8 flips/transposes average.
- :func:`get_runner`, :func:`export_onnx` (``api.py``, ``backends.py``): torch eager and
  onnxruntime runners (``"auto"``, the default: torch, channels-last on the CPU); ONNX export checked
  against torch.
- :func:`count_macs`, :func:`count_parameters` (``profile.py``).
"""

from .api import clear_cache, deblur, get_runner, load_model
from .backends import (BACKENDS, OnnxRunner, TorchRunner, export_onnx, make_runner,
                       resolve_device)
from .ensemble import inverse_transform, self_ensemble, transform
from .profile import count_macs, count_parameters
from .tiling import AUTO_TILE_PIXELS, DEFAULT_OVERLAP, auto_tile, run_tiled

__all__ = [
    "deblur", "get_runner", "load_model", "clear_cache",
    "BACKENDS", "TorchRunner", "OnnxRunner", "make_runner", "export_onnx",
    "resolve_device",
    "self_ensemble", "transform", "inverse_transform",
    "count_macs", "count_parameters",
    "run_tiled", "auto_tile", "AUTO_TILE_PIXELS", "DEFAULT_OVERLAP",
]
