"""Typed training configuration, validated at load.

A YAML file maps onto the frozen dataclasses below; a wrong key, a wrong type or an out-of-range value
is one :class:`deblurkit.errors.ConfigError` naming the file, the dotted key and the value received.
Nothing is ``eval``-ed and nothing is mutated after load (configs are frozen; derive a changed copy
with :func:`dataclasses.replace`).

Example (``configs/nafnet.yaml``)::

    name: nafnet-cpu
    model: {name: nafnet, options: {width: 16}}
    data:
      train_dir: ../shared/data/train
      crop: 128
      batch_size: 8
      mix: {camera: 0.5, shake: 0.2, object: 0.1, frames: 0.1, sharp: 0.1}
    optim: {lr: 1.0e-3, schedule: cosine, warmup_steps: 200}
    loss: [{name: psnr, weight: 1.0}]
    steps: 10000
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ..errors import ConfigError


@dataclass(frozen=True)
class ModelConfig:
    """Which registered model to train: ``deblurkit.models.create(name, **options)``."""

    name: str = "nafnet"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataConfig:
    """On-the-fly synthetic training pairs (see :mod:`deblurkit.data.realistic`).

    ``mix`` maps a blur-generator name to its sampling weight (weights need not sum to 1).
    ``generators`` optionally maps a generator name to keyword options for its constructor.
    Paths are relative to the config file's folder unless absolute.
    """

    train_dir: str = "../shared/data/train"
    crop: int = 128
    batch_size: int = 8
    num_workers: int = 0
    grey: bool = False
    mix: dict[str, float] = field(default_factory=lambda: {"camera": 1.0})
    generators: dict[str, dict[str, Any]] = field(default_factory=dict)
    cache_images: bool = True


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with a warm-up then a cosine, step or constant schedule; gradient clipping.

    ``clip_modules`` maps a module-name prefix (``model.named_modules()``) to its own max gradient
    norm, applied before the global ``clip_grad_norm``.
    """

    lr: float = 1e-3
    min_lr: float = 1e-7
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.9)
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    warmup_steps: int = 0
    step_size: int = 1000
    gamma: float = 0.5
    clip_grad_norm: float | None = None
    clip_modules: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LossTerm:
    """One weighted term of the training loss, built by ``deblurkit.train.losses.build_loss``."""

    name: str
    weight: float = 1.0
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ValConfig:
    """Validation on a paired folder (``<dir>/blur``, ``<dir>/sharp``) every ``every`` steps."""

    dir: str | None = None
    every: int = 500
    max_images: int = 8
    max_side: int | None = 512
    ssim_convention: str = "skimage"


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run. ``out_dir`` holds checkpoints and logs (default ``runs/<name>``)."""

    name: str
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: tuple[LossTerm, ...] = (LossTerm(name="l1"),)
    val: ValConfig = field(default_factory=ValConfig)
    steps: int = 1000
    seed: int = 0
    ema: float | None = None
    amp: Literal["none", "bf16"] = "none"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    channels_last: bool = False
    log_every: int = 50
    checkpoint_every: int = 500
    checkpoint_minutes: float = 10.0
    tensorboard: bool = True
    out_dir: str | None = None
    threads: int | None = None
    source: str | None = None  # the file this config came from (set by load_config)

    def run_dir(self) -> Path:
        return Path(self.out_dir) if self.out_dir else Path("runs") / self.name


_CHECKS: dict[str, Any] = {
    "data.crop": lambda v: v >= 16,
    "data.batch_size": lambda v: v >= 1,
    "data.num_workers": lambda v: v >= 0,
    "optim.lr": lambda v: v > 0,
    "optim.min_lr": lambda v: v >= 0,
    "optim.warmup_steps": lambda v: v >= 0,
    "optim.step_size": lambda v: v >= 1,
    "optim.clip_grad_norm": lambda v: v is None or v > 0,
    "val.every": lambda v: v >= 1,
    "val.max_images": lambda v: v >= 1,
    "steps": lambda v: v >= 1,
    "ema": lambda v: v is None or 0.0 < v < 1.0,
    "log_every": lambda v: v >= 1,
    "checkpoint_every": lambda v: v >= 1,
    "checkpoint_minutes": lambda v: v > 0,
    "threads": lambda v: v is None or v >= 1,
}


def _convert(value: Any, tp: Any, key: str, src: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert it (lists to tuples, dicts to
    dataclasses). Raises ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{src}: {key} must be {expected}, got {value!r}")

    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, key, src)
            except ConfigError as exc:
                errors.append(str(exc))
        raise bad(" or ".join(getattr(a, "__name__", str(a)) for a in args))
    if origin is Literal:
        if value not in args:
            raise bad("one of " + ", ".join(repr(a) for a in args))
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise bad(f"a mapping of {tp.__name__} fields")
        return _build(tp, value, key, src)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise bad("a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]", src) for i, v in enumerate(value))
        if len(value) != len(args):
            raise bad(f"a list of {len(args)} values")
        return tuple(_convert(v, a, f"{key}[{i}]", src) for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict:
        if not isinstance(value, dict):
            raise bad("a mapping")
        return {
            _convert(k, args[0], f"{key} key", src): _convert(v, args[1], f"{key}.{k}", src)
            for k, v in value.items()
        }
    if tp is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    raise bad(str(tp))  # pragma: no cover - an annotation this loader does not know


def _build(cls: type, raw: dict, prefix: str, src: str):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for k in raw:
        if k not in names:
            where = f"{prefix}.{k}" if prefix else str(k)
            raise ConfigError(
                f"{src}: unknown key {where!r}; valid keys here: {', '.join(sorted(names - {'source'}))}"
            )
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{src}: missing required key {(prefix + '.' if prefix else '') + f.name!r}")
            continue
        key = f"{prefix}.{f.name}" if prefix else f.name
        value = _convert(raw[f.name], hints[f.name], key, src)
        check = _CHECKS.get(key)
        if check is not None and not check(value):
            raise ConfigError(f"{src}: {key} has an out-of-range value {value!r}")
        kwargs[f.name] = value
    return cls(**kwargs)


def config_from_dict(raw: dict, *, source: str = "<config>") -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from a plain mapping (as parsed from YAML)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(raw).__name__}")
    cfg = _build(TrainConfig, {k: v for k, v in raw.items()}, "", source)
    if sum(cfg.data.mix.values()) <= 0 or any(w < 0 for w in cfg.data.mix.values()):
        raise ConfigError(f"{source}: data.mix weights must be >= 0 with a positive sum, got {cfg.data.mix}")
    if not cfg.loss:
        raise ConfigError(f"{source}: loss must list at least one term")
    return dataclasses.replace(cfg, source=source)


def load_config(path: str | Path) -> TrainConfig:
    """Read and validate a YAML training config. Relative paths inside stay relative to the
    config file's folder (resolved by :func:`resolve_path`)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such config file")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{p}: not valid YAML ({first})") from None
    return config_from_dict(raw, source=str(p))


def resolve_path(cfg: TrainConfig, path: str) -> Path:
    """A path from the config, relative to the config file's folder when not absolute."""
    q = Path(path)
    if q.is_absolute() or cfg.source is None or cfg.source.startswith("<"):
        return q
    return Path(cfg.source).parent / q


def config_to_dict(cfg: TrainConfig) -> dict:
    """The config as plain YAML-able data (tuples become lists)."""

    def plain(v):
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(cfg))
