"""Runners that apply a model to a batch: torch eager and onnxruntime, plus ONNX export.

A *runner* is a callable ``(B, 3, H, W) float32 tensor in [0, 1] -> (B, 3, H, W) float32 tensor``
(unclipped model output) with a ``device`` attribute; it runs without gradients. Build one with
:func:`make_runner` (or :func:`deblurkit.infer.get_runner`, which also loads models by name).

- ``TorchRunner``: eager PyTorch, fp32 by default; optionally channels-last memory layout and
  bf16/fp16 autocast (used by ``benchmarks/inference_speed.py``).
- ``OnnxRunner``: an onnxruntime ``InferenceSession`` on the model exported by :func:`export_onnx`
  (graph optimisation level ALL, ``intra_op_num_threads = torch.get_num_threads()``). The export
  is cached on disk under :func:`cache_dir` as ``<name>-<fingerprint>.onnx``, written atomically;
  the fingerprint hashes the weights, the source files of the model's classes, the torch version
  and the opset, so a changed model is re-exported, never served stale.
- Backend ``"auto"`` (the default) is torch: with the channels-last memory layout on the CPU,
  where it measured fastest (``benchmarks/inference_speed.py --threads 2 --repeats 5`` on the idle
  2-core CPU, default NAFNet, 1280 x 720, medians: torch channels-last 0.269 s, torch bf16
  0.297 s, torch fp32 0.366 s, onnxruntime 0.387 s; docs/results.md), plain torch on CUDA.
  onnxruntime is used when asked for (``backend="onnxruntime"``).
"""

from __future__ import annotations

import copy
import contextlib
import hashlib
import inspect
import io
import logging
import os
import re
import warnings
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, ImageError, WeightsError
from ..io.atomic import atomic_path

BACKENDS = ("auto", "torch", "torch-bf16", "onnxruntime")

log = logging.getLogger("deblurkit.infer")

#: ONNX opset used by :func:`export_onnx` unless told otherwise.
DEFAULT_OPSET = 17

#: Input sizes (B, C, H, W) on which every export is checked against torch: one that needs no
#: padding for a U-Net of up to 5 levels, one that is odd in both directions, different batch.
CHECK_SHAPES: tuple[tuple[int, int, int, int], ...] = ((1, 3, 64, 96), (2, 3, 45, 71))

#: Largest max-abs difference between onnxruntime and torch accepted by :func:`export_onnx`.
EXPORT_ATOL = 1e-4

# The export traces at this size: odd on purpose, so that padding code paths are recorded.
_TRACE_SHAPE = (1, 3, 67, 93)


class Runner(Protocol):
    device: torch.device
    backend: str

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


def resolve_device(device: str | torch.device) -> torch.device:
    """Parse ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``); refuse CUDA when it is absent.

    Raises :class:`ConfigError` naming the value: there is no silent fallback to the CPU.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device: {device!r} is not a device ({exc}); use 'cpu' or 'cuda'") from None
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise ConfigError(f"device: {device!r} is not supported; use 'cpu' or 'cuda'")
    if not torch.cuda.is_available():
        raise ConfigError(f"device: {device!r} requested but CUDA is not available on this machine "
                          "(this torch build or driver has no GPU); use --device cpu")
    index = dev.index if dev.index is not None else torch.cuda.current_device()
    if index >= torch.cuda.device_count():
        raise ConfigError(f"device: {device!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    return torch.device("cuda", index)


def check_backend(backend: str) -> str:
    """Return ``backend`` if it is one of :data:`BACKENDS`, else raise :class:`ConfigError`."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend: {backend!r} is not one of {', '.join(BACKENDS)}")
    return backend


class TorchRunner:
    """Eager PyTorch runner.

    Args:
        model: maps ``(B, 3, H, W)`` float32 to ``(B, 3, H, W)``; moved to ``device`` (and to
            channels-last layout if asked) in place, as ``nn.Module.to`` does. Each call runs it
            in eval mode and restores its previous train/eval mode afterwards.
        device: ``"cpu"`` / ``"cuda"`` (checked by :func:`resolve_device`).
        channels_last: use the channels-last memory format for weights and inputs.
        autocast_dtype: ``torch.bfloat16`` / ``torch.float16`` to run under autocast, or ``None``
            for plain fp32. The output is always returned as float32.
    """

    backend = "torch"

    def __init__(self, model: nn.Module, device: str | torch.device = "cpu", *,
                 channels_last: bool = False, autocast_dtype: torch.dtype | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise ConfigError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        self.device = resolve_device(device)
        self.channels_last = channels_last
        self.autocast_dtype = autocast_dtype
        if autocast_dtype == torch.bfloat16:
            self.backend = "torch-bf16"  # what get_runner/deblur call this runner's backend
        self.model = model.to(self.device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, torch.float32)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        autocast = (torch.autocast(self.device.type, dtype=self.autocast_dtype)
                    if self.autocast_dtype is not None else contextlib.nullcontext())
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), autocast:
                y = self.model(x)
        finally:
            self.model.train(was_training)
        return y.float().contiguous()


