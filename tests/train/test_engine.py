"""The training engine: config validation, schedule, clipping, EMA, exact resume, DDP."""

from __future__ import annotations

import dataclasses
import os
import socket

import numpy as np
import pytest
import torch

from deblurkit.errors import ConfigError, DeblurkitError
from deblurkit.train import engine as E
from deblurkit.train.config import config_from_dict, load_config
from train_helpers import PairSet

TINY = {"name": "nafnet", "options": {"width": 4, "enc_blocks": [1, 1], "middle_blocks": 1, "dec_blocks": [1, 1],
                                    "identity_init": False}}


def _cfg(tmp_path, **over):
    raw = {"name": "t", "model": TINY, "data": {"batch_size": 4, "crop": 16}, "steps": 8,
           "optim": {"lr": 2e-3, "warmup_steps": 2}, "log_every": 1, "checkpoint_every": 4,
           "tensorboard": False, "out_dir": str(tmp_path / "run"), "loss": [{"name": "l1"}]}
    raw.update(over)
    return config_from_dict(raw, source=str(tmp_path / "cfg.yaml"))


def test_config_rejects_unknown_key_and_bad_values(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: x\noptim: {lrr: 0.1}\n")
    with pytest.raises(ConfigError, match=r"unknown key 'optim.lrr'"):
        load_config(p)
    p.write_text("name: x\nsteps: -3\n")
    with pytest.raises(ConfigError, match=r"steps has an out-of-range value -3"):
        load_config(p)
    p.write_text("name: x\noptim: {schedule: linear}\n")
    with pytest.raises(ConfigError, match=r"optim.schedule must be one of"):
        load_config(p)
    p.write_text("name: x\ndata: {batch_size: 2.5}\n")
    with pytest.raises(ConfigError, match=r"data.batch_size must be an integer"):
        load_config(p)
    p.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
    with pytest.raises(ConfigError, match="no such config"):
        load_config(tmp_path / "missing.yaml")


def test_config_is_frozen_and_typed(tmp_path):
    cfg = _cfg(tmp_path)
    assert isinstance(cfg.optim.betas, tuple) and cfg.optim.lr == 2e-3
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.steps = 3  # type: ignore[misc]


def test_shipped_configs_load():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "configs"
    files = sorted(root.rglob("*.yaml"))  # configs/gpu/ too
    assert files, "configs/ holds no YAML"
    from deblurkit.models import create
    from deblurkit.models.discriminators import create_discriminator
    from deblurkit.train.losses import build_loss

    for f in files:  # every config loads, and its model, loss and discriminator can be built
        cfg = load_config(f)
        create(cfg.model.name, **cfg.model.options)
        build_loss([{"name": t.name, "weight": t.weight, **t.options} for t in cfg.loss])
        if cfg.gan is not None:
            create_discriminator(cfg.gan.discriminator.name, **cfg.gan.discriminator.options)


def test_lr_schedule_shapes():
    cfg = config_from_dict({"name": "s", "optim": {"lr": 1.0, "min_lr": 0.0, "warmup_steps": 10}}).optim
    f = [E.lr_factor(s, cfg, 110) for s in range(110)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert f[10] == pytest.approx(1.0) and f[60] == pytest.approx(0.5, abs=1e-9)
    assert all(a >= b for a, b in zip(f[10:], f[11:]))
    step = dataclasses.replace(cfg, schedule="step", step_size=20, gamma=0.1, warmup_steps=0)
    assert E.lr_factor(19, step, 100) == 1.0 and E.lr_factor(20, step, 100) == pytest.approx(0.1)


def test_ema_matches_hand_computation():
    m = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        m.weight.fill_(1.0)
    ema = E.EMA(m, 0.9)
    with torch.no_grad():
        m.weight.fill_(3.0)
    ema.update(m)
    assert torch.allclose(ema.shadow["weight"], torch.full((1, 2), 0.9 * 1 + 0.1 * 3))
    # warm-up: at step 1 the decay is min(0.9, 2 / 11)
    ema.update(m, step=1)
    assert torch.allclose(ema.shadow["weight"], torch.full((1, 2), (2 / 11) * 1.2 + (9 / 11) * 3))
    assert ema.decay_at(10**6) == 0.9
    with pytest.raises(ConfigError):
        E.EMA(m, 1.5)


def test_clipping_touches_only_the_named_module():
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))
    for p in net.parameters():
        p.grad = torch.full_like(p, 10.0)
    before = [p.grad.clone() for p in net[1].parameters()]
    E.GradClipper(net, None, {"0": 0.5})()
    norm0 = torch.sqrt(sum((p.grad ** 2).sum() for p in net[0].parameters()))
    assert norm0 == pytest.approx(0.5, rel=1e-4)
    for b, p in zip(before, net[1].parameters()):
        assert torch.equal(b, p.grad)
    with pytest.raises(ConfigError, match="no module named 'rnn'"):
        E.GradClipper(net, None, {"rnn": 1.0})


