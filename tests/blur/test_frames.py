"""GoPro-style frame averaging (survey §III-C)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deblurkit.blur.camera import blur_camera_trajectory
from deblurkit.blur.frames import average_frames, interpolate_frames
from deblurkit.errors import DeblurkitError


def _clip(n: int = 5, h: int = 6, w: int = 7, c: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, h, w, c)).astype(np.float32)


def test_hand_computed_linear_light_average() -> None:
    # g = x ** 2.2: frames 0, 0.5 ** (1/2.2), 1 average to g^-1((0 + 0.5 + 1) / 3) = 0.5 ** (1/2.2),
    # the value two frames 0 and 1 would give: ((0 + 1) / 2) ** (1 / 2.2)
    frames = np.stack([np.zeros((2, 3, 1)), np.full((2, 3, 1), 0.5 ** (1 / 2.2)),
                       np.ones((2, 3, 1))]).astype(np.float32)
    blurred, sharp = average_frames(frames)
    assert blurred.shape == sharp.shape == (2, 3, 1)
    assert blurred.dtype == sharp.dtype == np.float32
    np.testing.assert_allclose(blurred, ((0 + 1) / 2) ** (1 / 2.2), rtol=1e-6)
    np.testing.assert_array_equal(sharp, frames[1])
    # frames 0, 1, 1 -> (2/3) ** (1/2.2); plain average 2/3
    frames = np.stack([np.zeros((2, 2, 3)), np.ones((2, 2, 3)), np.ones((2, 2, 3))])
    np.testing.assert_allclose(average_frames(frames.astype(np.float32))[0], (2 / 3) ** (1 / 2.2),
                               rtol=1e-6)
    np.testing.assert_allclose(average_frames(frames, gamma=None)[0], 2 / 3, rtol=1e-6)


def test_linear_light_differs_from_plain_average_on_high_contrast() -> None:
    frames = np.zeros((7, 4, 8, 1), np.float32)
    for i in range(7):                     # a white bar moving one pixel per frame
        frames[i, :, i] = 1.0
    lin, sharp = average_frames(frames)
    plain, _ = average_frames(frames, gamma=None)
    np.testing.assert_allclose(plain, frames.mean(axis=0), atol=1e-7)
    np.testing.assert_array_equal(sharp, frames[3])
    np.testing.assert_allclose(lin[:, :7], (1 / 7) ** (1 / 2.2), rtol=1e-6)
    assert (lin[:, :7] > plain[:, :7] + 0.25).all()     # 0.41 against 0.14
    np.testing.assert_array_equal(lin[:, 7], 0.0)


def test_frame_average_of_a_translating_scene_is_camera_blur() -> None:
    """Frames of a scene translated by d_k average to the camera blur of the middle frame along
    the path d_k (two modules, one model), away from the wrapped border."""
    rng = np.random.default_rng(1)
    scene = rng.random((20, 24, 1)).astype(np.float32)
    path = [(-3, 0), (-2, 1), (-1, 1), (0, 0), (1, 0), (2, -1), (3, -1)]
    frames = np.stack([np.roll(scene, (dy, dx), axis=(0, 1)) for dx, dy in path])
    blurred, sharp = average_frames(frames, gamma=2.2)
    traj = np.array([[dx, dy, 0.0] for dx, dy in path])
    ref = blur_camera_trajectory(sharp, traj, gamma=2.2, max_step=None)
    np.testing.assert_allclose(blurred[4:-4, 4:-4], ref[4:-4, 4:-4], atol=2e-6)


def test_crf_pair_replaces_the_gamma_curve() -> None:
    frames = _clip()
    cube = (lambda x: x**3, lambda x: x ** (1 / 3))
    np.testing.assert_allclose(average_frames(frames, crf=cube)[0],
                               average_frames(frames, gamma=3.0)[0], rtol=1e-6)

    def srgb_to_linear(x):
        return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)

    def linear_to_srgb(x):
        return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)

    frames = np.stack([np.zeros((1, 1, 1)), np.ones((1, 1, 1)), np.zeros((1, 1, 1))])
    blurred, _ = average_frames(frames.astype(np.float32), crf=(srgb_to_linear, linear_to_srgb))
    assert blurred[0, 0, 0] == pytest.approx(1.055 * (1 / 3) ** (1 / 2.4) - 0.055, rel=1e-6)


def test_torch_layouts_match_numpy() -> None:
    frames = _clip(n=5)
    blurred, sharp = average_frames(frames)
    clip = torch.from_numpy(frames).permute(0, 3, 1, 2)                      # (N, C, H, W)
    tb, ts = average_frames(clip)
    assert tb.shape == ts.shape == (1, 3, 6, 7) and tb.dtype == torch.float32
    np.testing.assert_allclose(tb[0].permute(1, 2, 0).numpy(), blurred, atol=2e-6)
    np.testing.assert_array_equal(ts[0].permute(1, 2, 0).numpy(), sharp)
    batch = torch.stack([clip, clip.flip(-1)]).double()                       # (B, N, C, H, W)
    bb, bs = average_frames(batch, gamma=None)
    assert bb.shape == (2, 3, 6, 7) and bb.dtype == torch.float64
    torch.testing.assert_close(bb, batch.mean(dim=1))
    torch.testing.assert_close(bs, batch[:, 2])


def test_interpolate_frames() -> None:
    frames = _clip(n=3)
    out = interpolate_frames(frames, 4)
    assert out.shape == (9, 6, 7, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out[0], frames[0])
    np.testing.assert_array_equal(out[4], frames[1])                          # middle kept
    np.testing.assert_array_equal(out[8], frames[2])
    np.testing.assert_allclose(out[1], 0.75 * frames[0] + 0.25 * frames[1], atol=1e-7)
    np.testing.assert_allclose(out[6], 0.5 * frames[1] + 0.5 * frames[2], atol=1e-7)
    np.testing.assert_array_equal(interpolate_frames(frames, 1), frames)
    blurred, sharp = average_frames(out)
    np.testing.assert_array_equal(sharp, frames[1])
    clip = torch.from_numpy(frames).permute(0, 3, 1, 2)
    tout = interpolate_frames(clip, 4)
    assert tout.shape == (9, 3, 6, 7)
    np.testing.assert_allclose(tout.permute(0, 2, 3, 1).numpy(), out, atol=1e-7)
    assert interpolate_frames(clip[None].repeat(2, 1, 1, 1, 1), 2).shape == (2, 5, 3, 6, 7)


def test_bad_inputs_are_refused() -> None:
    def raises(match: str):
        return pytest.raises(DeblurkitError, match=match)

    with raises(r"^frames: N=4 frames; need an odd number"):
        average_frames(_clip(n=4))
    with raises(r"^frames: N=2 frames"):
        average_frames(torch.zeros(2, 3, 4, 4))
    bad = _clip()
    bad[2, 1, 1, 0] = np.nan
    with raises(r"^frames: has 1 non-finite"):
        average_frames(bad)
    with raises(r"^frames: values must be in \[0, 1\].*max 2"):
        average_frames(_clip() * 2 + 0.01)
    with raises(r"^frames: expected a numpy array \(N, H, W, C\), got shape \(5, 6, 7\)"):
        average_frames(_clip()[..., 0])
    with raises(r"^frames: expected float frames"):
        average_frames((_clip() * 255).astype(np.uint8))
    with raises(r"^frames: expected a tensor \(N, C, H, W\)"):
        average_frames(torch.zeros(3, 4, 4))
    with raises(r"^frames: expected a numpy array"):
        average_frames([[0.0]])
    with raises(r"^gamma=-1"):
        average_frames(_clip(), gamma=-1)
    with raises(r"^crf="):
        average_frames(_clip(), crf=(np.sqrt,))
    with raises(r"^factor=0"):
        interpolate_frames(_clip(), 0)
