"""Model weights as safetensors files, with sha256 checked before anything is parsed.

Never pickle: a weights file from the internet must not be able to run code, so ``torch.load`` is
not used anywhere here. Metadata (a JSON-able dict) is stored in the safetensors header.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import WeightsError
from ..io.atomic import atomic_path

__all__ = ["save_weights", "load_weights", "read_metadata", "file_sha256", "state_dict_tensors",
           "average_state_dicts"]

_META_KEY = "deblurkit"


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of the bytes of ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def state_dict_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict as contiguous CPU tensors that own their memory (safetensors-ready)."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}


def save_weights(model: nn.Module, path: str | os.PathLike, *, metadata: dict[str, Any]) -> str:
    """Write ``model``'s state dict to ``path`` (safetensors) atomically; return its sha256 hex.

    ``metadata`` must be JSON-serialisable; it is stored in the header under ``"deblurkit"`` and
    read back by :func:`read_metadata`. Tensors keep their dtype and are moved to the CPU.
    """
    try:
        meta_json = json.dumps(metadata, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"weights {path}: metadata is not JSON-serialisable ({exc})") from None
    tensors = state_dict_tensors(model)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={_META_KEY: meta_json})
        digest = file_sha256(tmp)
    return digest


def _check_file(path: Path) -> None:
    if not path.exists():
        raise WeightsError(f"weights {path}: file not found")
    if not path.is_file():
        raise WeightsError(f"weights {path}: not a regular file")


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata dict stored by :func:`save_weights` (``{}`` if the file has none)."""
    path = Path(path)
    _check_file(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            raw = fh.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise WeightsError(f"weights {path}: not a valid safetensors file ({_short(exc)})") from None
    if _META_KEY not in raw:
        return {}
    try:
        return json.loads(raw[_META_KEY])
    except json.JSONDecodeError as exc:
        raise WeightsError(f"weights {path}: metadata is not valid JSON ({exc})") from None


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def load_weights(model: nn.Module, path: str | os.PathLike, *,
                 sha256: str | None = None) -> dict[str, Any]:
    """Load a safetensors file into ``model`` (in place); return the stored metadata.

    When ``sha256`` is given, the file's hash is checked first and a mismatch raises
    :class:`WeightsError` naming the file, the expected and the actual hash. The keys must match
    the model's state dict exactly (missing and unexpected keys are listed) and every shape must
    match; tensors are cast to the dtype and device of the model's own tensors.
    """
    path = Path(path)
    _check_file(path)
    if sha256 is not None:
        actual = file_sha256(path)
        if actual.lower() != sha256.lower():
            raise WeightsError(
                f"weights {path}: sha256 mismatch: expected {sha256}, got {actual} "
                "(file corrupt or replaced)")
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as exc:  # corrupt or truncated file, or not safetensors at all
        raise WeightsError(f"weights {path}: not a valid safetensors file ({_short(exc)})") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({_few(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({_few(unexpected)})")
        raise WeightsError(
            f"weights {path}: do not fit {type(model).__name__}: {'; '.join(parts)}")
    bad = [f"{k}: file {tuple(tensors[k].shape)} vs model {tuple(own[k].shape)}"
           for k in own if tuple(tensors[k].shape) != tuple(own[k].shape)]
    if bad:
        raise WeightsError(
            f"weights {path}: {len(bad)} shape mismatches for {type(model).__name__} "
            f"({_few(bad)}); were they saved with other model options?")
    state = {k: tensors[k].to(dtype=own[k].dtype, device=own[k].device) for k in own}
    model.load_state_dict(state, strict=True)
    return read_metadata(path)


def _few(items: list[str], n: int = 3) -> str:
    shown = ", ".join(items[:n])
    return shown + (f", ... {len(items) - n} more" if len(items) > n else "")


def average_state_dicts(states: list[dict[str, torch.Tensor]], *, names: list[str] | None = None,
                        coefficients: list[float] | None = None) -> dict[str, torch.Tensor]:
    """Weighted mean ``sum_i c_i * state_i`` of state dicts with the same keys and shapes (a "model
    soup", Wortsman et al., ICML 2022: fine-tunes of one starting point often average into a model
    between or above them). ``coefficients`` default to ``1 / n`` each and must be >= 0 with sum 1.
    Floating tensors are averaged in float64 and returned in their own dtype; integer tensors (step
    counters) must agree and are kept. ``names`` label the inputs in errors. Raises WeightsError.
    """
    n = len(states)
    names = names or [f"input {i}" for i in range(n)]
    if n < 2:
        raise WeightsError(f"average of weights: need at least 2 inputs, got {n}")
    if coefficients is None:
        coefficients = [1.0 / n] * n
    if len(coefficients) != n or any(not (c >= 0) for c in coefficients) or abs(sum(coefficients) - 1) > 1e-6:
        raise WeightsError(f"average of weights: coefficients must be {n} numbers >= 0 summing to 1, "
                           f"got {coefficients}")
    keys = set(states[0])
    for name, st in zip(names[1:], states[1:]):
        if set(st) != keys:
            diff = sorted(keys.symmetric_difference(st))
            raise WeightsError(f"weights {name}: keys differ from {names[0]}'s ({_few(diff)})")
    out = {}
    for k in states[0]:
        ref = states[0][k]
        for name, st in zip(names[1:], states[1:]):
            if st[k].shape != ref.shape:
                raise WeightsError(f"weights {name}: {k} has shape {tuple(st[k].shape)}, "
                                   f"{names[0]} has {tuple(ref.shape)}")
        if ref.is_floating_point():
            out[k] = sum(c * st[k].double() for c, st in zip(coefficients, states)).to(ref.dtype)
        else:
            for name, st in zip(names[1:], states[1:]):
                if not torch.equal(st[k], ref):
                    raise WeightsError(f"weights {name}: integer tensor {k} differs from {names[0]}'s")
            out[k] = ref.clone()
    return out
