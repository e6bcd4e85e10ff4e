"""Adversarial losses, the gradient penalty, GANStep and GAN training through the one engine."""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

from deblurkit.errors import ConfigError, DeblurkitError, ImageError
from deblurkit.models import create
from deblurkit.models.discriminators import create_discriminator
from deblurkit.train import adversarial as A
from deblurkit.train import engine as E
from deblurkit.train.config import GanConfig, config_from_dict, config_to_dict
from deblurkit.train.gan import GANStep
from deblurkit.train.losses import build_loss
from train_helpers import PairSet


# ----------------------------------------------------------------------------- losses


def test_adversarial_losses_on_constructed_scores():
    zero = torch.zeros(2, 1, 3, 3, dtype=torch.float64)
    assert A.d_loss_vanilla(zero, zero).item() == pytest.approx(2 * math.log(2))
    assert A.g_loss_vanilla(zero).item() == pytest.approx(math.log(2))
    real = torch.tensor([[2.0], [-1.0]], dtype=torch.float64)
    fake = torch.tensor([[0.5], [-3.0]], dtype=torch.float64)
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    r, f = real.numpy().ravel(), fake.numpy().ravel()
    assert A.d_loss_vanilla(real, fake).item() == pytest.approx(np.mean(-np.log(sig(r))) + np.mean(-np.log(1 - sig(f))))
    assert A.g_loss_vanilla(fake).item() == pytest.approx(np.mean(-np.log(sig(f))))
    assert A.d_loss_vanilla(torch.tensor([200.0]), torch.tensor([-200.0])).item() == pytest.approx(0.0, abs=1e-30)
    assert A.d_loss_lsgan(real, fake).item() == pytest.approx(0.5 * np.mean((r - 1) ** 2) + 0.5 * np.mean(f ** 2))
    assert A.g_loss_lsgan(fake).item() == pytest.approx(0.5 * np.mean((f - 1) ** 2))
    assert A.d_loss_wgan(real, fake).item() == pytest.approx(f.mean() - r.mean())
    assert A.g_loss_wgan(fake).item() == pytest.approx(-f.mean())
    assert A.ADVERSARIAL_LOSSES["conditional"] == A.ADVERSARIAL_LOSSES["vanilla"]
    with pytest.raises(ConfigError, match="adversarial loss 'hinge': unknown; choose one of"):
        A.generator_loss("hinge", fake)
    with pytest.raises(ImageError, match="adversarial loss fake"):
        A.g_loss_wgan(torch.tensor(1.0))