def test_step_sampler_is_a_function_of_the_step():
    full = list(E.StepSampler(0, 6, 4))
    assert full == list(range(24))
    assert list(E.StepSampler(3, 6, 4)) == full[12:]
    r0, r1 = list(E.StepSampler(0, 2, 4, 0, 2)), list(E.StepSampler(0, 2, 4, 1, 2))
    assert sorted(r0 + r1) == full[:8]
    with pytest.raises(ConfigError):
        E.StepSampler(0, 1, 3, 0, 2)


def test_training_reduces_loss_on_fixed_pairs(tmp_path):
    cfg = _cfg(tmp_path, steps=60, optim={"lr": 3e-3, "schedule": "constant"}, checkpoint_every=1000)

    class Fixed(PairSet):
        def __getitem__(self, i):
            return super().__getitem__(i % 4)

    res = E.train(cfg, dataset=Fixed(), progress=False)
    assert np.mean(res.losses[-10:]) < 0.85 * np.mean(res.losses[:5])


def test_resume_after_kill_gives_the_same_loss_curve(tmp_path):
    torch.set_num_threads(1)
    a = _cfg(tmp_path / "a", ema=0.9)
    full = E.train(a, dataset=PairSet(), progress=False)
    b = _cfg(tmp_path / "b", ema=0.9)

    class Killed(Exception):
        pass

    class DiesAtStep7(PairSet):  # the process is killed while fetching step 7's data
        def __getitem__(self, i):
            if i >= 6 * 4:
                raise Killed()
            return super().__getitem__(i)

    with pytest.raises(Killed):
        E.train(b, dataset=DiesAtStep7(), progress=False)  # checkpoint at 4, rows logged up to 6
    assert len(E.read_log(b.run_dir() / "log.csv")) == 6
    with pytest.raises(DeblurkitError, match="already holds checkpoints"):
        E.train(b, dataset=PairSet(), progress=False)
    second = E.train(b, dataset=PairSet(), resume=True, progress=False)
    assert full.losses[4:] == second.losses  # exact, not approximate
    log = E.read_log(b.run_dir() / "log.csv")
    assert [r["step"] for r in log] == list(range(1, 9))
    assert [r["loss"] for r in log] == [r["loss"] for r in E.read_log(a.run_dir() / "log.csv")]
    from safetensors.torch import load_file

    ka = load_file(str(E.Checkpointer(a.run_dir()).latest() / "ema.safetensors"))
    kb = load_file(str(E.Checkpointer(b.run_dir()).latest() / "ema.safetensors"))
    assert all(torch.equal(ka[k], kb[k]) for k in ka)


def test_resume_without_checkpoint_is_refused(tmp_path):
    with pytest.raises(DeblurkitError, match="no checkpoint"):
        E.train(_cfg(tmp_path), dataset=PairSet(), resume=True, progress=False)


def test_checkpoint_state_loads_with_weights_only(tmp_path):
    cfg = _cfg(tmp_path, steps=4)
    E.train(cfg, dataset=PairSet(), progress=False)
    d = E.Checkpointer(cfg.run_dir()).latest()
    state = torch.load(d / "state.pt", weights_only=True)
    assert state["step"] == 4 and "optimizer" in state


