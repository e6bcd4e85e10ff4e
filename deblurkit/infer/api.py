"""``deblur()``: one call from a blurry image array to a sharper one of the same type and shape.

Pipeline for one image: validate and convert to float32 ``(1, 3, H, W)`` in [0, 1] (grey is
replicated to 3 channels, an alpha channel is set aside), run the model (in overlapping tiles when
the image is large, optionally as an x8 self-ensemble), **clip the output to [0, 1]** (the output
range step: a network's raw output can overshoot slightly), turn it back into the input's layout
(grey = mean of the 3 output channels, alpha restored bit-exactly) and dtype (integers rounded).

Models are referred to by registry name (``"default"``, ``"nafnet"``, ...), by the path of a
``.safetensors`` weights file, or given as an ``nn.Module``; loaded models and their runners are
cached per (model, device, backend) with :func:`functools.lru_cache`.

Kernel estimators (``deblurkit.estimation.list_estimators()``: ``"classical"``, ...) are accepted
wherever a model name is: they are wrapped in :class:`deblurkit.estimation.base.EstimatorModule`
and always run on the torch backend (``"auto"`` picks it; ``"onnxruntime"`` is refused: an
estimator is an optimisation, not a graph that exports to ONNX). Tiling applies to end-to-end
models only: an estimator estimates one kernel from the whole image, so it is never tiled
(no automatic tiling) and an explicit ``tile`` / ``overlap`` with an estimator raises.

Weights files: a ``.safetensors`` file holding a model's ``state_dict``. Its architecture is the
``arch`` argument, else the file's metadata key ``"arch"`` (a registry name); constructor options
come from the metadata key ``"options"`` (a JSON object), if present.
"""

from __future__ import annotations

import functools
import json
import os
import weakref
from pathlib import Path
from typing import Any, overload

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, ImageError, WeightsError
from .backends import OnnxRunner, Runner, check_backend, make_runner, resolve_device
from .ensemble import self_ensemble
from .tiling import (AUTO_TILE_PIXELS, DEFAULT_OVERLAP, auto_tile, run_tiled, tile_pair,
                     validate_tiling)

ModelSpec = str | os.PathLike | nn.Module | Runner


def _is_weights_path(spec: str | os.PathLike) -> bool:
    s = os.fspath(spec)
    return s.endswith(".safetensors") or os.sep in s or (os.altsep is not None and os.altsep in s)


def load_model(spec: str | os.PathLike, *, arch: str | None = None,
               device: str | torch.device = "cpu") -> nn.Module:
    """Load a model by registry name or from a ``.safetensors`` weights file, in eval mode.

    Args:
        spec: a registry name (see ``deblurkit.models.list_models()``; ``"default"`` is the
            default model, with shipped weights) or the path of a ``.safetensors`` file.
        arch: registry name of the architecture for a weights file (overrides its ``"arch"``
            metadata); must be ``None`` for a registry name.
        device: where to put the model.

    Raises:
        WeightsError: missing/corrupt file, or weights that do not fit the architecture.
        ConfigError: no architecture known for a weights file, or ``arch`` given with a name.
    """
    from .. import models

    dev = resolve_device(device)
    if not _is_weights_path(spec):
        if arch is not None:
            raise ConfigError(f"arch: {arch!r} applies only to a .safetensors weights file, "
                              f"not to the registry name {spec!r}")
        return models.load_pretrained(str(spec), device=str(dev)).eval()

    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = Path(spec)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from None
    name = arch or metadata.get("arch")
    if not name:
        raise ConfigError(f"arch: weights file {path} records no 'arch' metadata; "
                          "name its architecture (--arch NAME)")
    try:
        options = json.loads(metadata.get("options", "{}"))
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{path}: metadata 'options' is not JSON ({exc.msg})") from None
    if not isinstance(options, dict):
        raise WeightsError(f"{path}: metadata 'options' must be a JSON object, got {options!r}")
    model = models.create(name, **options)
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        parts = []
        if result.missing_keys:
            parts.append(f"{len(result.missing_keys)} missing (e.g. {result.missing_keys[0]!r})")
        if result.unexpected_keys:
            parts.append(f"{len(result.unexpected_keys)} unexpected (e.g. {result.unexpected_keys[0]!r})")
        raise WeightsError(f"{path}: weights do not fit architecture {name!r} with options "
                           f"{options}: {', '.join(parts)} tensors")
    return model.to(dev).eval()


