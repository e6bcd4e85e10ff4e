"""The training engine: one loop for every model, built by composition from small parts.

Parts (each usable and tested on its own):

- :func:`build_optimizer`, :func:`build_scheduler` — AdamW; warm-up then cosine / step / constant.
- :class:`EMA` — exponential moving average of the parameters.
- :class:`GradClipper` — per-module then global gradient-norm clipping.
- :class:`Checkpointer` — atomic checkpoints: weights as safetensors, optimizer / scheduler / RNG
  state in a ``torch.save`` file that loads with ``weights_only=True`` (no pickled code).
- :class:`CsvLog` (and TensorBoard) — one row per logged step; rows past a resumed step are dropped.
- :class:`SupervisedStep` — forward, loss, backward, clip, optimizer and EMA update;
  :class:`deblurkit.train.gan.GANStep` replaces it when the config has a ``gan`` section.
- :func:`validate` — PSNR / SSIM on a paired dev folder.
- :func:`train` — composes them. Data order is a pure function of the step, so ``--resume`` after a
  kill continues exactly: the same seed gives the same loss curve as an uninterrupted run.

Data-parallel training runs under ``torchrun`` (gloo on CPU, NCCL on CUDA): each rank takes an equal
slice of every global batch and DDP averages the gradients, so the update equals the single-process
one on the whole batch. Failures raise; there are no empty hooks to override.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..errors import ConfigError, DeblurkitError
from ..io.atomic import atomic_path
from .config import TrainConfig, config_to_dict, resolve_path

# ----------------------------------------------------------------------------- optimisation


def build_optimizer(params: Iterable[nn.Parameter], cfg) -> torch.optim.Optimizer:
    """AdamW from an :class:`~deblurkit.train.config.OptimConfig`."""
    return torch.optim.AdamW(list(params), lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)


def lr_factor(step: int, cfg, total_steps: int) -> float:
    """Learning-rate multiplier at ``step`` (0-based): linear warm-up over ``warmup_steps``, then
    cosine from ``lr`` to ``min_lr`` over the remaining steps, or step decay by ``gamma`` every
    ``step_size`` steps, or constant."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    t = step - cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "step":
        return cfg.gamma ** (t // cfg.step_size)
    span = max(1, total_steps - cfg.warmup_steps)
    floor = cfg.min_lr / cfg.lr
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(t, span) / span))


class Horizon:
    """The number of steps a schedule spans, re-estimated during a time-budgeted run
    (``time_budget_minutes``): ``int(h)`` is the current estimate."""

    def __init__(self, steps: int):
        self.steps = int(steps)

    def __int__(self) -> int:
        return self.steps


