"""Batched device synthesis (deblurkit.data.device_synth) against independent references:
the per-image camera blur, scipy convolution, Pillow's JPEG, and the engine end to end."""

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d

from deblurkit.blur import kernels as K
from deblurkit.blur.camera import blur_camera_trajectory, random_homography_trajectory
from deblurkit.blur.noise import jpeg_compress
from deblurkit.data.device_synth import (
    DeviceSynthesisSet, convolve_kernels, jpeg_simulate, sampling_matrices, soft_ellipse, warp_average,
)
from deblurkit.data.realistic import build_generator
from deblurkit.errors import ConfigError, ImageError


def _photos(tmp_path, n=3, size=(120, 150)):
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        y, x = np.mgrid[0:size[0], 0:size[1]]
        img = np.stack([(x * (i + 1) % 97) / 96, (y * 3 % 53) / 52, 0.5 + 0.4 * np.sin((x + y) / 9.0)], 2)
        img = np.clip(img + rng.normal(0, 0.01, img.shape), 0, 1)
        p = tmp_path / f"p{i}.png"
        Image.fromarray((img * 255).astype(np.uint8)).save(p)
        paths.append(p)
    return paths


def test_warp_average_equals_camera_blur_per_sample():
    rng = np.random.default_rng(1)
    imgs = torch.rand(2, 3, 41, 41)
    homs = [random_homography_trajectory(s, 41, 41, steps=9, max_displacement=e) for s, e in ((3, 5.0), (4, 9.0))]
    mats = [sampling_matrices(h, 41, 1.0) for h in homs]
    p = max(len(m) for m in mats)
    stack = torch.zeros(2, p, 3, 3)
    w = torch.zeros(2, p)
    for i, m in enumerate(mats):
        stack[i, :len(m)] = torch.from_numpy(m)
        stack[i, len(m):] = torch.from_numpy(m[:1])
        w[i, :len(m)] = 1
    got = warp_average(imgs, stack, w, "reflection", chunk=4)
    for i in range(2):
        ref = blur_camera_trajectory(imgs[i:i + 1], homs[i], linear_light=False, boundary="reflection", max_step=1.0)
        assert torch.allclose(got[i:i + 1], ref, atol=2e-5)
    del rng


def test_convolve_kernels_matches_scipy():
    rng = np.random.default_rng(2)
    img = rng.random((2, 3, 30, 33)).astype(np.float32)
    ks = [K.camera_shake_kernel(9, seed=5), np.pad(K.linear_motion_kernel(4, 30, 5), 2)]
    got = convolve_kernels(torch.from_numpy(img), torch.from_numpy(np.stack(ks))).numpy()
    for b in range(2):
        for c in range(3):
            pad = np.pad(img[b, c], 4, mode="reflect")
            ref = convolve2d(pad, ks[b], mode="valid")
            np.testing.assert_allclose(got[b, c], ref, atol=1e-5)


def test_jpeg_simulation_close_to_pillow():
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:64, 0:64] / 64.0
    img = np.stack([np.sin(6 * x) * 0.4 + 0.5, y, 0.5 + 0.3 * np.cos(9 * x * y)], 2)
    img = np.clip(img + rng.normal(0, 0.03, img.shape), 0, 1).astype(np.float32)
    t = torch.from_numpy(img).permute(2, 0, 1)[None]
    for q in (50, 90):
        sim = jpeg_simulate(t, torch.tensor([float(q)]))[0].permute(1, 2, 0).numpy()
        ref = jpeg_compress(img, q)
        mse_sim_ref = float(((sim - ref) ** 2).mean())
        mse_ref_img = float(((ref - img) ** 2).mean())
        # the simulation differs from libjpeg far less than libjpeg differs from the input
        assert mse_sim_ref < 0.25 * mse_ref_img, (q, mse_sim_ref, mse_ref_img)
    # quality orders the loss, and the output is on the 8-bit grid
    lo = jpeg_simulate(t, torch.tensor([20.0]))
    hi = jpeg_simulate(t, torch.tensor([95.0]))
    assert ((lo - t) ** 2).mean() > 1.5 * ((hi - t) ** 2).mean()  # chroma subsampling bounds q95
    assert torch.allclose(hi * 255, (hi * 255).round(), atol=1e-4)
    with pytest.raises(ImageError, match="multiples of 16"):
        jpeg_simulate(torch.rand(1, 3, 20, 32), torch.tensor([80.0]))


def test_soft_ellipse_inside_and_outside():
    m = soft_ellipse(torch.tensor([[20.0, 20.0, 8.0, 12.0, 0.0]]), 41)
    assert m[0, 0, 20, 20] == 1 and m[0, 0, 0, 0] == 0
    assert m[0, 0, 20, 28] == 1 and m[0, 0, 30, 20] == 0  # rx = 12 along x, ry = 8 along y