def test_validation_logs_gain(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for sub in ("blur", "sharp"):
        (tmp_path / "val" / sub).mkdir(parents=True)
    for i in range(2):
        s = (rng.random((24, 24, 3)) * 255).astype(np.uint8)
        Image.fromarray(s).save(tmp_path / "val" / "sharp" / f"{i}.png")
        Image.fromarray(s[::-1].copy()).save(tmp_path / "val" / "blur" / f"{i}.png")
    cfg = _cfg(tmp_path, steps=4, val={"dir": str(tmp_path / "val"), "every": 2})
    res = E.train(cfg, dataset=PairSet(), progress=False)
    assert set(res.val) == {"val_psnr", "val_ssim", "val_gain"}
    rows = [r for r in E.read_log(cfg.run_dir() / "log.csv") if "val_psnr" in r]
    assert [r["step"] for r in rows] == [2, 4]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, out, cfgd):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank))
    torch.set_num_threads(1)
    cfg = config_from_dict(cfgd, source="<ddp>")
    res = E.train(cfg, dataset=PairSet(), progress=False)
    if rank == 0:
        torch.save({"losses": torch.tensor(res.losses)}, out)
    torch.distributed.destroy_process_group()


def test_ddp_two_processes_match_single_process(tmp_path):
    """Two gloo ranks, each on half of every batch, give the single-process weights (same updates)."""
    cfgd = {"name": "ddp", "model": TINY, "data": {"batch_size": 4, "crop": 16}, "steps": 3,
            "optim": {"lr": 1e-3}, "tensorboard": False, "loss": [{"name": "l1"}], "checkpoint_every": 3,
            "out_dir": str(tmp_path / "ddp")}
    torch.multiprocessing.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path / "o.pt"), cfgd), nprocs=2)
    single = E.train(config_from_dict({**cfgd, "out_dir": str(tmp_path / "one")}), dataset=PairSet(), progress=False)
    from safetensors.torch import load_file

    wd = load_file(str(E.Checkpointer(tmp_path / "ddp").latest() / "model.safetensors"))
    ws = load_file(str(E.Checkpointer(tmp_path / "one").latest() / "model.safetensors"))
    assert max(float((wd[k] - ws[k]).abs().max()) for k in ws) < 1e-5
    assert single.step == 3


def test_checkpoint_weights_run_through_deblur(tmp_path):
    """Checkpoint files record arch and options, so the inference API loads them without --arch."""
    cfg = _cfg(tmp_path, steps=2, checkpoint_every=2)
    E.train(cfg, dataset=PairSet(), progress=False)
    from deblurkit.infer.api import load_model

    f = E.Checkpointer(cfg.run_dir()).latest() / "model.safetensors"
    model = load_model(f)
    x = torch.rand(1, 3, 20, 24)
    assert model(x).shape == x.shape



def _weights_at(cfg, step: int):
    from safetensors.torch import load_file

    return load_file(str(cfg.run_dir() / "checkpoints" / f"step_{step:07d}" / "model.safetensors"))


def test_channels_last_and_bf16_training_against_plain_fp32(tmp_path):
    """channels_last changes only the memory layout: the same run up to float rounding. amp bf16
    really runs the forward pass in bf16 (its losses differ from fp32's) yet trains the same way:
    after 8 steps its weights are closer to the fp32 run's than 4 steps of training move them."""
    torch.set_num_threads(1)
    cfgs = {name: _cfg(tmp_path / name, **over)
            for name, over in {"fp32": {}, "cl": {"channels_last": True}, "bf16": {"amp": "bf16"}}.items()}
    res = {name: E.train(cfg, dataset=PairSet(), progress=False) for name, cfg in cfgs.items()}
    w = {name: _weights_at(cfg, 8) for name, cfg in cfgs.items()}
    assert np.allclose(res["cl"].losses, res["fp32"].losses, rtol=1e-5, atol=1e-6)
    assert all(torch.allclose(w["cl"][k], w["fp32"][k], atol=1e-5) for k in w["fp32"])
    diff = np.abs(np.array(res["bf16"].losses) - np.array(res["fp32"].losses))
    assert diff.max() > 1e-6, "amp: bf16 gave the fp32 losses bit for bit: autocast did not engage"
    assert diff.max() < 0.05 * max(res["fp32"].losses)
    w4 = _weights_at(cfgs["fp32"], 4)
    moved = sum(float((w["fp32"][k] - w4[k]).abs().sum()) for k in w4)
    gap = sum(float((w["bf16"][k] - w["fp32"][k]).abs().sum()) for k in w4)
    assert 0 < gap < moved