def build_scheduler(optimizer: torch.optim.Optimizer, cfg, total_steps: "int | Horizon"):
    """A ``LambdaLR`` applying :func:`lr_factor`; ``total_steps`` an int or a :class:`Horizon`
    (read at every step)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg, int(total_steps)))


class EMA:
    """Exponential moving average of a model's parameters and buffers: ``e <- d e + (1 - d) p``.

    With ``step`` given to :meth:`update` (the number of optimizer steps done), the decay warms up as
    ``d_t = min(d, (1 + t) / (10 + t))`` so that early averages are not dominated by the random
    initialisation; the warm-up is a function of the step only, so resume stays exact.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ConfigError(f"ema decay must be in (0, 1), got {decay!r}")
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def decay_at(self, step: int | None) -> float:
        """The decay used at optimizer step ``step`` (``None``: no warm-up)."""
        return self.decay if step is None else min(self.decay, (1.0 + step) / (10.0 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int | None = None) -> None:
        d = self.decay_at(step)
        shadows, values = [], []
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                shadows.append(self.shadow[k])
                values.append(v.detach())
            else:
                self.shadow[k].copy_(v)
        if shadows:  # e <- e + (1 - d) (p - e) = d e + (1 - d) p, one fused call for all tensors
            torch._foreach_lerp_(shadows, values, 1.0 - d)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = set(self.shadow) ^ set(state)
        if missing:
            raise DeblurkitError(f"EMA state does not match the model: keys {sorted(missing)[:5]}")
        for k in self.shadow:
            self.shadow[k].copy_(state[k])


class GradClipper:
    """Clip gradient norms: first each configured module (by name prefix), then globally.

    ``modules`` maps a prefix of ``model.named_modules()`` names to a max norm; an unknown prefix
    raises (so a typo in a config is not silently ignored).
    """

    def __init__(self, model: nn.Module, global_norm: float | None, modules: dict[str, float]):
        self.global_norm = global_norm
        self.groups: list[tuple[str, float, list[nn.Parameter]]] = []
        names = dict(model.named_modules())
        for prefix, norm in modules.items():
            if prefix not in names:
                raise ConfigError(
                    f"optim.clip_modules: no module named {prefix!r} in the model; "
                    f"top-level modules: {', '.join(n for n in names if n and '.' not in n)}"
                )
            self.groups.append((prefix, norm, [p for p in names[prefix].parameters() if p.requires_grad]))
        self.params = [p for p in model.parameters() if p.requires_grad]

    def __call__(self) -> float | None:
        for _, norm, params in self.groups:
            torch.nn.utils.clip_grad_norm_(params, norm)
        if self.global_norm is not None:
            return float(torch.nn.utils.clip_grad_norm_(self.params, self.global_norm))
        return None


# ----------------------------------------------------------------------------- checkpoints


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "python": {"version": random.getstate()[0],
                   "ints": torch.tensor(random.getstate()[1], dtype=torch.int64),
                   "gauss": random.getstate()[2]},
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    py = state["python"]
    random.setstate((int(py["version"]), tuple(int(i) for i in py["ints"].tolist()), py["gauss"]))


class Checkpointer:
    """Atomic checkpoints under ``<run_dir>/checkpoints/step_XXXXXXX/`` with a ``latest`` pointer.

    Files: ``model.safetensors``, ``ema.safetensors`` (when EMA is on) and ``state.pt`` (step,
    optimizer, scheduler and RNG state; plain tensors and numbers, loaded with
    ``torch.load(weights_only=True)``). The ``latest`` file is replaced last, so a kill at any point
    leaves the previous checkpoint usable. The newest ``keep`` checkpoints are kept.

    ``extra`` (e.g. a GAN's discriminator, its optimizer and scheduler) maps a name to a module,
    saved as ``<name>.safetensors``, or to any object with ``state_dict`` / ``load_state_dict``,
    saved in ``state.pt`` under ``extra/<name>``.

    ``metadata`` (str -> str) is written into the model and EMA safetensors headers; the engine
    records ``arch`` (registry name) and ``options`` (JSON), so a checkpoint file runs directly with
    ``deblurkit deblur --model .../ema.safetensors``.
    """

    def __init__(self, run_dir: Path, keep: int = 2, metadata: dict[str, str] | None = None):
        self.root = Path(run_dir) / "checkpoints"
        self.keep = keep
        self.metadata = dict(metadata or {})

    def save(self, step: int, model: nn.Module, optimizer, scheduler, ema: EMA | None,
             extra: dict[str, Any] | None = None) -> Path:
        from safetensors.torch import save_file

        d = self.root / f"step_{step:07d}"
        d.mkdir(parents=True, exist_ok=True)
        with atomic_path(d / "model.safetensors") as tmp:
            save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(tmp),
                      metadata=self.metadata or None)
        if ema is not None:
            with atomic_path(d / "ema.safetensors") as tmp:
                save_file({k: v.contiguous().cpu() for k, v in ema.state_dict().items()}, str(tmp),
                          metadata=self.metadata or None)
        state = {"step": step, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                 "rng": _rng_state(), "extra": {}}
        for name, obj in (extra or {}).items():
            if isinstance(obj, nn.Module):
                with atomic_path(d / f"{name}.safetensors") as tmp:
                    save_file({k: v.detach().contiguous().cpu() for k, v in obj.state_dict().items()}, str(tmp))
            else:
                state["extra"][name] = obj.state_dict()
        with atomic_path(d / "state.pt") as tmp:
            torch.save(state, tmp)
        with atomic_path(self.root / "latest") as tmp:
            tmp.write_text(d.name + "\n")
        for old in sorted(self.root.glob("step_*"))[: -self.keep]:
            for f in old.iterdir():
                f.unlink()
            old.rmdir()
        return d

    def latest(self) -> Path | None:
        pointer = self.root / "latest"
        if not pointer.is_file():
            return None
        d = self.root / pointer.read_text().strip()
        if not (d / "state.pt").is_file():
            raise DeblurkitError(f"{pointer}: points at {d.name}, which is incomplete or missing")
        return d

    @staticmethod
    def load(d: Path, model: nn.Module, optimizer, scheduler, ema: EMA | None, device,
             extra: dict[str, Any] | None = None) -> int:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(d / "model.safetensors"), device=str(device)))
        if ema is not None:
            if not (d / "ema.safetensors").is_file():
                raise DeblurkitError(f"{d}: the config has ema but the checkpoint has no ema.safetensors")
            ema.load_state_dict(load_file(str(d / "ema.safetensors"), device=str(device)))
        state = torch.load(d / "state.pt", map_location=device, weights_only=True)
        for name, obj in (extra or {}).items():
            if isinstance(obj, nn.Module):
                if not (d / f"{name}.safetensors").is_file():
                    raise DeblurkitError(f"{d}: the run needs {name}.safetensors (e.g. a GAN's discriminator) "
                                         "but the checkpoint has none")
                obj.load_state_dict(load_file(str(d / f"{name}.safetensors"), device=str(device)))
            elif name not in state.get("extra", {}):
                raise DeblurkitError(f"{d}: state.pt has no state for {name!r} (a checkpoint of another kind of run?)")
            else:
                obj.load_state_dict(state["extra"][name])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state({**state["rng"], "torch": state["rng"]["torch"].cpu()})
        return int(state["step"])