class Linear(nn.Module):
    """D(x) = <w, x>: its gradient is w everywhere, so the penalty is lambda (|w| - 1)^2 exactly."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1)


def test_gradient_penalty_of_a_linear_critic_is_hand_computed():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    critic = Linear(w)
    real = torch.rand(6, 3, 4, 5, generator=g, dtype=torch.float64)
    fake = torch.rand(6, 3, 4, 5, generator=g, dtype=torch.float64)
    norm = float(np.linalg.norm(w.numpy()))
    gp = A.gradient_penalty(critic, real, fake, weight=7.0)
    assert gp.item() == pytest.approx(7.0 * (norm - 1.0) ** 2, rel=1e-12)
    # it trains the critic: d/dw [lambda (|w| - 1)^2] = 2 lambda (|w| - 1) w / |w|
    gp.backward()
    assert torch.allclose(critic.w.grad, 2 * 7.0 * (norm - 1) * w / norm)


def test_gradient_penalty_conventions():
    g = torch.Generator().manual_seed(1)
    real = torch.rand(3, 2, 4, 4, generator=g, dtype=torch.float64)
    fake = torch.rand(3, 2, 4, 4, generator=g, dtype=torch.float64)
    w = torch.randn(2, 4, 4, generator=g, dtype=torch.float64)
    n = w.numel()
    # a score map: the critic's value is its mean, so the gradient is w / N
    gp = A.gradient_penalty(lambda x: x * w, real, fake, weight=10.0)
    assert gp.item() == pytest.approx(10.0 * (np.linalg.norm(w.numpy()) / n - 1.0) ** 2, rel=1e-12)
    # a quadratic critic 0.5 |x|^2 has gradient x_hat = eps real + (1 - eps) fake
    eps = torch.tensor([0.0, 0.25, 1.0], dtype=torch.float64)
    gp = A.gradient_penalty(lambda x: 0.5 * x.square().flatten(1).sum(1), real, fake, weight=2.0, eps=eps)
    x_hat = eps.numpy()[:, None] * real.flatten(1).numpy() + (1 - eps.numpy()[:, None]) * fake.flatten(1).numpy()
    assert gp.item() == pytest.approx(2.0 * np.mean((np.linalg.norm(x_hat, axis=1) - 1) ** 2), rel=1e-12)
    # a conditional critic: the gradient is taken with respect to the judged image only
    wc = torch.randn(4, 4, 4, generator=g, dtype=torch.float64)
    cond = torch.rand(3, 2, 4, 4, generator=g, dtype=torch.float64)
    gp = A.gradient_penalty(Linear(wc), real, fake, weight=1.0, condition=cond)
    assert gp.item() == pytest.approx((np.linalg.norm(wc[2:].numpy()) - 1.0) ** 2, rel=1e-12)


def test_gradient_penalty_refuses_bad_inputs():
    x = torch.rand(2, 1, 3, 3)
    critic = Linear(torch.ones(1, 3, 3))
    with pytest.raises(ImageError, match="real shape"):
        A.gradient_penalty(critic, x, torch.rand(2, 1, 3, 4))
    with pytest.raises(ConfigError, match="weight: expected a number >= 0, got -1"):
        A.gradient_penalty(critic, x, x, weight=-1)
    with pytest.raises(ImageError, match=r"eps: expected shape \(2,\)"):
        A.gradient_penalty(critic, x, x, eps=torch.rand(3))


# ----------------------------------------------------------------------------- GANStep


class Counting:
    """Counts an optimizer's steps."""

    def __init__(self, opt):
        self.n = 0
        opt.register_step_post_hook(lambda *a: setattr(self, "n", self.n + 1))


def _step(disc_name="wgan_gp_critic", loss="wgan-gp", n_critic=1, adv_weight=0.1, **kw):
    torch.manual_seed(0)
    gen = create("nafnet", size="tiny", identity_init=False)  # a random residual: every weight moves at once
    disc = create_discriminator(disc_name, width=4, **({"norm": "none"} if disc_name == "patchgan_conditional" else {}))
    ocfg = config_from_dict({"name": "s", "optim": {"lr": 1e-3, "schedule": "constant"}}).optim
    opt, dopt = E.build_optimizer(gen.parameters(), ocfg), E.build_optimizer(disc.parameters(), ocfg)
    step = GANStep(gen, disc, build_loss([{"name": "l1"}]), opt, E.build_scheduler(opt, ocfg, 10),
                   E.GradClipper(gen, None, {}), dopt, E.build_scheduler(dopt, ocfg, 10),
                   E.GradClipper(disc, None, {}), adversarial=loss, adv_weight=adv_weight, n_critic=n_critic, **kw)
    data = PairSet(size=32)
    batch = [data[i] for i in range(2)]
    blur, sharp = torch.stack([b["blur"] for b in batch]), torch.stack([b["sharp"] for b in batch])
    return step, gen, disc, blur, sharp


