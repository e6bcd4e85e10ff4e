"""Training data, checkpoints and the training loop of sun2015 / gong2017 (constructed images;
never ../shared/data)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from deblurkit.errors import ConfigError, DeblurkitError
from deblurkit.estimation import gong2017 as G
from deblurkit.estimation import sun2015 as S
from deblurkit.estimation import train_nonuniform as T
from deblurkit.models.weights import read_metadata


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Five 8-bit photos (scikit-image) and one too small to use."""
    from skimage import data

    root = tmp_path_factory.mktemp("train")
    imgs = [data.camera(), data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    for i, a in enumerate(imgs):
        Image.fromarray(a).save(root / f"img{i}.png")
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(root / "img5_small.png")
    return root


def _spectral_angle(p: np.ndarray) -> float:
    """Blur orientation of a patch: the frequency axis with the least energy (degrees, mod 180,
    counter-clockwise on screen)."""
    p = p - p.mean()
    win = np.outer(np.hanning(p.shape[0]), np.hanning(p.shape[1]))
    f = np.abs(np.fft.fft2(p * win)) ** 2
    fy = np.fft.fftfreq(p.shape[0])[:, None]
    fx = np.fft.fftfreq(p.shape[1])[None, :]
    m = np.array([[(f * fx * fx).sum(), (f * fx * fy).sum()], [(f * fx * fy).sum(), (f * fy * fy).sum()]])
    d = np.linalg.eigh(m)[1][:, 0]
    return math.degrees(math.atan2(-d[1], d[0])) % 180


def test_load_pool_splits_and_skips(folder):
    train = T.load_pool(folder, split="train", holdout=2, min_side=64)
    held = T.load_pool(folder, split="heldout", holdout=2, min_side=64)
    # sorted: img0..img4, img5_small; held out: indices 0, 2, 4; img5_small (index 5) too small
    assert len(held) == 3 and len(train) == 2
    assert all(p.dtype == np.uint8 and p.ndim == 2 for p in train + held)
    assert held[0].shape == (512, 512)                              # camera
    with pytest.raises(ConfigError, match="split"):
        T.load_pool(folder, split="dev")
    with pytest.raises(DeblurkitError, match="not a folder"):
        T.load_pool(folder / "missing")


def test_sun_batch_patches_show_their_class_orientation():
    rng = np.random.default_rng(0)
    pool = [(rng.random((200, 200)) * 255).astype(np.uint8) for _ in range(2)]
    x, y = T.sun_batch(pool, np.random.default_rng(1), 48, jitter=False, noise=0.0)
    assert x.shape == (48, 1, 30, 30) and y.shape == (48,) and y.dtype == torch.int64
    assert int(y.min()) >= 0 and int(y.max()) < 73
    checked = 0
    for patch, label in zip(x[:, 0].numpy(), y.tolist()):
        length, o = S.BASE_KERNELS[label]
        if length >= 15:
            diff = abs((_spectral_angle(patch) - o + 90) % 180 - 90)
            assert diff < 12, (length, o, _spectral_angle(patch))
            checked += 1
    assert checked >= 5
    # rotated samples too (the patch is read rotated by -theta: the class orientation again)
    x, y = T.sun_batch(pool, np.random.default_rng(2), 48, rotate=1.0, jitter=False, noise=0.0)
    diffs = [abs((_spectral_angle(p) - S.BASE_KERNELS[c][1] + 90) % 180 - 90)
             for p, c in zip(x[:, 0].numpy(), y.tolist()) if S.BASE_KERNELS[c][0] >= 15]
    assert diffs and max(diffs) < 12


def test_gong_batch_shapes_and_labels():
    rng = np.random.default_rng(0)
    pool = [(rng.random((120, 130)) * 255).astype(np.uint8)]
    x, iu, iv = T.gong_batch(pool, np.random.default_rng(3), 3, 40, u_max=10, v_max=10)
    assert x.shape == (3, 1, 40, 40) and iu.shape == iv.shape == (3, 40, 40)
    assert int(iu.min()) >= 0 and int(iu.max()) <= 10 and int(iv.min()) >= 0 and int(iv.max()) <= 20
    u, v = G.labels_to_motion(iu.numpy(), iv.numpy(), 10)
    assert not ((u == 0) & (v < 0)).any()                           # canonical (eq. 17)
    assert np.hypot(u, v).max() <= 10 * math.sqrt(2)


def test_optimizer_state_round_trip(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    net(torch.rand(4, 3)).sum().backward()
    opt.step()
    T._save_optimizer(opt, tmp_path / "o.safetensors")
    opt2 = torch.optim.Adam(net.parameters(), lr=0.1)
    T._load_optimizer(opt2, tmp_path / "o.safetensors")
    for k in ("exp_avg", "exp_avg_sq"):
        for i in (0, 1):
            torch.testing.assert_close(opt2.state_dict()["state"][i][k], opt.state_dict()["state"][i][k])


@pytest.mark.parametrize("model", ["sun2015", "gong2017"])
def test_train_checkpoints_resumes_and_exports(folder, tmp_path, model):
    out = tmp_path / "run"
    logs: list[str] = []
    kw = dict(batch=2, crop=32, data=folder, holdout=2, log=logs.append)
    state = T.train(model, out, minutes=0.005, **kw)
    steps = state["steps"]
    assert steps >= 1
    for name in ("checkpoint.safetensors", "optimizer.safetensors", "state.json",
                 f"{model}.safetensors"):
        assert (out / name).is_file()
    meta = read_metadata(out / f"{model}.safetensors")
    assert meta["model"] == model and meta["steps"] == steps and "recipe" in meta
    assert json.loads((out / "state.json").read_text())["sha256"] == state["sha256"]
    export = tmp_path / "w.safetensors"
    state2 = T.train(model, out, minutes=0.005, resume=True, export=export, **kw)
    assert state2["steps"] > steps and export.is_file()
    assert any("resumed" in line for line in logs)
    est = (S.Sun2015Estimator if model == "sun2015" else G.Gong2017Estimator).from_file(
        export, sha256=state2["export_sha256"])
    assert est.network.training is False


def test_train_refuses_bad_arguments(folder, tmp_path):
    with pytest.raises(ConfigError, match="model"):
        T.train("nafnet", tmp_path, data=folder)
    with pytest.raises(ConfigError, match="resume"):
        T.train("sun2015", tmp_path / "empty", resume=True, data=folder, holdout=2)
    with pytest.raises(ConfigError, match="minutes"):
        T.train("sun2015", tmp_path, minutes=0, data=folder)
    assert T.main(["eval", "sun2015"]) == 2


def test_evaluate_heldout_reports_baselines(folder):
    est = G.Gong2017Estimator(G.MotionFlowFCN(widths=[4, 4], convs=1, u_max=12, v_max=12),
                              deconv_iterations=5)
    res = T.evaluate_heldout(est, count=1, size=48, data=folder, holdout=2, max_length=8.0)
    row = res["images"][0]
    for key in ("epe", "epe_zero", "psnr_blurred", "psnr_deblurred", "psnr_true_field"):
        assert math.isfinite(row[key])
    assert row["epe_zero"] > 0
    assert res["mean"]["epe"] == pytest.approx(row["epe"])