# ----------------------------------------------------------------------------- logging


class CsvLog:
    """Append rows to ``<run_dir>/log.csv``; on resume, rows logged after the resumed step (by a
    run that was killed before its next checkpoint) are dropped so the curve stays exact."""

    FIELDS = ("step", "loss", "lr", "seconds", "val_psnr", "val_ssim", "val_gain")

    def __init__(self, path: Path, resume_step: int | None):
        self.path = Path(path)
        if resume_step is None or not self.path.exists():
            with atomic_path(self.path) as tmp:
                tmp.write_text(",".join(self.FIELDS) + "\n")
        else:
            rows = list(csv.DictReader(self.path.open()))
            kept = [r for r in rows if int(r["step"]) <= resume_step]
            with atomic_path(self.path) as tmp:
                with tmp.open("w", newline="") as f:
                    w = csv.DictWriter(f, self.FIELDS)
                    w.writeheader()
                    w.writerows(kept)

    def write(self, **row) -> None:
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.FIELDS).writerow({k: row.get(k, "") for k in self.FIELDS})


def read_log(path: str | Path) -> list[dict[str, float]]:
    """Rows of a ``log.csv`` as floats (empty cells dropped)."""
    return [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(Path(path).open())]


# ----------------------------------------------------------------------------- steps


def primary_output(out) -> torch.Tensor:
    """The full-resolution prediction of a model: the tensor itself, or the first element of a
    multi-scale list (models return finest scale first)."""
    return out if isinstance(out, torch.Tensor) else out[0]


@dataclass
class SupervisedStep:
    """One supervised update: ``loss(model(blur), sharp)`` -> backward -> clip -> step -> EMA."""

    model: nn.Module
    loss_fn: Callable[[Any, torch.Tensor], torch.Tensor]
    optimizer: torch.optim.Optimizer
    scheduler: Any
    clipper: GradClipper
    ema: EMA | None = None
    amp: str = "none"
    ema_target: nn.Module | None = None
    teacher: nn.Module | None = None  # distillation: frozen, adds distill_weight * loss(out, teacher(blur))
    distill_weight: float = 0.0

    def __call__(self, blur: torch.Tensor, sharp: torch.Tensor) -> float:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(blur.device.type, dtype=torch.bfloat16, enabled=self.amp == "bf16"):
            out = self.model(blur)
            if self.teacher is not None:
                with torch.no_grad():
                    taught = primary_output(self.teacher(blur)).float()
        out = [o.float() for o in out] if isinstance(out, (list, tuple)) else out.float()
        loss = self.loss_fn(out, sharp)
        if self.teacher is not None:
            loss = loss + self.distill_weight * self.loss_fn(out, taught)
        if not torch.isfinite(loss):
            raise DeblurkitError(f"training loss became {loss.item()} (not finite); lower optim.lr or enable clipping")
        loss.backward()
        self.clipper()
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.ema_target or self.model, self.scheduler.last_epoch)
        return float(loss.detach())