@functools.lru_cache(maxsize=8)
def _cached_runner(spec: str, arch: str | None, device: str, backend: str,
                   stamp: tuple[int, int] | None) -> Runner:
    model = load_model(spec, arch=arch, device=device)
    name = Path(spec).stem if _is_weights_path(spec) else spec
    return make_runner(model, device, backend, name=name)


def _onnx_file_runner(path: str, dev: torch.device, backend: str, arch: str | None) -> Runner:
    """An ``.onnx`` file (e.g. from ``deblurkit export``, fp32 or ``--int8``) on onnxruntime's CPU
    provider; cached by resolved path, size and mtime like weights files."""
    if backend in ("torch", "torch-bf16"):
        raise ConfigError(f"backend: {path} is an ONNX model; it runs on onnxruntime (use --backend "
                          "onnxruntime or auto)")
    if arch is not None:
        raise ConfigError(f"arch: {arch!r} applies only to a .safetensors weights file, not to {path}")
    if dev.type != "cpu":
        raise ConfigError(f"device: ONNX model files run on the CPU here, got {str(dev)!r}")
    if not os.path.isfile(path):
        raise WeightsError(f"{path}: ONNX file not found")
    st = os.stat(path)
    return _cached_onnx_runner(str(Path(path).resolve()), (st.st_mtime_ns, st.st_size))


@functools.lru_cache(maxsize=4)
def _cached_onnx_runner(path: str, stamp: tuple[int, int]) -> Runner:
    return OnnxRunner(path, "cpu")


def _is_runner(model: object) -> bool:
    return (not isinstance(model, (nn.Module, str, os.PathLike)) and callable(model)
            and hasattr(model, "device") and hasattr(model, "backend"))


def get_runner(model: ModelSpec = "default", *, device: str | torch.device = "cpu",
               backend: str = "auto", arch: str | None = None) -> Runner:
    """Runner for ``model`` (name, weights path, ``nn.Module`` or an existing runner).

    ``backend``: ``"auto"`` (torch, channels-last on the CPU; see
    :mod:`deblurkit.infer.backends`), ``"torch"`` or ``"onnxruntime"``. Names and paths are
    cached (a changed weights file, by size and mtime, is reloaded). A runner passed in is
    returned as is after checking that it matches ``device`` and, unless ``backend`` is
    ``"auto"``, ``backend``.
    """
    check_backend(backend)
    dev = resolve_device(device)
    if _estimator_name(model) is not None or _is_estimator_module(model):
        name = _estimator_name(model) or type(model.estimator).__name__
        if backend in ("onnxruntime", "torch-bf16"):
            raise ConfigError(f"backend: estimator {name!r} runs on the torch fp32 backend only, "
                              f"not {backend!r}; use --backend torch or auto")
        if arch is not None:
            raise ConfigError(f"arch: {arch!r} applies only to a .safetensors weights file, "
                              f"not to the estimator {name!r}")
        if isinstance(model, nn.Module):
            return make_runner(model, dev, "torch")
        return _cached_estimator_runner(name, str(dev))
    if isinstance(model, nn.Module):
        if backend == "torch" or (backend == "auto" and dev.type != "cpu"):
            return make_runner(model, dev, "torch")
        # exporting/hashing a module is costly: reuse the runner while its tensors are unchanged
        # (tensor._version counts in-place changes; data_ptr catches replaced tensors)
        stamp = (str(dev), backend, tuple((k, v.data_ptr(), v._version)
                                          for k, v in model.state_dict(keep_vars=True).items()))
        cached = _MODULE_RUNNERS.get(model)
        if cached is None or cached[0] != stamp:
            cached = (stamp, make_runner(model, dev, backend))
            _MODULE_RUNNERS[model] = cached
        return cached[1]
    if isinstance(model, (str, os.PathLike)) and os.fspath(model).lower().endswith(".onnx"):
        return _onnx_file_runner(os.fspath(model), dev, backend, arch)
    if isinstance(model, (str, os.PathLike)):
        spec = os.fspath(model)
        stamp = None
        if _is_weights_path(spec):
            st = os.stat(spec) if os.path.isfile(spec) else None
            stamp = (st.st_mtime_ns, st.st_size) if st else None
            spec = str(Path(spec).resolve())
        return _cached_runner(spec, arch, str(dev), backend, stamp)
    if _is_runner(model):
        if model.device != dev or backend not in ("auto", model.backend):
            raise ConfigError(f"model: runner on {model.device} with backend {model.backend!r} does "
                              f"not match device={str(dev)!r}, backend={backend!r}")
        return model
    raise ConfigError(f"model: expected a registry name, a .safetensors path, an nn.Module or a "
                      f"runner, got {type(model).__name__}")


