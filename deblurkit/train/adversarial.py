"""Adversarial losses: pure functions of discriminator scores, and the WGAN gradient penalty.

Scores are the raw outputs of a discriminator from :mod:`deblurkit.models.discriminators`: floating
tensors ``(B, ...)`` (a score map ``(B, 1, h, w)`` for a PatchGAN); each function returns a 0-d
tensor, the mean over every score of the batch. ``D(x)`` below is ``sigmoid(score)`` where the
formulation has a probability; the sigmoid is folded into ``softplus`` (``-log sigmoid(s) =
softplus(-s)``, ``-log(1 - sigmoid(s)) = softplus(s)``) so no logarithm of 0 can occur.

Formulations (``S`` sharp, ``B`` blurred, ``G(B)`` restored; survey = Sahu, Lenka, Sa, "Blind
Deblurring using Deep Learning: A Survey", arXiv 1907.10128):

* ``vanilla`` -- Goodfellow et al. 2014 as Nah et al. 2017 use it (survey eq. 24-25). The
  discriminator maximises ``log D(S) + log(1 - D(G(B)))``, i.e. minimises
  :func:`d_loss_vanilla` ``= -log D(S) - log(1 - D(G(B)))``; the generator minimises the
  non-saturating :func:`g_loss_vanilla` ``= -log D(G(B))`` (Nah et al.'s ``L_adv``, eq. 24; their
  total loss ``L_cont + 1e-4 L_adv`` is eq. 26, composed in :mod:`deblurkit.train.gan`).
* ``conditional`` -- the conditional GAN of Ramakrishnan et al. 2017 (survey eq. 28, after Isola et
  al.'s pix2pix): the same two losses, with the discriminator judging pairs ``D(B, S)`` and
  ``D(B, G(B))``; the pairing is done by the training step for a conditional discriminator.
* ``lsgan`` -- least squares GAN (Mao et al., ICCV 2017), with targets 1 (real) and 0 (fake):
  :func:`d_loss_lsgan` ``= 1/2 E[(D(S) - 1)^2] + 1/2 E[D(G(B))^2]``,
  :func:`g_loss_lsgan` ``= 1/2 E[(D(G(B)) - 1)^2]``.
* ``wgan-gp`` -- Wasserstein GAN with gradient penalty (Gulrajani et al., NeurIPS 2017), used by
  Kupyn et al.'s DeblurGAN: the critic minimises :func:`d_loss_wgan` ``= E[D(G(B))] - E[D(S)]`` plus
  :func:`gradient_penalty` ``= lambda E[(||grad_x D(x_hat)||_2 - 1)^2]``; the generator minimises
  :func:`g_loss_wgan` ``= -E[D(G(B))]``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..errors import ConfigError, ImageError

__all__ = ["d_loss_vanilla", "g_loss_vanilla", "d_loss_lsgan", "g_loss_lsgan", "d_loss_wgan", "g_loss_wgan",
           "gradient_penalty", "critic_value", "ADVERSARIAL_LOSSES", "discriminator_loss", "generator_loss"]


def _check_scores(*named: tuple[str, torch.Tensor]) -> None:
    for name, s in named:
        if not isinstance(s, torch.Tensor) or not s.is_floating_point() or s.dim() < 1:
            raise ImageError(f"adversarial loss {name}: expected a floating (B, ...) tensor of scores, "
                             f"got {getattr(s, 'shape', type(s).__name__)}")


def d_loss_vanilla(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``-mean log sigmoid(real) - mean log(1 - sigmoid(fake))`` (survey eq. 25, negated). 0-d."""
    _check_scores(("real", real), ("fake", fake))
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def g_loss_vanilla(fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``-mean log sigmoid(fake)`` (survey eq. 24). 0-d."""
    _check_scores(("fake", fake))
    return F.softplus(-fake).mean()


def d_loss_lsgan(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """LSGAN discriminator loss ``0.5 mean((real - 1)^2) + 0.5 mean(fake^2)``. 0-d."""
    _check_scores(("real", real), ("fake", fake))
    return 0.5 * (real - 1.0).square().mean() + 0.5 * fake.square().mean()


def g_loss_lsgan(fake: torch.Tensor) -> torch.Tensor:
    """LSGAN generator loss ``0.5 mean((fake - 1)^2)``. 0-d."""
    _check_scores(("fake", fake))
    return 0.5 * (fake - 1.0).square().mean()


def d_loss_wgan(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Wasserstein critic loss ``mean(fake) - mean(real)`` (without the penalty). 0-d."""
    _check_scores(("real", real), ("fake", fake))
    return fake.mean() - real.mean()


def g_loss_wgan(fake: torch.Tensor) -> torch.Tensor:
    """Wasserstein generator loss ``-mean(fake)``. 0-d."""
    _check_scores(("fake", fake))
    return -fake.mean()


def critic_value(scores: torch.Tensor) -> torch.Tensor:
    """The critic's value of each sample: the mean of its score map, ``(B, ...) -> (B,)``.

    For a PatchGAN critic this makes ``E[D(x)]`` of the Wasserstein loss the mean over patches, and
    the gradient penalty constrains the gradient of that per-image value (Gulrajani et al.'s critic
    is a function of one image).
    """
    return scores.reshape(scores.shape[0], -1).mean(dim=1)


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                     fake: torch.Tensor, *, weight: float = 10.0, condition: torch.Tensor | None = None,
                     eps: torch.Tensor | None = None) -> torch.Tensor:
    """WGAN-GP penalty ``weight * mean_b (||grad_x critic(x_hat_b)||_2 - 1)^2`` (Gulrajani et al. 2017).

    Args:
        critic: maps ``(B, C', H, W)`` to scores ``(B, ...)``; its per-sample value is
            :func:`critic_value` (the mean of the score map).
        real, fake: ``(B, C, H, W)`` floating tensors (``fake`` is detached here).
        weight: ``lambda`` (10 in Gulrajani et al. and DeblurGAN); >= 0.
        condition: ``(B, Cc, H, W)`` for a conditional critic: it is given
            ``cat([condition, x_hat], 1)`` and the gradient is taken with respect to ``x_hat`` only.
        eps: ``(B,)`` interpolation weights in [0, 1]; default uniform random, drawn from the CPU
            generator (so a checkpointed CPU RNG state reproduces it on any device).

    ``x_hat = eps * real + (1 - eps) * fake``; the norm is over all of one sample's elements. The
    graph is kept (``create_graph``) so the penalty trains the critic's parameters. Returns a 0-d
    tensor in the dtype of ``real``.
    """
    for name, x in (("real", real), ("fake", fake)):
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
            raise ImageError(f"gradient penalty {name}: expected a floating (B, C, H, W) tensor, "
                             f"got {getattr(x, 'shape', type(x).__name__)}")
    if real.shape != fake.shape:
        raise ImageError(f"gradient penalty: real shape {tuple(real.shape)} differs from fake {tuple(fake.shape)}")
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
        raise ConfigError(f"gradient penalty weight: expected a number >= 0, got {weight!r}")
    b = real.shape[0]
    if eps is None:
        eps = torch.rand(b, dtype=torch.float64)
    if eps.shape != (b,):
        raise ImageError(f"gradient penalty eps: expected shape ({b},), got {tuple(eps.shape)}")
    eps = eps.to(device=real.device, dtype=real.dtype).view(b, 1, 1, 1)
    x_hat = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    inp = x_hat if condition is None else torch.cat([condition.detach(), x_hat], dim=1)
    value = critic_value(critic(inp))
    (grad,) = torch.autograd.grad(value.sum(), x_hat, create_graph=True)
    norm = grad.reshape(b, -1).norm(2, dim=1)
    return float(weight) * (norm - 1.0).square().mean()