@torch.no_grad()
def validate(model: nn.Module, pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], *,
             ssim_convention: str = "skimage", amp: str = "none") -> dict[str, float]:
    """Mean PSNR / SSIM of ``model`` on ``(blur, sharp)`` pairs of shape (1, C, H, W), and the mean
    PSNR gain over the blurred input."""
    from ..metrics import psnr, ssim

    model.eval()
    ps, ss, gains = [], [], []
    for blur, sharp in pairs:
        with torch.autocast(blur.device.type, dtype=torch.bfloat16, enabled=amp == "bf16"):
            out = primary_output(model(blur))
        out = out.float().clamp(0, 1)  # evaluation of an 8-bit output: the [0,1] range is the output's
        p = float(psnr(out, sharp)[0])
        ps.append(p)
        ss.append(float(ssim(out, sharp, convention=ssim_convention)[0]))
        gains.append(p - float(psnr(blur, sharp)[0]))
    return {"val_psnr": float(np.mean(ps)), "val_ssim": float(np.mean(ss)), "val_gain": float(np.mean(gains))}


def load_val_pairs(cfg: TrainConfig, device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Up to ``val.max_images`` pairs from ``val.dir`` (``blur/`` and ``sharp/``), centre-cropped to
    ``val.max_side`` (and to a multiple of 8) so validation stays quick."""
    if cfg.val.dir is None:
        return []
    from ..data import PairedFolder

    ds = PairedFolder(resolve_path(cfg, cfg.val.dir))
    pairs = []
    for i in range(min(len(ds), cfg.val.max_images)):
        item = ds[i]
        b, s = item["blur"], item["sharp"]
        if cfg.val.max_side is not None:
            h, w = b.shape[-2:]
            th, tw = min(h, cfg.val.max_side), min(w, cfg.val.max_side)
            y, x = (h - th) // 2, (w - tw) // 2
            b, s = b[..., y:y + th, x:x + tw], s[..., y:y + th, x:x + tw]
        if cfg.data.grey and b.shape[0] == 3:
            b, s = b.mean(0, keepdim=True), s.mean(0, keepdim=True)
        pairs.append((b[None].to(device), s[None].to(device)))
    return pairs


# ----------------------------------------------------------------------------- data order


class StepSampler(torch.utils.data.Sampler):
    """Sample indices ``step * global_batch + rank * local_batch + j`` for steps in
    ``[start, stop)``: the data of a step depends on nothing but the step, the seed and the rank."""

    def __init__(self, start: int, stop: int, global_batch: int, rank: int = 0, world: int = 1):
        if global_batch % world:
            raise ConfigError(f"data.batch_size {global_batch} must be divisible by the world size {world}")
        self.start, self.stop, self.gb, self.rank, self.world = start, stop, global_batch, rank, world
        self.local = global_batch // world

    def __iter__(self):
        for step in range(self.start, self.stop):
            base = step * self.gb + self.rank * self.local
            yield from range(base, base + self.local)

    def __len__(self) -> int:
        return (self.stop - self.start) * self.local


def _collate(items: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.stack([it["blur"] for it in items]), torch.stack([it["sharp"] for it in items])


# ----------------------------------------------------------------------------- the loop


@dataclass
class RunResult:
    """What :func:`train` returns: the run folder, the last step, losses of this call and the last
    validation figures."""

    run_dir: Path
    step: int
    losses: list[float]
    val: dict[str, float]


def _init_weights(model: nn.Module, path: Path) -> None:
    """Load ``model.init`` (a safetensors state dict whose keys and shapes fit the model)."""
    from ..errors import WeightsError
    from ..models.weights import load_weights

    try:
        load_weights(model, path)
    except WeightsError as exc:
        raise ConfigError(f"model.init: {exc}") from None


def build_teacher(cfg: TrainConfig, device: torch.device) -> nn.Module:
    """The frozen teacher of ``cfg.distill``: built from its model config, its weights loaded from
    ``distill.teacher.init`` (relative to the config file), in eval mode with no gradients."""
    from ..errors import WeightsError
    from ..models import create
    from ..models.weights import load_weights

    tc = cfg.distill.teacher
    try:
        teacher = create(tc.name, **tc.options)
    except ConfigError as exc:
        raise ConfigError(f"{cfg.source}: distill.teacher: {exc}") from None
    try:
        load_weights(teacher, resolve_path(cfg, tc.init))
    except WeightsError as exc:
        raise ConfigError(f"{cfg.source}: distill.teacher.init: {exc}") from None
    teacher = teacher.to(device).eval().requires_grad_(False)
    if cfg.channels_last:
        teacher = teacher.to(memory_format=torch.channels_last)
    return teacher


def _pick_device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{cfg.source}: device is 'cuda' but CUDA is not available here")
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def train(cfg: TrainConfig, *, resume: bool = False, dataset=None, max_steps: int | None = None,
          progress: bool = True) -> RunResult:
    """Train ``cfg.model`` on ``dataset`` (default: the synthetic set of ``cfg.data``).

    ``max_steps`` stops this call early (the schedule still spans ``cfg.steps``), which is how tests
    and time-boxed sessions simulate a kill. With ``resume`` the latest checkpoint in the run folder
    is loaded and training continues from its step; without it an existing run folder with
    checkpoints is refused (no silent overwrite).
    """
    from ..models import create
    from .losses import build_loss

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1 and cfg.gan is not None:
        raise ConfigError(f"{cfg.source}: gan training runs in one process (WORLD_SIZE is {world}); "
                          "run it without torchrun")
    if world > 1 and cfg.time_budget_minutes is not None:
        raise ConfigError(f"{cfg.source}: time_budget_minutes stops each process on its own clock; "
                          f"it cannot be used with {world} processes (WORLD_SIZE)")
    device = _pick_device(cfg)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            device = torch.device("cuda", torch.cuda.current_device())
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop sizes: let cuDNN pick its fastest kernels

    run_dir = cfg.run_dir()
    ckpt = Checkpointer(run_dir, metadata={"arch": cfg.model.name, "options": json.dumps(cfg.model.options)})
    latest = ckpt.latest()
    if latest is not None and not resume:
        raise DeblurkitError(f"{run_dir}: already holds checkpoints; pass --resume to continue or choose another out_dir")
    if resume and latest is None:
        raise DeblurkitError(f"{run_dir}: --resume given but there is no checkpoint to resume from")

    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    random.seed(cfg.seed)
    model = create(cfg.model.name, **cfg.model.options).to(device)
    if cfg.model.init is not None and not resume:
        _init_weights(model, resolve_path(cfg, cfg.model.init))
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    net = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = build_optimizer(model.parameters(), cfg.optim)
    horizon = Horizon(cfg.steps)
    scheduler = build_scheduler(optimizer, cfg.optim, horizon)
    ema = EMA(model, cfg.ema) if cfg.ema else None
    clipper = GradClipper(model, cfg.optim.clip_grad_norm, cfg.optim.clip_modules)
    loss_fn = build_loss([{"name": t.name, "weight": t.weight, **t.options} for t in cfg.loss])
    extra: dict[str, Any] | None = None
    if cfg.gan is None:
        teacher = None if cfg.distill is None else build_teacher(cfg, device)
        step_fn = SupervisedStep(net, loss_fn, optimizer, scheduler, clipper, ema, cfg.amp, ema_target=model,
                                 teacher=teacher, distill_weight=cfg.distill.weight if cfg.distill else 0.0)
    else:
        from .gan import build_gan_step

        step_fn, extra = build_gan_step(cfg, model, loss_fn, optimizer, scheduler, clipper, ema, device, horizon)

    start = 0
    if resume:
        start = Checkpointer.load(latest, model, optimizer, scheduler, ema, device, extra)
    if dataset is None:
        from ..data.realistic import build_training_set

        dataset = build_training_set(cfg)
    # a dataset may batch its own way and finish the batch on the device (data.synthesis: device)
    collate = getattr(dataset, "collate", _collate)
    realise = getattr(dataset, "realise", None)
    stop = cfg.steps if max_steps is None else min(cfg.steps, max_steps)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=cfg.data.batch_size // world,
        sampler=StepSampler(start, stop, cfg.data.batch_size, rank, world),
        num_workers=cfg.data.num_workers, collate_fn=collate,
        persistent_workers=False, prefetch_factor=4 if cfg.data.num_workers else None,
        # its own generator: creating the iterator draws a seed, which must not move the global RNG
        # (a resumed run creates it at another step; dropout and a GAN's penalty draw from that RNG)
        generator=torch.Generator().manual_seed(cfg.seed + start),
    )

    is_main = rank == 0
    log = tb = None
    val_pairs: list = []
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        import yaml

        with atomic_path(run_dir / "config.yaml") as tmp:
            tmp.write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
        log = CsvLog(run_dir / "log.csv", start if resume else None)
        if cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            tb = SummaryWriter(str(run_dir / "tb"), purge_step=start if resume else None)
        val_pairs = load_val_pairs(cfg, device)

    losses: list[float] = []
    val: dict[str, float] = {}
    last_save = time.monotonic()
    t0 = time.monotonic()
    budget = None if cfg.time_budget_minutes is None else 60.0 * cfg.time_budget_minutes
    last_mark = [start, 0.0]
    from tqdm import tqdm

    bar = tqdm(total=stop - start, initial=0, desc=cfg.name, disable=not (progress and is_main), dynamic_ncols=True)
    step = start
    try:
        for step_i, batch in enumerate(loader):
            step = start + step_i
            if realise is not None:
                blur, sharp = realise(batch, device)
            else:
                blur, sharp = (t.to(device, non_blocking=True) for t in batch)
            if cfg.channels_last:
                blur = blur.contiguous(memory_format=torch.channels_last)
            loss = step_fn(blur, sharp)
            losses.append(loss)
            done = step + 1
            bar.update(1)
            out_of_time = False
            if budget is not None:
                elapsed = time.monotonic() - t0
                out_of_time = elapsed >= budget
                if done % cfg.log_every == 0 and done > start + cfg.log_every:
                    # fit the schedule to the time left: horizon = done + remaining / recent rate
                    rate = cfg.log_every / max(1e-6, elapsed - last_mark[1])
                    horizon.steps = min(cfg.steps, done + int(max(0.0, budget - elapsed) * rate))
                if done % cfg.log_every == 0:
                    last_mark[:] = [done, elapsed]
            if not is_main:
                if out_of_time:
                    break
                continue
            row: dict[str, Any] = {}
            if done % cfg.log_every == 0 or done == stop:
                row.update(step=done, loss=f"{np.mean(losses[-cfg.log_every:]):.6f}",
                           lr=f"{scheduler.get_last_lr()[0]:.3e}", seconds=f"{time.monotonic() - t0:.1f}")
                bar.set_postfix(loss=row["loss"])
            if val_pairs and (done % cfg.val.every == 0 or done == cfg.steps):
                target = model
                if ema is not None:
                    target = create(cfg.model.name, **cfg.model.options).to(device)
                    target.load_state_dict(ema.state_dict())
                val = validate(target, val_pairs, ssim_convention=cfg.val.ssim_convention, amp=cfg.amp)
                row.update({k: f"{v:.4f}" for k, v in val.items()}, step=done)
            if row:
                row.setdefault("loss", f"{loss:.6f}")
                log.write(**row)
                if tb is not None:
                    for k, v in row.items():
                        if k != "step":
                            tb.add_scalar(k, float(v), done)
                    for k, v in getattr(step_fn, "last", {}).items():  # a GAN step's loss terms
                        tb.add_scalar(f"gan/{k}", v, done)
            if (done % cfg.checkpoint_every == 0 or done == stop or out_of_time
                    or time.monotonic() - last_save > 60 * cfg.checkpoint_minutes):
                ckpt.save(done, model, optimizer, scheduler, ema, extra)
                last_save = time.monotonic()
            if out_of_time:
                break
    finally:
        bar.close()
        if tb is not None:
            tb.close()
    if world > 1:
        dist.barrier()
    return RunResult(run_dir, start + len(losses), losses, val)


def export_weights(run_dir: str | Path, out_path: str | Path, *, use_ema: bool = True) -> Path:
    """Copy the latest checkpoint's (EMA) weights of a run to a standalone safetensors file."""
    ck = Checkpointer(Path(run_dir)).latest()
    if ck is None:
        raise DeblurkitError(f"{run_dir}: no checkpoint to export")
    src = ck / ("ema.safetensors" if use_ema and (ck / "ema.safetensors").exists() else "model.safetensors")
    data = src.read_bytes()
    with atomic_path(out_path) as tmp:
        tmp.write_bytes(data)
    return Path(out_path)


__all__ = [
    "build_optimizer", "build_scheduler", "Horizon", "lr_factor", "EMA", "GradClipper", "Checkpointer", "CsvLog",
    "read_log", "SupervisedStep", "build_teacher", "validate", "load_val_pairs", "StepSampler", "train", "RunResult",
    "export_weights", "primary_output",
]