def _tiny_weights(path, seed):
    from safetensors.torch import save_file

    from deblurkit.models import create

    torch.manual_seed(seed)
    m = create(TINY["name"], **TINY["options"])
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(path))
    return m


def test_distillation_adds_the_teacher_term(tmp_path):
    """First-step loss: loss(student, sharp) + w * loss(student, teacher(blur)), by hand; a teacher
    equal to the student's start adds nothing; the teacher never changes."""
    from deblurkit.models import create
    from deblurkit.models.weights import load_weights

    torch.set_num_threads(1)
    start = _tiny_weights(tmp_path / "start.safetensors", 1)
    teacher = _tiny_weights(tmp_path / "teacher.safetensors", 2).eval()
    model = {**TINY, "init": str(tmp_path / "start.safetensors")}
    plain = E.train(_cfg(tmp_path / "plain", model=model, steps=2), dataset=PairSet(), progress=False)
    same = E.train(_cfg(tmp_path / "same", model=model, steps=2, distill={
        "teacher": {**TINY, "init": str(tmp_path / "start.safetensors")}, "weight": 3.0}),
        dataset=PairSet(), progress=False)
    assert same.losses[0] == pytest.approx(plain.losses[0], rel=1e-6)
    cfg = _cfg(tmp_path / "kd", model=model, steps=2, distill={
        "teacher": {**TINY, "init": str(tmp_path / "teacher.safetensors")}, "weight": 3.0})
    kd = E.train(cfg, dataset=PairSet(), progress=False)
    batch = [PairSet()[i] for i in range(4)]
    blur = torch.stack([b["blur"] for b in batch])
    sharp = torch.stack([b["sharp"] for b in batch])
    with torch.no_grad():
        out = start(blur)
        ref = (out - sharp).abs().mean() + 3.0 * (out - teacher(blur)).abs().mean()  # loss: l1
    assert kd.losses[0] == pytest.approx(ref.item(), rel=1e-5)
    assert kd.losses[0] > plain.losses[0]
    built = E.build_teacher(cfg, torch.device("cpu"))
    assert not built.training and not any(p.requires_grad for p in built.parameters())
    check = create(TINY["name"], **TINY["options"])
    load_weights(check, tmp_path / "teacher.safetensors")  # the file itself is untouched by training
    assert all(torch.equal(a, b) for a, b in zip(check.state_dict().values(), built.state_dict().values()))


def test_distill_config_is_validated(tmp_path):
    with pytest.raises(ConfigError, match="distill.teacher.init must name"):
        _cfg(tmp_path, distill={"teacher": TINY})
    with pytest.raises(ConfigError, match="distill.weight has an out-of-range value 0"):
        _cfg(tmp_path, distill={"teacher": {**TINY, "init": "t.safetensors"}, "weight": 0})
    with pytest.raises(ConfigError, match="distill and gan cannot be combined"):
        _cfg(tmp_path, distill={"teacher": {**TINY, "init": "t.safetensors"}}, gan={})
    cfg = _cfg(tmp_path, distill={"teacher": {**TINY, "init": "missing.safetensors"}})
    with pytest.raises(ConfigError, match=r"distill.teacher.init: .*missing.safetensors"):
        E.train(cfg, dataset=PairSet(), progress=False)
