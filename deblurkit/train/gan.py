"""Adversarial training as one part of the one engine: :class:`GANStep` replaces
:class:`~deblurkit.train.engine.SupervisedStep` when a config has a ``gan`` section.

A step on a batch ``(blur, sharp)``:

1. the generator restores ``G(blur)`` once;
2. ``n_critic`` discriminator updates on this batch, each on ``D(sharp)`` (real) against
   ``D(G(blur))`` (fake, detached), plus the gradient penalty for ``wgan-gp`` -- as DeblurGAN's
   code (Kupyn et al. 2018), which makes its 5 critic updates on the batch of the generator update;
   a conditional discriminator sees ``cat([blur, x], 1)`` (survey eq. 28);
3. one generator update on ``L_G = content + adv_weight * L_adv + perceptual_weight * L_X``:
   ``content`` is the config's ``loss`` terms (:func:`deblurkit.train.losses.build_loss`), ``L_adv``
   the generator's adversarial loss (:mod:`deblurkit.train.adversarial`) and ``L_X`` the perceptual
   loss (survey eq. 27, :mod:`deblurkit.train.perceptual`).

Each network has its own optimizer, schedule (stepped once per engine step) and gradient clipping
(:class:`~deblurkit.train.engine.GradClipper`, per module then global). The data of a step and the
random interpolation of the gradient penalty (drawn from the CPU generator, which checkpoints save)
depend only on the step and the seed, so a resumed GAN run repeats the uninterrupted one exactly.

The papers' combined generator losses in these terms (survey = Sahu, Lenka, Sa, arXiv 1907.10128):

* Nah et al. 2017 (survey eq. 26): ``L_cont + 1e-4 * L_adv`` -- ``loss: [multiscale_content]``
  (eq. 23), ``gan: {discriminator: {name: nah2017_discriminator}, loss: vanilla, adv_weight: 1.0e-4}``.
* Ramakrishnan et al. 2017: perceptual (eq. 27) and conditional adversarial (eq. 28) terms with a
  pixel content term -- ``gan: {discriminator: {name: patchgan_conditional}, loss: conditional,
  perceptual_weight: ..., perceptual_weights_path: ...}``.
* Kupyn et al. 2018 (DeblurGAN): ``L_GAN + 100 * L_X`` with WGAN-GP, ``n_critic`` 5, ``L_X`` on
  VGG19 ``conv3_3`` -- ``gan: {discriminator: {name: wgan_gp_critic}, loss: wgan-gp, n_critic: 5,
  adv_weight: 1.0, perceptual_weight: 100, perceptual_net: vgg19}`` with a zero-weight content term.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from ..errors import ConfigError, DeblurkitError
from .adversarial import discriminator_loss, generator_loss, gradient_penalty
from .config import TrainConfig, resolve_path
from .engine import EMA, GradClipper, build_optimizer, build_scheduler, primary_output

__all__ = ["GANStep", "build_gan_step"]


def _judged(disc: nn.Module, condition: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """Scores of ``x`` (paired with ``condition`` for a conditional discriminator)."""
    return disc(x if condition is None else torch.cat([condition, x], dim=1))


def _finite(value: torch.Tensor, what: str) -> None:
    if not torch.isfinite(value):
        raise DeblurkitError(f"{what} became {value.item()} (not finite); lower the learning rates "
                             "or enable clipping")


@dataclass
class GANStep:
    """One adversarial update, called like ``SupervisedStep``: ``step(blur, sharp) -> float``.

    ``blur`` and ``sharp`` are ``(B, C, H, W)`` float tensors in [0, 1] on the training device. The
    returned float is the generator's total loss ``L_G``; ``last`` holds this step's terms
    (``g_total``, ``g_content``, ``g_adv``, ``g_perceptual``, ``d_loss``, ``d_gp``; the discriminator
    figures are those of its last update).

    Attributes:
        model: the generator (possibly DDP-wrapped: the module ``forward`` runs on).
        discriminator: a module from :mod:`deblurkit.models.discriminators` (``.conditional`` says
            whether it judges ``cat([blur, x], 1)``).
        loss_fn: content loss ``loss_fn(outputs, sharp)`` (any multi-scale output list).
        optimizer, scheduler, clipper: the generator's.
        d_optimizer, d_scheduler, d_clipper: the discriminator's.
        adversarial: ``"vanilla"``, ``"conditional"``, ``"lsgan"`` or ``"wgan-gp"``.
        adv_weight, perceptual_weight, gp_weight, n_critic: as :class:`~deblurkit.train.config.GanConfig`.
        perceptual: a perceptual loss module ``(pred, target) -> 0-d`` or None.
        ema, amp, ema_target: as ``SupervisedStep`` (EMA of the generator; ``amp`` covers the
            generator's forward; the discriminator runs in float32).
    """

    model: nn.Module
    discriminator: nn.Module
    loss_fn: Callable[[Any, torch.Tensor], torch.Tensor]
    optimizer: torch.optim.Optimizer
    scheduler: Any
    clipper: GradClipper
    d_optimizer: torch.optim.Optimizer
    d_scheduler: Any
    d_clipper: GradClipper
    adversarial: str = "vanilla"
    adv_weight: float = 1e-4
    n_critic: int = 1
    gp_weight: float = 10.0
    perceptual: nn.Module | None = None
    perceptual_weight: float = 0.0
    ema: EMA | None = None
    amp: str = "none"
    ema_target: nn.Module | None = None
    last: dict[str, float] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if self.adversarial not in ("vanilla", "conditional", "lsgan", "wgan-gp"):
            raise ConfigError(f"gan.loss: unknown {self.adversarial!r}; "
                              "choose one of: vanilla, conditional, lsgan, wgan-gp")
        if self.adversarial == "conditional" and not getattr(self.discriminator, "conditional", False):
            raise ConfigError("gan.loss 'conditional' needs a conditional discriminator (e.g. 'patchgan_conditional')")
        if isinstance(self.n_critic, bool) or not isinstance(self.n_critic, int) or self.n_critic < 1:
            raise ConfigError(f"gan.n_critic: expected an integer >= 1, got {self.n_critic!r}")
        if self.perceptual_weight > 0 and self.perceptual is None:
            raise ConfigError(f"gan.perceptual_weight is {self.perceptual_weight} but no perceptual loss was given")

    def __call__(self, blur: torch.Tensor, sharp: torch.Tensor) -> float:
        gen, disc = self.model, self.discriminator
        gen.train()
        disc.train()
        cond = blur if getattr(disc, "conditional", False) else None
        with torch.autocast(blur.device.type, dtype=torch.bfloat16, enabled=self.amp == "bf16"):
            out = gen(blur)
        out = [o.float() for o in out] if isinstance(out, (list, tuple)) else out.float()
        fake = primary_output(out)
        if fake.shape != sharp.shape:
            raise DeblurkitError(f"gan: the generator's output {tuple(fake.shape)} differs from the target "
                                 f"{tuple(sharp.shape)}")

        # 1. n_critic discriminator updates on this batch (the generator's output detached).
        fake_d = fake.detach()
        d_loss = gp = torch.zeros((), device=sharp.device)
        for _ in range(self.n_critic):
            self.d_optimizer.zero_grad(set_to_none=True)
            d_loss = discriminator_loss(self.adversarial, _judged(disc, cond, sharp), _judged(disc, cond, fake_d))
            if self.adversarial == "wgan-gp":
                gp = gradient_penalty(disc, sharp, fake_d, weight=self.gp_weight, condition=cond)
                d_loss = d_loss + gp
            _finite(d_loss, "discriminator loss")
            d_loss.backward()
            self.d_clipper()
            self.d_optimizer.step()
        self.d_scheduler.step()

        # 2. one generator update against the updated discriminator (its parameters frozen).
        self.optimizer.zero_grad(set_to_none=True)
        disc.requires_grad_(False)
        try:
            content = self.loss_fn(out, sharp)
            adv = generator_loss(self.adversarial, _judged(disc, cond, fake))
            total = content + self.adv_weight * adv
            perc = torch.zeros((), device=sharp.device)
            if self.perceptual is not None and self.perceptual_weight > 0:
                perc = self.perceptual(fake, sharp)
                total = total + self.perceptual_weight * perc
            _finite(total, "generator loss")
            total.backward()
        finally:
            disc.requires_grad_(True)
        self.clipper()
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.ema_target or self.model, self.scheduler.last_epoch)
        self.last = {"g_total": float(total.detach()), "g_content": float(content.detach()),
                     "g_adv": float(adv.detach()), "g_perceptual": float(perc.detach()),
                     "d_loss": float(d_loss.detach()), "d_gp": float(gp.detach())}
        return self.last["g_total"]


def build_gan_step(cfg: TrainConfig, model: nn.Module, loss_fn, optimizer, scheduler, clipper: GradClipper,
                   ema: EMA | None, device, horizon=None) -> tuple[GANStep, dict[str, Any]]:
    """Build the discriminator, its optimizer / scheduler / clipper and the perceptual loss of
    ``cfg.gan``, and the :class:`GANStep` around the generator's parts.

    Returns ``(step, extra)``; ``extra`` (``disc``, ``disc_optimizer``, ``disc_scheduler``) is what
    :class:`~deblurkit.train.engine.Checkpointer` saves and restores besides the generator.
    The discriminator's schedule is the generator's shape (``optim.schedule``, warm-up, ``min_lr``
    scaled by ``d_lr / lr``) from ``gan.d_lr``; its optimizer is Adam (AdamW without weight decay).
    """
    from ..models.discriminators import create_discriminator

    g = cfg.gan
    if g is None:
        raise ConfigError(f"{cfg.source}: no gan section in the config")
    try:
        disc = create_discriminator(g.discriminator.name, **g.discriminator.options).to(device)
    except ConfigError as exc:
        raise ConfigError(f"{cfg.source}: gan.discriminator: {exc}") from None
    if g.loss == "wgan-gp" and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in disc.modules()):
        raise ConfigError(f"{cfg.source}: gan.loss 'wgan-gp' cannot use a critic with batch norm")
    d_optim = dataclasses.replace(cfg.optim, lr=g.d_lr, betas=g.d_betas, weight_decay=0.0,
                                  min_lr=cfg.optim.min_lr * g.d_lr / cfg.optim.lr,
                                  clip_grad_norm=g.d_clip_grad_norm, clip_modules={})
    d_optimizer = build_optimizer(disc.parameters(), d_optim)
    d_scheduler = build_scheduler(d_optimizer, d_optim, cfg.steps if horizon is None else horizon)
    d_clipper = GradClipper(disc, g.d_clip_grad_norm, {})
    perceptual = None
    if g.perceptual_weight > 0:
        from .perceptual import PerceptualLoss, load_vgg_features

        if g.perceptual_weights_path is None:
            raise ConfigError(f"{cfg.source}: gan.perceptual_weight > 0 needs gan.perceptual_weights_path")
        try:
            feats = load_vgg_features(resolve_path(cfg, g.perceptual_weights_path), g.perceptual_net,
                                      g.perceptual_layer)
        except ConfigError as exc:
            raise ConfigError(f"{cfg.source}: gan.perceptual_weights_path: {exc}") from None
        perceptual = PerceptualLoss(feats).to(device)
    step = GANStep(model=model, discriminator=disc, loss_fn=loss_fn, optimizer=optimizer, scheduler=scheduler,
                   clipper=clipper, d_optimizer=d_optimizer, d_scheduler=d_scheduler, d_clipper=d_clipper,
                   adversarial=g.loss, adv_weight=g.adv_weight, n_critic=g.n_critic, gp_weight=g.gp_weight,
                   perceptual=perceptual, perceptual_weight=g.perceptual_weight, ema=ema, amp=cfg.amp,
                   ema_target=model)
    return step, {"disc": disc, "disc_optimizer": d_optimizer, "disc_scheduler": d_scheduler}
