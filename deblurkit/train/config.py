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

An optional ``gan`` section (:class:`GanConfig`) trains the model against a discriminator in the
same engine (see ``configs/gan_example.yaml``)::

    gan:
      discriminator: {name: wgan_gp_critic, options: {width: 32}}
      loss: wgan-gp
      n_critic: 5
      adv_weight: 0.01

An optional ``distill`` section (:class:`DistillConfig`) adds ``weight * loss(model(blur),
teacher(blur))`` from a frozen, trained teacher (see ``configs/nafnet_distill.yaml``)::

    distill:
      teacher: {name: nafnet-w32, options: {}, init: ../runs/gpu-results/nafnet-w32-teacher/ema.safetensors}
      weight: 1.0
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
    """Which registered model to train: ``deblurkit.models.create(name, **options)``; ``init``: a
    safetensors file of this model's weights to start from (fine-tuning; relative to the config
    file; ignored on ``--resume``, which loads the run's own checkpoint)."""

    name: str = "nafnet"
    options: dict[str, Any] = field(default_factory=dict)
    init: str | None = None


@dataclass(frozen=True)
class DataConfig:
    """On-the-fly synthetic training pairs (see :mod:`deblurkit.data.realistic`).

    ``mix`` maps a blur-generator name to its sampling weight (weights need not sum to 1).
    ``generators`` optionally maps a generator name to keyword options for its constructor.
    Paths are relative to the config file's folder unless absolute. ``synthesis``: ``cpu`` makes
    each pair in the DataLoader workers (:mod:`deblurkit.data.realistic`); ``device`` draws only the
    random recipe there and blurs whole batches on the training device
    (:mod:`deblurkit.data.device_synth`; for GPUs, where the CPU generators cannot keep up).
    """

    train_dir: str = "../shared/data/train"
    crop: int = 128
    batch_size: int = 8
    num_workers: int = 0
    grey: bool = False
    mix: dict[str, float] = field(default_factory=lambda: {"camera": 1.0})
    generators: dict[str, dict[str, Any]] = field(default_factory=dict)
    cache_images: bool = True
    synthesis: Literal["cpu", "device"] = "cpu"


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
class DiscriminatorConfig:
    """Which registered discriminator to train against:
    ``deblurkit.models.discriminators.create_discriminator(name, **options)``."""

    name: str = "patchgan"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GanConfig:
    """Adversarial training (:mod:`deblurkit.train.gan`): the generator loss is the ``loss`` terms
    plus ``adv_weight`` times the adversarial loss plus ``perceptual_weight`` times the perceptual
    loss (survey eq. 27) on ``perceptual_net`` features at ``perceptual_layer``, read from
    ``perceptual_weights_path`` (a safetensors file the user provides; relative to the config file).

    ``loss``: ``vanilla`` (survey eq. 24-25), ``conditional`` (eq. 28; needs a conditional
    discriminator), ``lsgan`` or ``wgan-gp`` (``gp_weight`` is its lambda). Each step makes
    ``n_critic`` discriminator updates on the step's batch, then one generator update. The
    discriminator has its own Adam (``d_lr``, ``d_betas``, no weight decay), the same schedule shape
    as ``optim`` and its own gradient clipping ``d_clip_grad_norm``.
    """

    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: Literal["vanilla", "lsgan", "wgan-gp", "conditional"] = "vanilla"
    n_critic: int = 1
    gp_weight: float = 10.0
    adv_weight: float = 1e-4
    perceptual_weight: float = 0.0
    perceptual_weights_path: str | None = None
    perceptual_net: Literal["vgg16", "vgg19"] = "vgg16"
    perceptual_layer: str = "conv3_3"
    d_lr: float = 1e-4
    d_betas: tuple[float, float] = (0.5, 0.999)
    d_clip_grad_norm: float | None = None


@dataclass(frozen=True)
class DistillConfig:
    """Knowledge distillation from a trained teacher (issue 8's teacher and student).

    Each step adds ``weight * loss(student(blur), teacher(blur))`` to the supervised
    ``loss(student(blur), sharp)``; the teacher is frozen (eval mode, no gradients) and runs in the
    student's precision. ``teacher.init`` (its weights) is required.
    """

    teacher: ModelConfig
    weight: float = 1.0


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run. ``out_dir`` holds checkpoints and logs (default ``runs/<name>``).

    ``time_budget_minutes``: stop after this much wall time (a checkpoint is saved) and fit the
    learning-rate schedule to it: every ``log_every`` steps the schedule's horizon is re-estimated
    from the recent step rate, so the cosine reaches its end when the time does (for lent machines;
    such a run is not step-for-step reproducible, and ``steps`` is only an upper bound).
    """

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
    time_budget_minutes: float | None = None
    tensorboard: bool = True
    out_dir: str | None = None
    threads: int | None = None
    gan: GanConfig | None = None
    distill: DistillConfig | None = None
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
    "time_budget_minutes": lambda v: v is None or v > 0,
    "threads": lambda v: v is None or v >= 1,
    "distill.weight": lambda v: v > 0,
    "gan.n_critic": lambda v: v >= 1,
    "gan.gp_weight": lambda v: v >= 0,
    "gan.adv_weight": lambda v: v >= 0,
    "gan.perceptual_weight": lambda v: v >= 0,
    "gan.d_lr": lambda v: v > 0,
    "gan.d_betas": lambda v: all(0.0 <= b < 1.0 for b in v),
    "gan.d_clip_grad_norm": lambda v: v is None or v > 0,
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
            if dataclasses.is_dataclass(a) and isinstance(value, dict):
                return _convert(value, a, key, src)  # a mapping: report the nested key's own error
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
    if cfg.gan is not None:
        _check_gan(cfg.gan, source)
    if cfg.distill is not None:
        if cfg.gan is not None:
            raise ConfigError(f"{source}: distill and gan cannot be combined (the distillation term is "
                              "added to the supervised step only)")
        if cfg.distill.teacher.init is None:
            raise ConfigError(f"{source}: distill.teacher.init must name the teacher's weights file")
    return dataclasses.replace(cfg, source=source)


def _check_gan(g: GanConfig, source: str) -> None:
    """Cross-field checks of the ``gan`` section (imports torch: only when a config has one)."""
    from ..models.discriminators import discriminator_options
    from .perceptual import vgg_layer_index

    try:
        opts = discriminator_options(g.discriminator.name, **g.discriminator.options)
    except ConfigError as exc:
        raise ConfigError(f"{source}: gan.discriminator: {exc}") from None
    if g.loss == "conditional" and not opts.get("conditional"):
        raise ConfigError(
            f"{source}: gan.loss 'conditional' (survey eq. 28) needs a conditional discriminator, but "
            f"gan.discriminator {g.discriminator.name!r} is not "
            "(use 'patchgan_conditional' or option conditional: true)")
    if g.loss == "wgan-gp" and opts.get("norm") == "batch":
        raise ConfigError(
            f"{source}: gan.loss 'wgan-gp' cannot use batch norm in the critic (the gradient penalty is per "
            f"sample); set gan.discriminator options norm: instance or none, or use 'wgan_gp_critic'")
    if g.perceptual_weight > 0 and g.perceptual_weights_path is None:
        raise ConfigError(
            f"{source}: gan.perceptual_weight is {g.perceptual_weight} but gan.perceptual_weights_path is not set "
            f"(a safetensors file of {g.perceptual_net} weights; see deblurkit/train/perceptual.py)")
    try:
        vgg_layer_index(g.perceptual_net, g.perceptual_layer)
    except ConfigError as exc:
        raise ConfigError(f"{source}: gan.perceptual_layer: {exc}") from None


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