@pytest.mark.parametrize("loss", ["vanilla", "lsgan", "wgan-gp"])
def test_one_gan_step_updates_both_networks(loss):
    step, gen, disc, blur, sharp = _step(loss=loss)
    g0 = {n: p.detach().clone() for n, p in gen.named_parameters()}
    d0 = {n: p.detach().clone() for n, p in disc.named_parameters()}
    value = step(blur, sharp)
    assert math.isfinite(value)

    def moved_and_with_grad(net, before):
        moved = {n for n, p in net.named_parameters() if not torch.equal(before[n], p)}
        with_grad = {n for n, p in net.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
        return moved, with_grad

    # every parameter with a gradient moved, and only those
    moved, with_grad = moved_and_with_grad(disc, d0)
    assert moved == with_grad
    # the critic's last bias shifts E[D(fake)] and E[D(real)] alike: no Wasserstein gradient
    inert = {"model.11.bias"} if loss == "wgan-gp" else set()
    assert moved == set(d0) - inert
    # NAFNet's zero-initialised block scales stop the gradient of its blocks on the first step
    moved, with_grad = moved_and_with_grad(gen, g0)
    assert moved == with_grad and {"intro.weight", "ending.weight"} <= moved
    assert all(p.requires_grad for p in disc.parameters())
    last = step.last
    assert last["g_total"] == pytest.approx(last["g_content"] + 0.1 * last["g_adv"])
    assert (last["d_gp"] > 0) == (loss == "wgan-gp")


def test_n_critic_discriminator_updates_per_generator_update():
    step, gen, disc, blur, sharp = _step(n_critic=3)
    g_count, d_count = Counting(step.optimizer), Counting(step.d_optimizer)
    calls = []
    disc.register_forward_pre_hook(lambda m, inp: calls.append(inp[0].shape[0]))
    step(blur, sharp)
    assert (d_count.n, g_count.n) == (3, 1)
    # per critic update: real, fake and the penalty's interpolate; then one call for the generator
    assert len(calls) == 3 * 3 + 1
    step(blur, sharp)
    assert (d_count.n, g_count.n) == (6, 2)
    assert step.d_scheduler.last_epoch == 2 and step.scheduler.last_epoch == 2


def test_conditional_discriminator_sees_the_blurred_image():
    step, gen, disc, blur, sharp = _step("patchgan_conditional", "conditional")
    seen = []
    disc.register_forward_pre_hook(lambda m, inp: seen.append(inp[0].detach().clone()))
    step(blur, sharp)
    assert len(seen) == 3
    for x in seen:
        assert x.shape == (2, 6, 32, 32)
        assert torch.equal(x[:, :3], blur)
    assert torch.equal(seen[0][:, 3:], sharp)  # real pair (blur, sharp)
    assert not torch.equal(seen[1][:, 3:], sharp)  # fake pair (blur, G(blur))
    with pytest.raises(ConfigError, match="needs a conditional discriminator"):
        _step("wgan_gp_critic", "conditional")


def test_generator_loss_combines_content_adversarial_and_perceptual_terms():
    from deblurkit.train.perceptual import PerceptualLoss, VGGFeatures

    torch.manual_seed(3)
    perc = PerceptualLoss(VGGFeatures("vgg16", "relu1_2").requires_grad_(False).eval())
    step, gen, disc, blur, sharp = _step(adv_weight=0.0, perceptual=perc, perceptual_weight=2.0)
    with torch.no_grad():
        out = copy.deepcopy(gen)(blur)
        content = (out - sharp).abs().mean().item()
        ref_perc = (perc.features(out) - perc.features(sharp)).square().mean().item()
    value = step(blur, sharp)
    assert value == pytest.approx(content + 2.0 * ref_perc, rel=1e-5)
    assert step.last["g_perceptual"] == pytest.approx(ref_perc, rel=1e-5)


# ----------------------------------------------------------------------------- through the engine

GAN = {"discriminator": {"name": "wgan_gp_critic", "options": {"width": 4}}, "loss": "wgan-gp", "n_critic": 2,
       "adv_weight": 0.05, "d_lr": 5e-4}


def _cfg(tmp_path, gan=GAN, **over):
    raw = {"name": "g", "model": {"name": "nafnet", "options": {"size": "tiny"}},
           "data": {"batch_size": 4, "crop": 16}, "steps": 8, "optim": {"lr": 2e-3, "warmup_steps": 2},
           "log_every": 1, "checkpoint_every": 4, "tensorboard": False, "out_dir": str(tmp_path / "run"),
           "loss": [{"name": "l1"}], "gan": gan}
    raw.update(over)
    return config_from_dict(raw, source=str(tmp_path / "cfg.yaml"))


def test_gan_resume_after_kill_gives_the_same_loss_curve(tmp_path):
    torch.set_num_threads(1)
    a = _cfg(tmp_path / "a", ema=0.9)
    full = E.train(a, dataset=PairSet(), progress=False)
    assert len(full.losses) == 8 and all(math.isfinite(v) for v in full.losses)
    b = _cfg(tmp_path / "b", ema=0.9)

    class Killed(Exception):
        pass

    class DiesAtStep7(PairSet):
        def __getitem__(self, i):
            if i >= 6 * 4:
                raise Killed()
            return super().__getitem__(i)

    with pytest.raises(Killed):
        E.train(b, dataset=DiesAtStep7(), progress=False)  # checkpoint at 4
    second = E.train(b, dataset=PairSet(), resume=True, progress=False)
    assert full.losses[4:] == second.losses  # exact: discriminator, its Adam state and the RNG restored
    log_a, log_b = E.read_log(a.run_dir() / "log.csv"), E.read_log(b.run_dir() / "log.csv")
    assert [r["loss"] for r in log_a] == [r["loss"] for r in log_b]
    from safetensors.torch import load_file

    da, db = E.Checkpointer(a.run_dir()).latest(), E.Checkpointer(b.run_dir()).latest()
    for f in ("model.safetensors", "disc.safetensors", "ema.safetensors"):
        ka, kb = load_file(str(da / f)), load_file(str(db / f))
        assert ka.keys() == kb.keys() and all(torch.equal(ka[k], kb[k]) for k in ka)
    state = torch.load(db / "state.pt", weights_only=True)
    assert set(state["extra"]) == {"disc_optimizer", "disc_scheduler"}
    assert state["extra"]["disc_scheduler"]["last_epoch"] == 8


def test_resume_needs_the_discriminator_in_the_checkpoint(tmp_path):
    plain = _cfg(tmp_path, gan=None, steps=4)
    E.train(plain, dataset=PairSet(), progress=False)
    with pytest.raises(DeblurkitError, match="needs disc.safetensors"):
        E.train(dataclasses.replace(plain, gan=_cfg(tmp_path).gan, steps=6), dataset=PairSet(), resume=True,
                progress=False)


def test_gan_config_values_are_checked(tmp_path):
    cfg = _cfg(tmp_path)
    assert isinstance(cfg.gan, GanConfig) and cfg.gan.d_betas == (0.5, 0.999)
    assert config_from_dict(config_to_dict(cfg), source=cfg.source) == cfg  # the run folder's copy
    assert _cfg(tmp_path, gan=None).gan is None
    bad = [
        ({"n_critic": 0}, r"gan.n_critic has an out-of-range value 0"),
        ({"d_lr": 0.0}, r"gan.d_lr has an out-of-range value 0.0"),
        ({"d_betas": [1.0, 0.9]}, r"gan.d_betas has an out-of-range value"),
        ({"gp_weight": -1}, r"gan.gp_weight has an out-of-range value"),
        ({"loss": "hinge"}, r"gan.loss must be one of 'vanilla', 'lsgan', 'wgan-gp', 'conditional'"),
        ({"n_critc": 5}, r"unknown key 'gan.n_critc'"),
        ({"discriminator": {"name": "vgg"}}, r"gan.discriminator: discriminator 'vgg': unknown; choose one of"),
        ({"discriminator": {"name": "patchgan", "options": {"depth": 2}}}, r"unknown option 'depth'"),
        ({"discriminator": {"name": "patchgan"}, "loss": "conditional"}, r"needs a conditional discriminator"),
        ({"discriminator": {"name": "patchgan"}}, r"'wgan-gp' cannot use batch norm"),
        ({"perceptual_weight": 1.0}, r"gan.perceptual_weights_path is not set"),
        ({"perceptual_layer": "conv9_1"}, r"gan.perceptual_layer: perceptual layer 'conv9_1': not a layer of vgg16"),
        ({"perceptual_net": "resnet"}, r"gan.perceptual_net must be one of"),
    ]
    for change, pattern in bad:
        with pytest.raises(ConfigError, match=pattern):
            _cfg(tmp_path, gan={**GAN, **change})
    with pytest.raises(ConfigError, match="gan must be GanConfig or NoneType, got 3"):
        _cfg(tmp_path, gan=3)


def test_missing_perceptual_weights_stop_training_before_it_starts(tmp_path):
    cfg = _cfg(tmp_path, gan={**GAN, "perceptual_weight": 1.0, "perceptual_weights_path": "vgg/vgg16.safetensors"})
    with pytest.raises(ConfigError) as info:
        E.train(cfg, dataset=PairSet(), progress=False)
    msg = str(info.value)
    assert str(tmp_path / "vgg" / "vgg16.safetensors") in msg and "never downloaded" in msg and "\n" not in msg
    assert not (tmp_path / "run").exists()


def test_gan_training_is_refused_under_torchrun(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="gan training runs in one process"):
        E.train(_cfg(tmp_path), dataset=PairSet(), progress=False)