GRAPH_OPTIMIZATIONS = ("disable", "basic", "extended", "all")


class OnnxRunner:
    """onnxruntime runner for an ONNX model with input ``image`` and output ``output``.

    Args:
        onnx_model: path to a ``.onnx`` file or its bytes.
        device: ``"cpu"`` uses the CPU execution provider; ``"cuda"`` needs onnxruntime's CUDA
            provider (refused with :class:`ConfigError` when it is not installed).
        threads: intra-op threads; default ``torch.get_num_threads()``.
        graph_optimization: onnxruntime's graph optimisation level, one of
            :data:`GRAPH_OPTIMIZATIONS` (default ``"all"``: constant folding, node fusions and
            layout optimisations; ``benchmarks/inference_variants.py`` measures each level).
    """

    backend = "onnxruntime"

    def __init__(self, onnx_model: str | os.PathLike | bytes, device: str | torch.device = "cpu",
                 *, threads: int | None = None, graph_optimization: str = "all") -> None:
        import onnxruntime as ort

        levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
                  "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                  "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                  "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
        if graph_optimization not in levels:
            raise ConfigError(f"graph_optimization: expected one of {', '.join(GRAPH_OPTIMIZATIONS)}, "
                              f"got {graph_optimization!r}")

        self.device = resolve_device(device)
        if self.device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ConfigError("backend: 'onnxruntime' with device 'cuda' needs onnxruntime-gpu "
                                  "(CUDAExecutionProvider is not available); use --backend torch")
            providers: list = [("CUDAExecutionProvider", {"device_id": self.device.index or 0})]
        else:
            providers = ["CPUExecutionProvider"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.graph_optimization_level = levels[graph_optimization]
        options.log_severity_level = 4  # failures are raised as one-line errors, not logged
        source = onnx_model if isinstance(onnx_model, bytes) else str(onnx_model)
        try:
            self.session = ort.InferenceSession(source, sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            where = "ONNX bytes" if isinstance(onnx_model, bytes) else f"ONNX file {onnx_model}"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise WeightsError(f"{where}: cannot be loaded by onnxruntime ({first}); "
                               "delete it to re-export") from None
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        try:
            (y,) = self.session.run(None, {self.input_name: array})
        except Exception as exc:  # onnxruntime's own exception types
            text = " ".join(str(exc).split())
            detail = text.split("Status Message:", 1)[-1].strip()[:160]
            raise ImageError(
                f"image: onnxruntime cannot run this model on a {array.shape[-2]}x{array.shape[-1]} "
                f"input ({detail}); use backend 'torch'") from None
        return torch.from_numpy(y).to(x.device)


def cache_dir() -> Path:
    """Folder for exported ONNX files: ``$DEBLURKIT_CACHE``, else ``$XDG_CACHE_HOME/deblurkit``,
    else ``~/.cache/deblurkit``."""
    env = os.environ.get("DEBLURKIT_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "deblurkit"


def model_fingerprint(model: nn.Module, opset: int = DEFAULT_OPSET) -> str:
    """sha256 (hex) over the model's parameters and buffers (names, dtypes, shapes, values), the
    source files of every module class in it, the torch version and ``opset``."""
    h = hashlib.sha256()
    h.update(f"torch={torch.__version__};opset={opset};".encode())
    sources: set[str] = set()
    for module in model.modules():
        with contextlib.suppress(TypeError, OSError):
            sources.add(inspect.getfile(type(module)))
    for src in sorted(sources):
        h.update(src.encode())
        with contextlib.suppress(OSError):
            h.update(Path(src).read_bytes())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def export_onnx(model: nn.Module, path: str | os.PathLike | None = None, *,
                opset: int = DEFAULT_OPSET,
                check_shapes: Sequence[tuple[int, int, int, int]] = CHECK_SHAPES,
                atol: float = EXPORT_ATOL) -> bytes:
    """Export ``model`` to ONNX with dynamic batch, H and W, and check it against torch.

    The model (a CPU copy; the argument is not changed) is traced at an odd size with the
    TorchScript exporter (input ``image``, output ``output``, both ``(B, 3, H, W)`` float32), then
    run with onnxruntime on every shape in ``check_shapes`` on seeded random inputs in [0, 1]. If
    the largest absolute difference to torch exceeds ``atol`` a :class:`WeightsError` is raised and
    nothing is written.

    Args:
        model: ``(B, 3, H, W) -> (B, 3, H, W)`` module accepting any H, W.
        path: where to write the ``.onnx`` file (atomically), or ``None`` to only return bytes.
        opset: ONNX opset version.
        check_shapes: input shapes to compare on.
        atol: tolerance on the max absolute difference.

    Returns:
        The ONNX model as bytes.
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    cpu_model = finest_output(copy.deepcopy(model).to("cpu").float().eval())
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # legacy-exporter deprecation and tracer notices
        with torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(
                cpu_model, (torch.rand(_TRACE_SHAPE),), buf, dynamo=False, opset_version=opset,
                input_names=["image"], output_names=["output"],
                dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                              "output": {0: "batch", 2: "height", 3: "width"}},
            )
    data = buf.getvalue()
    runner = OnnxRunner(data, "cpu")
    gen = torch.Generator().manual_seed(0)
    for shape in check_shapes:
        x = torch.rand(shape, generator=gen)
        with torch.no_grad():
            ref = cpu_model(x)
        got = runner(x)
        if got.shape != ref.shape:
            raise WeightsError(f"ONNX export of {type(model).__name__}: output shape {tuple(got.shape)} "
                               f"!= torch {tuple(ref.shape)} for input {shape}")
        err = float((got - ref).abs().max())
        if not err <= atol:
            raise WeightsError(f"ONNX export of {type(model).__name__}: max abs difference to torch "
                               f"{err:.3g} > {atol:g} on input {shape}")
    if path is not None:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    return data


def cached_onnx(model: nn.Module, name: str, *, opset: int = DEFAULT_OPSET) -> Path | bytes:
    """The checked ONNX export of ``model``, exported once into :func:`cache_dir`.

    Returns the file ``<cache_dir>/<name>-<first 16 hex of model_fingerprint>.onnx``. When that
    folder cannot be written (read-only home, full disk) the export is returned as bytes instead
    and a warning is logged (``deblurkit.infer`` logger): the results are the same, only the
    export is repeated in the next process.
    """
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "model"
    path = cache_dir() / f"{safe}-{model_fingerprint(model, opset)[:16]}.onnx"
    if path.is_file():
        return path
    log.info("exporting %s to ONNX once, checked against torch: %s", name, path)
    data = export_onnx(model, None, opset=opset)
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:
        log.warning("ONNX cache %s cannot be written (%s); using the export in memory "
                    "(set DEBLURKIT_CACHE to a writable folder to keep it)", path,
                    exc.strerror or exc)
        return data
    return path


class FinestOutput(nn.Module):
    """Thin wrapper for multi-scale models (``nah2017``, ``tao2018``, ``noroozi2017``), which return a
    list of outputs finest first: ``forward`` returns the full-resolution one. A model that returns
    a tensor is passed through unchanged."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        return out if isinstance(out, torch.Tensor) else out[0]


def finest_output(model: nn.Module) -> nn.Module:
    """``model`` wrapped in :class:`FinestOutput` unless it already is."""
    return model if isinstance(model, FinestOutput) else FinestOutput(model)


def make_runner(model: nn.Module, device: str | torch.device = "cpu", backend: str = "auto",
                *, name: str | None = None) -> Runner:
    """Runner for ``model`` on ``device`` with ``backend`` (``"auto"``, ``"torch"``,
    ``"torch-bf16"`` or ``"onnxruntime"``).

    ``"torch-bf16"``: torch under bf16 autocast (channels-last on the CPU). On this project's CPU
    (native AVX-512 BF16) it measured 1.2-1.3x faster than ``"auto"`` at equal dev-set gains
    (``benchmarks/inference_variants.py``); CPUs without native bf16 emulate it and may be slower,
    hence opt-in. Outputs differ from fp32 by up to a few 1e-3.

    ``"auto"``: :class:`TorchRunner`, channels-last on the CPU (see the module docstring). For onnxruntime the
    model is exported (and checked) once and cached under ``name`` (default: the class name in
    lower case).
    """
    check_backend(backend)
    dev = resolve_device(device)
    name = name or type(model).__name__.lower()
    model = finest_output(model)
    if backend == "torch":
        return TorchRunner(model, dev)
    if backend == "auto":
        return TorchRunner(model, dev, channels_last=dev.type == "cpu")
    if backend == "torch-bf16":  # opt-in: fastest on CPUs with native bf16 (docs/results.md)
        return TorchRunner(model, dev, channels_last=dev.type == "cpu", autocast_dtype=torch.bfloat16)
    return OnnxRunner(cached_onnx(model, name), dev)