# name -> (discriminator loss, generator loss)
ADVERSARIAL_LOSSES: dict[str, tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]] = {
    "vanilla": (d_loss_vanilla, g_loss_vanilla),          # survey eq. 24-25 (Nah et al.)
    "conditional": (d_loss_vanilla, g_loss_vanilla),      # survey eq. 28, with D(B, .) (Ramakrishnan et al.)
    "lsgan": (d_loss_lsgan, g_loss_lsgan),                # Mao et al. 2017
    "wgan-gp": (d_loss_wgan, g_loss_wgan),                # Gulrajani et al. 2017, Kupyn et al. 2018
}


def _pair(kind: str):
    if kind not in ADVERSARIAL_LOSSES:
        raise ConfigError(f"adversarial loss {kind!r}: unknown; choose one of: {', '.join(ADVERSARIAL_LOSSES)}")
    return ADVERSARIAL_LOSSES[kind]


def discriminator_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss of formulation ``kind`` on the scores of real and fake inputs
    (without the gradient penalty, which needs the critic itself: :func:`gradient_penalty`). 0-d."""
    return _pair(kind)[0](real, fake)


def generator_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """The generator's adversarial loss of formulation ``kind`` on the scores of its outputs. 0-d."""
    return _pair(kind)[1](fake)
