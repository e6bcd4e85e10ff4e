"""Camera-trajectory blur (in-plane rigid and homography trajectories)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from deblurkit.blur.camera import (
    blur_camera_trajectory, intrinsics, random_camera_trajectory, random_homography_trajectory,
    trajectory_displacement,
)
from deblurkit.errors import DeblurkitError


@pytest.fixture(scope="module")
def texture() -> np.ndarray:
    """48x64 float64 texture in [0, 1]: smoothed noise (detail at every place of the image)."""
    rng = np.random.default_rng(0)
    t = ndi.gaussian_filter(rng.random((48, 64)), 1.0)
    return (t - t.min()) / (t.max() - t.min())


def _t(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img)[None, None]


def _translations(path: list[tuple[float, float]]) -> np.ndarray:
    return np.array([[x, y, 0.0] for x, y in path])


def _kernel_of(path: np.ndarray, size: int = 9) -> np.ndarray:
    """Uniform-blur kernel of a translation path re-centred on its middle pose: mass 1/T at each
    offset (scipy convolve orientation)."""
    d = path[:, :2] - path[len(path) // 2, :2]
    k = np.zeros((size, size))
    c = size // 2
    for dx, dy in d:
        k[c + int(dy), c + int(dx)] += 1.0 / len(path)
    return k


# --- blur_camera_trajectory -----------------------------------------------------------------

def test_identity_trajectory_returns_the_image(texture) -> None:
    img = texture.astype(np.float32)
    for traj in (np.zeros((5, 3)), np.tile(np.eye(3), (4, 1, 1))):
        out = blur_camera_trajectory(img, traj, linear_light=False)
        assert out.dtype == np.float32 and out.shape == img.shape
        # every pose reads the pixel itself; the mean of T equal values is exact up to rounding
        np.testing.assert_allclose(out, img, rtol=2e-7, atol=0)
        out = blur_camera_trajectory(img[..., None], traj)          # H x W x 1, linear light
        np.testing.assert_allclose(out[..., 0], img, rtol=0, atol=1e-6)
    t = torch.from_numpy(np.stack([img, img[::-1]]).astype(np.float64))[:, None]
    out = blur_camera_trajectory(t, np.zeros((3, 3)), linear_light=False)
    torch.testing.assert_close(out, t, rtol=1e-15, atol=0)


@pytest.mark.parametrize("as_homographies", [False, True])
def test_translation_path_is_uniform_blur_by_the_path_kernel(texture, as_homographies) -> None:
    """An L-shaped (asymmetric) path: convolution with the path drawn as a kernel, whole image
    (reflection boundary = scipy 'mirror')."""
    path = _translations([(0, 0), (1, 0), (2, 0), (2, 1), (2, 2), (2, 3), (3, 3)])
    traj = path
    if as_homographies:
        traj = np.tile(np.eye(3), (len(path), 1, 1))
        traj[:, :2, 2] = path[:, :2]
    out = blur_camera_trajectory(_t(texture), traj, linear_light=False)[0, 0].numpy()
    ref = ndi.convolve(texture, _kernel_of(path), mode="mirror")
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12)
    # linear light: the same kernel applied to I ** gamma
    out = blur_camera_trajectory(_t(texture), traj, gamma=2.2)[0, 0].numpy()
    ref = ndi.convolve(texture**2.2, _kernel_of(path), mode="mirror") ** (1 / 2.2)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12)


def test_translation_matches_uniform_blur_module(texture) -> None:
    """Against deblurkit.blur.convolve.blur with the path kernel (interior) when present."""
    convolve_mod = pytest.importorskip("deblurkit.blur.convolve")
    path = _translations([(0, 0), (1, 1), (2, 2), (3, 2), (4, 2)])
    img = torch.from_numpy(texture.astype(np.float32))[None, None]
    # diagonal steps move sqrt(2) px: max_step=None keeps exactly these 5 poses
    out = blur_camera_trajectory(img, path, linear_light=False, max_step=None)
    ref = convolve_mod.blur(img, torch.from_numpy(_kernel_of(path).astype(np.float32)),
                            boundary="replicate")
    torch.testing.assert_close(out[..., 5:-5, 5:-5], ref[..., 5:-5, 5:-5], rtol=0, atol=1e-5)


def test_poses_are_densified_uniformly_in_time(texture) -> None:
    """Two poses 4 px apart: re-centred on pose 1, densified to offsets -4..0 (a streak), or
    averaged as two ghost copies with max_step=None."""
    traj = _translations([(0, 0), (4, 0)])
    out = blur_camera_trajectory(_t(texture), traj, linear_light=False)[0, 0].numpy()
    ref = np.mean([np.roll(texture, -k, axis=1) for k in range(5)], axis=0)
    np.testing.assert_allclose(out[:, :-5], ref[:, :-5], rtol=0, atol=1e-12)
    ghost = blur_camera_trajectory(_t(texture), traj, linear_light=False, max_step=None)
    ref = (texture + np.roll(texture, -4, axis=1)) / 2
    np.testing.assert_allclose(ghost[0, 0].numpy()[:, :-5], ref[:, :-5], rtol=0, atol=1e-12)
    # max_step 2 px: offsets -4, -2, 0
    out = blur_camera_trajectory(_t(texture), traj, linear_light=False, max_step=2.0)[0, 0].numpy()
    ref = np.mean([np.roll(texture, -k, axis=1) for k in (0, 2, 4)], axis=0)
    np.testing.assert_allclose(out[:, :-5], ref[:, :-5], rtol=0, atol=1e-12)


def test_trajectory_is_recentred_on_its_middle_pose(texture) -> None:
    path = _translations([(5, -2), (6, -2), (7, -2)])
    shifted = path - path[1]
    a = blur_camera_trajectory(_t(texture), path, linear_light=False)
    b = blur_camera_trajectory(_t(texture), shifted, linear_light=False)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    # rigid path with rotation: same result as the homographies H_t H_mid^-1 built by hand
    rng = np.random.default_rng(3)
    traj = np.cumsum(rng.normal(0, [0.5, 0.5, 0.004], size=(7, 3)), axis=0) + [3.0, -1.0, 0.05]
    h, w = texture.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2

    def hom(tx, ty, th):
        c, s = math.cos(th), math.sin(th)
        back = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1.0]])
        rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
        there = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1.0]])
        move = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1.0]])
        return move @ back @ rot @ there

    homs = np.stack([hom(*p) for p in traj])
    homs = homs @ np.linalg.inv(homs[3])
    a = blur_camera_trajectory(_t(texture), traj, linear_light=False, max_step=None)
    b = blur_camera_trajectory(_t(texture), homs, linear_light=False, max_step=None)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-9)


def test_rotation_keeps_the_centre_sharp_and_blurs_the_edges(texture) -> None:
    h, w = 49, 65                                  # odd: the rotation centre is a pixel
    img = np.pad(texture, ((0, 1), (0, 1)), mode="reflect")
    traj = np.zeros((9, 3))
    traj[:, 2] = np.linspace(-0.04, 0.04, 9)
    out = blur_camera_trajectory(_t(img), traj, linear_light=False)[0, 0].numpy()
    err = np.abs(out - img)
    cy, cx = (h - 1) // 2, (w - 1) // 2
    assert err[cy, cx] < 1e-9
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - cy, xx - cx)
    near, far = err[r < 4].mean(), err[r > 22].mean()
    assert far > 5 * near
    # about another centre: that pixel is the sharp one
    out = blur_camera_trajectory(_t(img), traj, linear_light=False, center=(10, 12))[0, 0].numpy()
    err = np.abs(out - img)
    assert err[12, 10] < 1e-9 and err[cy, cx] > 10 * err[12, 10] + 1e-6


def test_linear_light_brightens_a_black_white_edge() -> None:
    img = np.zeros((8, 16), np.float32)
    img[:, 8:] = 1.0
    traj = _translations([(-1, 0), (0, 0), (1, 0)])
    lin = blur_camera_trajectory(img, traj)
    plain = blur_camera_trajectory(img, traj, linear_light=False)
    np.testing.assert_allclose(plain[:, 7], 1 / 3, atol=1e-6)
    np.testing.assert_allclose(lin[:, 7], (1 / 3) ** (1 / 2.2), atol=1e-6)   # hand computed
    np.testing.assert_allclose(lin[:, 8], (2 / 3) ** (1 / 2.2), atol=1e-6)
    assert (lin[:, 7:9] > plain[:, 7:9] + 0.1).all()
    np.testing.assert_allclose(lin[:, :6], 0.0, atol=1e-7)
    np.testing.assert_allclose(lin[:, 10:], 1.0, atol=1e-6)


def test_random_homography_trajectory_blur_runs_on_torch_batch(texture) -> None:
    h, w = texture.shape
    homs = random_homography_trajectory(5, w, h, steps=16, max_displacement=4.0)
    img = torch.from_numpy(np.stack([texture, 1 - texture])).float()[:, None].repeat(1, 3, 1, 1)
    out = blur_camera_trajectory(img, torch.from_numpy(homs))
    assert out.shape == img.shape and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1 + 1e-6
    assert float((out - img).abs().mean()) > 0.01


# --- random trajectories --------------------------------------------------------------------

def test_random_camera_trajectory() -> None:
    a = random_camera_trajectory(7, steps=33, max_translation=6.0, max_rotation_deg=0.8)
    b = random_camera_trajectory(7, steps=33, max_translation=6.0, max_rotation_deg=0.8)
    c = random_camera_trajectory(8, steps=33, max_translation=6.0, max_rotation_deg=0.8)
    assert a.shape == (33, 3) and a.dtype == np.float64
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(a[16], 0.0)
    assert np.hypot(a[:, 0], a[:, 1]).max() == pytest.approx(6.0)
    assert np.abs(a[:, 2]).max() == pytest.approx(math.radians(0.8))
    # smooth: consecutive poses are much closer than the extent of the path
    assert np.hypot(*np.diff(a[:, :2], axis=0).T).max() < 0.5 * 6.0
    still = random_camera_trajectory(7, steps=10, max_translation=0, max_rotation_deg=0)
    assert not still.any()
    assert random_camera_trajectory(1, steps=1).shape == (1, 3)


def test_random_homography_trajectory_structure() -> None:
    w, h = 80, 60
    homs = random_homography_trajectory(2, w, h, steps=21)
    assert homs.shape == (21, 3, 3)
    np.testing.assert_array_equal(homs, random_homography_trajectory(2, w, h, steps=21))
    np.testing.assert_allclose(homs[10], np.eye(3), atol=1e-12)
    np.testing.assert_allclose(homs[:, 2, 2], 1.0)
    assert np.abs(homs[:, 2, :2]).max() > 0                 # out-of-plane tilt: perspective
    # tilt + roll only: H = K R K^-1 with R a rotation matrix
    k = intrinsics(w, h, 100.0)
    rot = random_homography_trajectory(3, w, h, focal=100.0, steps=9, max_translation=0,
                                       max_zoom=0, max_tilt_deg=1.0, max_roll_deg=1.0)
    r = np.linalg.inv(k) @ rot @ k
    r = r / np.cbrt(np.linalg.det(r))[:, None, None]
    np.testing.assert_allclose(r @ np.transpose(r, (0, 2, 1)), np.tile(np.eye(3), (9, 1, 1)),
                               atol=1e-9)
    # roll only: the principal point does not move
    roll = random_homography_trajectory(4, w, h, steps=9, max_translation=0, max_zoom=0,
                                        max_tilt_deg=0)
    centre = np.array([(w - 1) / 2, (h - 1) / 2, 1.0])
    moved = roll @ centre
    np.testing.assert_allclose(moved[:, :2] / moved[:, 2:], np.tile(centre[:2], (9, 1)), atol=1e-9)
    # the requested extent of the blur is reached
    for target in (0.5, 12.0):
        homs = random_homography_trajectory(5, w, h, max_displacement=target)
        assert trajectory_displacement(homs, w, h) == pytest.approx(target, rel=0.01)


# --- bad inputs -----------------------------------------------------------------------------

def test_bad_inputs_are_refused(texture) -> None:
    img = texture.astype(np.float32)

    def raises(match: str):
        return pytest.raises(DeblurkitError, match=match)

    with raises(r"^trajectory: expected shape \(T, 3\) or \(T, 3, 3\).*got \(4, 2\)"):
        blur_camera_trajectory(img, np.zeros((4, 2)))
    with raises(r"^trajectory: has 1 non-finite"):
        blur_camera_trajectory(img, np.array([[0, 0, 0], [np.nan, 0, 0.0]]))
    with raises(r"^trajectory: homography 1 is singular"):
        blur_camera_trajectory(img, np.stack([np.eye(3), np.zeros((3, 3))]))
    with raises(r"^trajectory: expected an array"):
        blur_camera_trajectory(img, [[0, 0, 0]])
    nan_img = img.copy()
    nan_img[1, 1] = np.nan
    with raises(r"^image: has 1 non-finite"):
        blur_camera_trajectory(nan_img, np.zeros((3, 3)))
    with raises(r"^image: has negative values \(min -0.5\)"):
        blur_camera_trajectory(img - 0.5, np.zeros((3, 3)))
    with raises(r"^image: expected shape \(B, C, H, W\)"):
        blur_camera_trajectory(torch.zeros(4, 4), np.zeros((3, 3)))
    with raises(r"^gamma=0"):
        blur_camera_trajectory(img, np.zeros((3, 3)), gamma=0)
    with raises(r"^boundary='circular'"):
        blur_camera_trajectory(img, np.zeros((3, 3)), boundary="circular")
    with raises(r"^center=\(1, 2, 3\)"):
        blur_camera_trajectory(img, np.zeros((3, 3)), center=(1, 2, 3))
    with raises(r"^max_step=0"):
        blur_camera_trajectory(img, np.zeros((3, 3)), max_step=0)
    with raises(r"^steps=0"):
        random_camera_trajectory(0, steps=0)
    with raises(r"^max_translation=-1"):
        random_camera_trajectory(0, max_translation=-1)
    with raises(r"^inertia=1.0"):
        random_camera_trajectory(0, inertia=1.0)
    with raises(r"^focal=0"):
        random_homography_trajectory(0, 10, 10, focal=0)
    with raises(r"^max_displacement=3.0: cannot be reached"):
        random_homography_trajectory(0, 10, 10, max_translation=0, max_tilt_deg=0,
                                     max_roll_deg=0, max_zoom=0, max_displacement=3.0)