_MODULE_RUNNERS: "weakref.WeakKeyDictionary[nn.Module, tuple[Any, Runner]]" = weakref.WeakKeyDictionary()


def _estimator_name(model: object) -> str | None:
    """``model`` if it names a registered kernel estimator (and is not a weights path)."""
    if not isinstance(model, str) or _is_weights_path(model):
        return None
    from ..estimation import is_estimator

    return model if is_estimator(model) else None


def _is_estimator_module(model: object) -> bool:
    from ..estimation.base import EstimatorModule

    return isinstance(model, EstimatorModule)


def _runs_estimator(runner: Runner) -> bool:
    """Whether ``runner`` applies a kernel estimator (never tiled, see the module docstring)."""
    inner = getattr(runner, "model", None)
    return _is_estimator_module(inner) or _is_estimator_module(getattr(inner, "model", None))


@functools.lru_cache(maxsize=8)
def _cached_estimator_runner(name: str, device: str) -> Runner:
    from ..estimation import create_estimator
    from ..estimation.base import EstimatorModule

    return make_runner(EstimatorModule(create_estimator(name)), device, "torch", name=name)


def clear_cache() -> None:
    """Forget every cached model and runner."""
    _cached_runner.cache_clear()
    _cached_estimator_runner.cache_clear()
    _cached_onnx_runner.cache_clear()
    _MODULE_RUNNERS.clear()


# --------------------------------------------------------------------------- array conversion

_INT_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
_TORCH_INT_SCALE = {torch.uint8: 255.0}


def _check_float_range(values: torch.Tensor) -> None:
    if values.numel() == 0:
        return  # an empty image is refused with its shape by deblur()
    bad = ~torch.isfinite(values)
    if bool(bad.any()):
        raise ImageError(f"image: contains {int(bad.sum())} NaN or infinite values")
    lo, hi = float(values.min()), float(values.max())
    if lo < 0.0 or hi > 1.0:
        raise ImageError(f"image: float values must lie in [0, 1], got min {lo:.6g} max {hi:.6g} "
                         "(scale integer images by 255 or 65535, or pass uint8/uint16 arrays)")


def _numpy_to_bchw(image: np.ndarray) -> torch.Tensor:
    """numpy HxW or HxWxC (uint8, uint16, float) -> float32 (1, C, H, W) in [0, 1] (a copy)."""
    if image.ndim not in (2, 3):
        raise ImageError(f"image: expected an H x W or H x W x C array, got shape {image.shape}")
    if not image.dtype.isnative:
        image = image.astype(image.dtype.newbyteorder("="))
    if any(stride < 0 for stride in image.strides):
        image = np.ascontiguousarray(image)  # torch.from_numpy refuses negative strides
    src = torch.from_numpy(image[:, :, None] if image.ndim == 2 else image)
    if image.dtype in _INT_SCALE:
        scale = 1.0 / _INT_SCALE[image.dtype]
    elif np.issubdtype(image.dtype, np.floating):
        _check_float_range(src)
        scale = None
    else:
        raise ImageError(f"image: dtype {image.dtype} is not supported; "
                         "use uint8, uint16 or float in [0, 1]")
    x = src.permute(2, 0, 1).contiguous()  # layout change in the input dtype (fastest)
    if scale is not None:
        x = x.to(torch.float32).mul_(scale)
    else:
        x = x.to(torch.float32)
        if x.data_ptr() == src.data_ptr():
            x = x.clone()  # never alias the caller's array
    return x.unsqueeze(0)


