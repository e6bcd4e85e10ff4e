"""The model registry: a plain dict ``MODELS`` filled by explicit :func:`register` calls.

``deblurkit/models/__init__.py`` imports each model file by name and registers its specs; nothing is
discovered by scanning folders. :func:`create` builds a model from a name and options,
:func:`load_pretrained` builds it and loads the shipped weights listed in
``deblurkit/weights/registry.json`` (sha256 checked).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from .. import paths
from ..errors import ConfigError, DeblurkitError, WeightsError

__all__ = ["ModelSpec", "MODELS", "register", "create", "list_models", "load_pretrained",
           "weights_registry", "resolve_weights_entry", "count_parameters"]


@dataclass(frozen=True)
class ModelSpec:
    """One registered model.

    Attributes:
        name: registry name, e.g. ``"nafnet"``.
        constructor: callable building the ``nn.Module`` from keyword options.
        defaults: every option the constructor accepts through the registry, with its default.
            :func:`create` refuses any option not listed here.
        description: one line saying what the model is.
        paper: the paper it follows (authors, title, venue).
        sizes: named presets, each a dict of option overrides, e.g. ``{"tiny": {...}}``. Every spec
            should provide ``"tiny"``: a config small enough for tests and smoke runs.
    """

    name: str
    constructor: Callable[..., nn.Module]
    defaults: Mapping[str, Any]
    description: str
    paper: str
    sizes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to :data:`MODELS`; a name registered twice raises :class:`ConfigError`."""
    if spec.name in MODELS:
        raise ConfigError(f"model name {spec.name!r}: already registered")
    for size, overrides in spec.sizes.items():
        unknown = sorted(set(overrides) - set(spec.defaults))
        if unknown:
            raise ConfigError(
                f"model {spec.name!r} size {size!r}: unknown options {unknown}; "
                f"valid options: {', '.join(sorted(spec.defaults))}")
    MODELS[spec.name] = spec
    return spec


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(MODELS)


def _spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ConfigError(f"model {name!r}: unknown; choose one of: {', '.join(list_models())}")
    return MODELS[name]


def model_options(name: str, *, size: str | None = None, **options: Any) -> dict[str, Any]:
    """The full option dict :func:`create` would pass to the constructor (defaults, size, options)."""
    spec = _spec(name)
    merged = copy.deepcopy(dict(spec.defaults))
    if size is not None:
        if size not in spec.sizes:
            choices = ", ".join(sorted(spec.sizes)) or "(none)"
            raise ConfigError(f"model {name!r} size {size!r}: unknown; choose one of: {choices}")
        merged.update(copy.deepcopy(dict(spec.sizes[size])))
    unknown = sorted(set(options) - set(spec.defaults))
    if unknown:
        raise ConfigError(
            f"model {name!r}: unknown option{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))}; valid options: {', '.join(sorted(spec.defaults))}")
    merged.update(options)
    return merged


def create(name: str, *, size: str | None = None, **options: Any) -> nn.Module:
    """Build a registered model (random weights, train mode).

    ``name`` is a registry name (see :func:`list_models`); ``size`` picks a named preset of the
    spec; ``options`` override single options. An unknown name lists the choices; an unknown option
    is named with the valid ones listed; bad values are refused by the model's constructor.
    """
    return _spec(name).constructor(**model_options(name, size=size, **options))


def count_parameters(model: nn.Module) -> int:
    """Number of scalar parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------------
# Shipped weights

def _registry_path() -> Path:
    return paths.weights_dir() / "registry.json"


def weights_registry() -> dict[str, dict[str, Any]]:
    """The parsed ``weights/registry.json``: ``{weights name: entry}`` (empty if none shipped).

    Each entry: ``{"model": registry name, "options": {...}, "file": "<name>.safetensors",
    "sha256": hex, "recipe": {...}, "figures": {...}}``, optionally ``"default": true``.
    """
    path = _registry_path()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"weights registry {path}: cannot be read as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise WeightsError(f"weights registry {path}: expected a JSON object, got {type(data).__name__}")
    for key, entry in data.items():
        if not isinstance(entry, dict):
            raise WeightsError(f"weights registry {path}: entry {key!r} is not an object")
        missing = [k for k in ("model", "file", "sha256") if k not in entry]
        if missing:
            raise WeightsError(f"weights registry {path}: entry {key!r} lacks {', '.join(missing)}")
    return data


def resolve_weights_entry(name: str) -> tuple[str, dict[str, Any]]:
    """Find the shipped-weights entry for ``name``: ``(weights name, entry)``.

    ``name`` may be a key of the weights registry, ``"default"`` (the entry marked
    ``"default": true``), or a model name with exactly one shipped entry.
    """
    reg = weights_registry()
    if name == "default" and "default" not in reg:
        defaults = [k for k, e in reg.items() if e.get("default") is True]
        if len(defaults) == 1:
            return defaults[0], reg[defaults[0]]
        if not defaults:
            raise WeightsError(
                "model 'default': no shipped weights are marked as the default yet "
                f"(weights registry {_registry_path()}); train one with `deblurkit train CONFIG.yaml`")
        raise WeightsError(f"model 'default': several weights are marked default: {', '.join(defaults)}")
    if name in reg:
        return name, reg[name]
    by_model = [k for k, e in reg.items() if e.get("model") == name]
    if len(by_model) == 1:
        return by_model[0], reg[by_model[0]]
    if len(by_model) > 1:
        raise WeightsError(
            f"model {name!r}: several shipped weights use it ({', '.join(sorted(by_model))}); name one")
    if name in MODELS:
        raise WeightsError(
            f"model {name!r}: no shipped weights; train it with `deblurkit train CONFIG.yaml` "
            f"(model: {name}) or create it untrained with deblurkit.models.create({name!r})")
    choices = sorted(set(reg) | {"default"})
    raise DeblurkitError(
        f"model {name!r}: unknown; shipped weights: {', '.join(choices)}; "
        f"models: {', '.join(list_models())}")


def load_pretrained(name: str = "default", *, device: str = "cpu") -> nn.Module:
    """Build the model of a shipped weights entry and load its weights (sha256 checked).

    ``name``: a weights name from ``weights/registry.json``, ``"default"``, or a model name with
    one shipped entry. Returns the model in eval mode on ``device``. A model without shipped
    weights raises :class:`WeightsError` saying so and how to train it.
    """
    from .weights import load_weights  # local import: keeps registry import light

    key, entry = resolve_weights_entry(name)
    options = entry.get("options", {}) or {}
    if not isinstance(options, dict):
        raise WeightsError(f"weights entry {key!r}: options must be an object, got {options!r}")
    model = create(entry["model"], **options)
    load_weights(model, paths.weights_dir() / entry["file"], sha256=entry["sha256"])
    return model.eval().to(device)