@pytest.mark.parametrize("kind", ["camera", "shake", "object", "frames", "sharp"])
def test_realised_batches_are_pairs_in_range(tmp_path, kind):
    mix = build_generator({kind: 1.0})
    ds = DeviceSynthesisSet(_photos(tmp_path), crop=32, length=8, mix=mix, seed=1)
    batch = ds.collate([ds[i] for i in range(3)])
    blur, sharp = ds.realise(batch, "cpu")
    assert blur.shape == sharp.shape == (3, 3, 32, 32)
    for t in (blur, sharp):
        assert torch.isfinite(t).all() and t.min() >= 0 and t.max() <= 1
    # the same items give the same recipes (deterministic per seed and index)
    again = ds.collate([ds[i] for i in range(3)])
    assert all(torch.equal(batch[k], again[k]) for k in batch)
    if kind == "sharp":
        assert (blur - sharp).abs().mean() < 0.05
    elif kind in ("camera", "shake"):
        assert (blur - sharp).abs().mean() > 1e-3


def test_sharp_identity_without_noise_is_exact(tmp_path):
    mix = build_generator({"sharp": 1.0}, {"sharp": {"identity_prob": 1.0},
                                           "noise": {"noise_prob": 0.0, "jpeg_prob": 0.0}})
    ds = DeviceSynthesisSet(_photos(tmp_path), crop=32, length=4, mix=mix, seed=0)
    blur, sharp = ds.realise(ds.collate([ds[i] for i in range(4)]), "cpu")
    # only the gamma round trip and 8-bit rounding separate them
    assert (blur - sharp).abs().max() <= 0.5 / 255 + 1e-4


def test_crop_must_be_multiple_of_16(tmp_path):
    with pytest.raises(ConfigError, match="multiple of 16"):
        DeviceSynthesisSet(_photos(tmp_path), crop=40, length=4, mix=build_generator({"shake": 1.0}))


def test_engine_trains_with_device_synthesis_and_time_budget(tmp_path):
    from deblurkit.train.config import config_from_dict
    from deblurkit.train.engine import read_log, train

    (tmp_path / "photos").mkdir()
    _photos(tmp_path / "photos")
    cfg = config_from_dict({
        "name": "t", "model": {"name": "nafnet", "options": {"size": "tiny"}},
        "data": {"train_dir": str(tmp_path / "photos"), "crop": 32, "batch_size": 2, "synthesis": "device",
                 "mix": {"shake": 1.0, "camera": 1.0}},
        "val": {"dir": None}, "steps": 10000, "log_every": 2, "time_budget_minutes": 0.05,
        "out_dir": str(tmp_path / "run"), "tensorboard": False, "device": "cpu",
    })
    res = train(cfg, progress=False)
    assert 2 <= res.step < 10000  # stopped by the clock, long before the step count
    assert (tmp_path / "run").exists() and read_log(tmp_path / "run" / "log.csv")
    with pytest.raises(ConfigError, match="time_budget_minutes"):
        config_from_dict({"name": "t", "time_budget_minutes": 0})



def test_soft_sharp_pairs_on_the_device_match_scipy(tmp_path):
    """soft_prob 1, identity 1, no noise: input == target == the photo window softened by a
    Gaussian in linear light (scipy's gaussian_filter on the same window, interior compared)."""
    from scipy.ndimage import gaussian_filter

    from deblurkit.data.device_synth import GAMMA

    opts = {"sharp": {"identity_prob": 1.0, "soft_prob": 1.0, "soft_sigma": [1.0, 1.0]},
            "noise": {"noise_prob": 0.0, "jpeg_prob": 0.0}}
    ds = DeviceSynthesisSet(_photos(tmp_path), crop=32, length=4, mix=build_generator({"sharp": 1.0}, opts), seed=0)
    batch = ds.collate([ds[i] for i in range(2)])
    assert batch["soft"].shape[-1] == 7  # sigma 1: a 7-tap Gaussian
    blur, sharp = ds.realise(batch, "cpu")
    assert (blur - sharp).abs().max() <= 0.5 / 255 + 1e-4
    plain = dict(batch, soft=torch.ones(2, 1, 1))
    _, window = ds.realise(plain, "cpu")  # the same windows, not softened
    for b in range(2):
        lin = window[b].double().numpy() ** GAMMA
        ref = np.stack([gaussian_filter(c, 1.0, mode="reflect", truncate=3.0) for c in lin]) ** (1 / GAMMA)
        np.testing.assert_allclose(sharp[b, :, 4:-4, 4:-4].numpy(), ref[:, 4:-4, 4:-4], atol=2e-3)
    assert (sharp - window).abs().mean() > 2e-3