def _torch_to_bchw(image: torch.Tensor) -> torch.Tensor:
    """torch (C, H, W) or (B, C, H, W), float or uint8 -> float32 (B, C, H, W) in [0, 1]."""
    if image.ndim not in (3, 4):
        raise ImageError(f"image: expected a (C, H, W) or (B, C, H, W) tensor, got shape "
                         f"{tuple(image.shape)}")
    if image.dtype in _TORCH_INT_SCALE:
        x = image.to(torch.float32) / _TORCH_INT_SCALE[image.dtype]
    elif image.is_floating_point():
        _check_float_range(image.detach())
        x = image.detach().to(torch.float32)
    else:
        raise ImageError(f"image: dtype {image.dtype} is not supported; use uint8 or a float dtype "
                         "with values in [0, 1]")
    return x if x.ndim == 4 else x.unsqueeze(0)


def _to_numpy(y: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    """float32 ``(C, H, W)`` in [0, 1] -> numpy ``(H, W, C)`` of ``dtype`` (integers rounded to
    nearest, ties to even)."""
    hwc = y.numpy().transpose(1, 2, 0)
    if dtype in _INT_SCALE:
        return np.rint(hwc * np.float32(_INT_SCALE[dtype])).astype(dtype)
    return np.ascontiguousarray(hwc).astype(dtype, copy=False)


def _to_torch(y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """float32 in [0, 1] -> ``dtype`` (uint8 rounded to nearest, ties to even)."""
    if dtype in _TORCH_INT_SCALE:
        return torch.round(y * _TORCH_INT_SCALE[dtype]).to(dtype)
    return y.to(dtype)


# --------------------------------------------------------------------------- deblur

def _choose_tiling(h: int, w: int, tile: int | tuple[int, int] | None,
                   overlap: int | None) -> tuple[tuple[int, int] | None, int]:
    if overlap is None:
        if tile is None:
            overlap = DEFAULT_OVERLAP
        else:
            overlap = min(DEFAULT_OVERLAP, min(tile_pair(tile, "tile")) // 4)
    if tile is None:
        return auto_tile(h, w, AUTO_TILE_PIXELS, overlap), overlap
    pair, overlap = validate_tiling(tile, overlap)
    return pair, overlap


def _run_rgb(runner: Runner, x: torch.Tensor, *, tile: Any, overlap: int | None,
             ensemble: bool, whole: bool = False) -> torch.Tensor:
    """(B, 3, H, W) float32 in [0, 1] -> (B, 3, H, W) float32 clipped to [0, 1], on the CPU or
    the runner's device, one image of the batch at a time. ``whole``: never tile."""
    fn = (lambda t: self_ensemble(runner, t)) if ensemble else runner
    outs = []
    for i in range(x.shape[0]):
        xi = x[i:i + 1].to(runner.device).contiguous()
        chosen, ov = (None, 0) if whole else _choose_tiling(xi.shape[-2], xi.shape[-1], tile,
                                                             overlap)
        y = fn(xi) if chosen is None else run_tiled(fn, xi, tile=chosen, overlap=ov)
        if y.shape != xi.shape:
            raise WeightsError(f"model: returned shape {tuple(y.shape)} for input {tuple(xi.shape)}")
        outs.append(y.clamp(0.0, 1.0))
    return outs[0] if len(outs) == 1 else torch.cat(outs, dim=0)


@overload
def deblur(image: np.ndarray, model: ModelSpec = ..., **kw: Any) -> np.ndarray: ...
@overload
def deblur(image: torch.Tensor, model: ModelSpec = ..., **kw: Any) -> torch.Tensor: ...


def deblur(image, model: ModelSpec = "default", *, device: str | torch.device | None = None,
           tile: int | tuple[int, int] | None = None, overlap: int | None = None,
           ensemble: bool = False, backend: str | None = None):
    """Deblur ``image`` with ``model``; returns the same type, dtype and shape as the input.

    Args:
        image: numpy ``H x W`` (grey) or ``H x W x C`` with C in {1, 3, 4}, dtype uint8, uint16
            or float (values in [0, 1]); or torch ``(C, H, W)`` / ``(B, C, H, W)``, uint8 or float
            in [0, 1], on any device. C = 1: grey, replicated to RGB for the model and returned
            as the mean of its 3 output channels. C = 4: RGBA, the alpha channel is returned
            unchanged. Float values outside [0, 1], NaN or inf raise :class:`ImageError`.
        model: registry name (``"default"``), path of a ``.safetensors`` file (architecture in
            its metadata, see the module docstring), path of an ``.onnx`` file from ``deblurkit
            export`` (fp32 or ``--int8``; onnxruntime on the CPU), an ``nn.Module`` mapping ``(B, 3, H, W)`` to
            ``(B, 3, H, W)`` (moved to ``device`` in place; run in eval mode, its train/eval
            mode restored after), or a runner from :func:`get_runner`.
        device: ``"cpu"`` or ``"cuda"``; CUDA absent -> :class:`ConfigError` (no fallback).
            ``None`` means ``"cpu"``, or the runner's own device when ``model`` is a runner.
        tile: tile side (int or ``(h, w)``), or ``None`` for automatic tiling: images over
            :data:`~deblurkit.infer.tiling.AUTO_TILE_PIXELS` (1.5 MP) are cut into balanced tiles
            of at most that many pixels (:func:`~deblurkit.infer.tiling.auto_tile`), so memory is
            bounded on any photo size. A tile covering the image means a single call. Kernel
            estimators are never tiled: ``tile`` / ``overlap`` with one raise ConfigError.
        overlap: pixels shared by neighbouring tiles, blended without seams (default 48, or
            ``tile // 4`` when smaller).
        ensemble: average over the 8 flips/transposes (x8 self-ensemble; 8x slower).
        backend: ``"torch"`` (eager), ``"onnxruntime"`` (the model is exported once, checked
            against torch, and cached on disk) or ``"auto"``: torch, channels-last on the CPU,
            where it measured fastest (see :mod:`deblurkit.infer.backends`). ``None``
            means ``"auto"``, or the runner's own backend when ``model`` is a runner; an explicit
            value that differs from the runner's raises.

    Returns:
        The deblurred image: float output clipped to [0, 1]; integer output rounded to nearest;
        numpy in -> numpy out, torch in -> torch out on the input's device.
    """
    if not isinstance(ensemble, (bool, np.bool_)):
        raise ConfigError(f"ensemble: expected True or False, got {ensemble!r}")
    if isinstance(image, np.ndarray):
        in_dtype = image.dtype if image.dtype.isnative else image.dtype.newbyteorder("=")
        is_numpy, in_device = True, None
        x = _numpy_to_bchw(image)
    elif isinstance(image, torch.Tensor):
        is_numpy, in_dtype, in_device = False, image.dtype, image.device
        x = _torch_to_bchw(image)
    else:
        raise ImageError(f"image: expected a numpy array or a torch tensor, got {type(image).__name__}")
    b, c, h, w = x.shape
    if h == 0 or w == 0 or b == 0:
        raise ImageError(f"image: is empty (shape {tuple(image.shape)})")
    if c not in (1, 3, 4):
        raise ImageError(f"image: has {c} channels; expected 1 (grey), 3 (RGB) or 4 (RGBA)")
    if tile is not None or overlap is not None:  # refuse bad tiling options before any work
        _choose_tiling(h, w, tile, overlap)

    if _is_runner(model):
        device = model.device if device is None else device
        backend = model.backend if backend is None else backend
    runner = get_runner(model, device="cpu" if device is None else device,
                        backend="auto" if backend is None else backend)
    whole = _runs_estimator(runner)
    if whole and (tile is not None or overlap is not None):
        what = f"estimator {model!r}" if isinstance(model, str) else "a kernel estimator"
        raise ConfigError(f"tile: tiling applies to end-to-end models; {what} estimates one blur "
                          f"from the whole image and is never tiled (got tile={tile!r}, "
                          f"overlap={overlap!r}); drop --tile/--overlap")
    rgb = x.expand(b, 3, h, w) if c == 1 else x[:, :3]
    y = _run_rgb(runner, rgb, tile=tile, overlap=overlap, ensemble=bool(ensemble),
                 whole=whole).to("cpu")
    if c == 1:
        y = y.mean(dim=1, keepdim=True)

    if is_numpy:
        out = _to_numpy(y[0], in_dtype)
        if c == 4:
            out = np.concatenate([out, image[..., 3:4].astype(out.dtype, copy=False)], axis=2)
        if image.ndim == 2:
            out = out[..., 0]
        return out
    out = _to_torch(y, in_dtype)
    if c == 4:
        alpha = image if image.ndim == 4 else image.unsqueeze(0)
        out = torch.cat([out, alpha[:, 3:4].detach().to("cpu")], dim=1)
    out = out if image.ndim == 4 else out[0]
    return out.to(in_device)


__all__ = ["deblur", "get_runner", "load_model", "clear_cache"]
