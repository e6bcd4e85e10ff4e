"""Kernel generators: true kernels, geometry against closed forms and scipy, seeds, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from deblurkit.blur.kernels import (
    camera_shake_kernel,
    disk_kernel,
    gaussian_kernel,
    gp_trajectory_kernel,
    kernel_to_image,
    linear_motion_kernel,
    validate_kernel,
    validate_kernel_tensor,
)
from deblurkit.errors import DeblurkitError, KernelError


def moments(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centroid offset from (kh//2, kw//2) as (x, y) and the 2x2 covariance in (x, y)."""
    k = k.astype(np.float64)
    ys, xs = np.mgrid[: k.shape[0], : k.shape[1]]
    xs = xs - k.shape[1] // 2
    ys = ys - k.shape[0] // 2
    mx, my = (k * xs).sum(), (k * ys).sum()
    dx, dy = xs - mx, ys - my
    cov = np.array([[(k * dx * dx).sum(), (k * dx * dy).sum()],
                    [(k * dx * dy).sum(), (k * dy * dy).sum()]])
    return np.array([mx, my]), cov


def principal(cov: np.ndarray) -> tuple[float, float, float]:
    """(major variance, minor variance, angle of the major axis in degrees, CCW on screen)."""
    w, v = np.linalg.eigh(cov)
    d = v[:, 1]
    return w[1], w[0], math.degrees(math.atan2(-d[1], d[0])) % 180.0


GENERATORS = {
    "motion": lambda: linear_motion_kernel(9.3, 30.0),
    "motion_even": lambda: linear_motion_kernel(6.0, 120.0, size=10),
    "shake": lambda: camera_shake_kernel(21, 0),
    "shake_even": lambda: camera_shake_kernel(16, 1, exposure=1.0),
    "gp": lambda: gp_trajectory_kernel(21, 0),
    "gp_even": lambda: gp_trajectory_kernel(12, 2, fill=1.0),
    "gaussian": lambda: gaussian_kernel(1.7),
    "disk": lambda: disk_kernel(3.6),
}


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_every_generator_makes_a_true_centred_kernel(name):
    k = GENERATORS[name]()
    assert isinstance(k, np.ndarray) and k.dtype == np.float32
    assert k.ndim == 2 and k.shape[0] == k.shape[1]
    assert k.min() >= 0.0
    assert abs(float(k.sum(dtype=np.float64)) - 1.0) < 1e-5
    assert np.array_equal(validate_kernel(k), k)
    centroid, _ = moments(k)
    np.testing.assert_allclose(centroid, 0.0, atol=1e-4)


# ------------------------------------------------------------------ linear motion


def test_linear_angle_zero_is_one_row_with_round_ends():
    # capsule of length 5: inner cells fully covered, end cells half a cell + half a disk r=0.5
    k = linear_motion_kernel(5, 0)
    assert k.shape == (7, 7)
    end = 0.5 + math.pi / 8
    expected = np.array([0, end, 1, 1, 1, end, 0]) / (3 + 2 * end)
    np.testing.assert_allclose(k[3], expected, atol=2e-3)
    assert np.all(np.delete(k, 3, axis=0) == 0)


def test_linear_orientation_follows_screen_angles():
    k0 = linear_motion_kernel(9, 0)
    k90 = linear_motion_kernel(9, 90)
    np.testing.assert_allclose(k90, k0.T, atol=1e-6)  # vertical streak: along rows
    assert np.count_nonzero(k0.sum(axis=0)) == 9      # angle 0 spreads along x (columns)
    k45 = linear_motion_kernel(9, 45)
    c = 5
    upper_right = k45[:c, c + 1:].sum()  # y is down: 45 deg CCW points to the upper right
    upper_left = k45[:c, :c].sum()
    assert upper_right > 0.3 and upper_left < 1e-6
    np.testing.assert_allclose(k45, np.rot90(k45, 2), atol=1e-6)   # point symmetric
    np.testing.assert_allclose(k45, np.rot90(k45, 2).T, atol=1e-6)  # symmetric about the line
    np.testing.assert_allclose(linear_motion_kernel(9, 45 + 180), k45, atol=1e-7)


@pytest.mark.parametrize("length", [7, 13, 21])  # odd: the ends fall on pixel centres
def test_linear_variance_at_angle_zero_has_the_closed_form(length):
    # L - 2 fully covered cells plus two end cells of weight 1/2 + pi/8 at +-(L - 1)/2
    end = 0.5 + math.pi / 8
    pos = np.arange(length) - (length - 1) / 2
    w = np.ones(length)
    w[[0, -1]] = end
    expected = (w * pos**2).sum() / w.sum()
    _, cov = moments(linear_motion_kernel(length, 0))
    assert abs(cov[0, 0] - expected) < 2e-3 * expected
    assert cov[1, 1] < 1e-12


@pytest.mark.parametrize("length", [7.0, 12.5, 21.0])
@pytest.mark.parametrize("angle", [0.0, 17.0, 45.0, 90.0, 133.0, 160.0])
def test_linear_second_moments_match_length_and_angle(length, angle):
    _, cov = moments(linear_motion_kernel(length, angle))
    major, minor, axis = principal(cov)
    major0 = moments(linear_motion_kernel(length, 0.0))[1][0, 0]
    assert abs(major - major0) < 0.04 * major0        # the same streak whatever its direction
    assert abs(major - length**2 / 12) < 0.1 * length**2 / 12  # a segment of length L: L^2/12
    assert minor < 0.25
    diff = abs(axis - angle) % 180.0
    assert min(diff, 180.0 - diff) < 1.5


def test_linear_short_lengths_are_deltas_and_default_size():
    for length in (0.0, 0.5, 1.0):
        k = linear_motion_kernel(length, 37.0)
        assert k.shape == (3, 3) and k[1, 1] == 1.0 and k.sum() == 1.0
    assert linear_motion_kernel(6.5, 10).shape == (9, 9)    # (ceil(L) + 2) | 1
    assert linear_motion_kernel(8.0, 10).shape == (11, 11)
    assert linear_motion_kernel(3.0, 0, size=4).shape == (4, 4)


def test_linear_refuses_bad_arguments():
    with pytest.raises(KernelError, match="length.*-1"):
        linear_motion_kernel(-1, 0)
    with pytest.raises(KernelError, match="angle.*nan"):
        linear_motion_kernel(5, float("nan"))
    with pytest.raises(KernelError, match="length.*inf"):
        linear_motion_kernel(float("inf"), 0)
    with pytest.raises(KernelError, match="size: 5 is too small.*needs at least 9"):
        linear_motion_kernel(9, 0, size=5)
    with pytest.raises(KernelError, match="size: must be >= 1, got 0"):
        linear_motion_kernel(3, 0, size=0)
    with pytest.raises(KernelError, match="size: must be an integer"):
        linear_motion_kernel(3, 0, size=5.0)


# ------------------------------------------------------------------ gaussian and disk


@pytest.mark.parametrize("sigma", [1.5, 2.0, 3.25])
def test_gaussian_equals_scipy_filtered_delta(sigma):
    k = gaussian_kernel(sigma)
    delta = np.zeros(k.shape)
    delta[k.shape[0] // 2, k.shape[1] // 2] = 1.0
    # scipy's truncate=4 kernel has the same radius as our default size
    ref = ndimage.gaussian_filter(delta, sigma, mode="constant", truncate=4.0)
    np.testing.assert_allclose(k, ref, atol=1e-6)
    _, cov = moments(k)
    np.testing.assert_allclose(np.diag(cov), sigma**2, rtol=0.01)
    assert abs(cov[0, 1]) < 1e-6


def test_gaussian_and_disk_are_radially_symmetric():
    for k in (gaussian_kernel(2.3), disk_kernel(4.3), disk_kernel(2.5)):
        for other in (k[::-1], k[:, ::-1], k.T):
            np.testing.assert_allclose(k, other, atol=1e-7)


@pytest.mark.parametrize("radius", [2.5, 4.3, 7.0])
def test_disk_is_a_uniform_anti_aliased_pillbox(radius):
    k = disk_kernel(radius)
    c = k.shape[0] // 2
    ys, xs = np.mgrid[: k.shape[0], : k.shape[1]] - c
    far = np.hypot(np.abs(xs) + 0.5, np.abs(ys) + 0.5)            # farthest point of the cell
    near = np.hypot(np.maximum(np.abs(xs) - 0.5, 0), np.maximum(np.abs(ys) - 0.5, 0))
    inside, outside = far <= radius, near >= radius
    np.testing.assert_allclose(k[inside], 1.0 / (math.pi * radius**2), rtol=0.02)
    assert np.all(k[outside] == 0)
    edge = ~inside & ~outside
    assert np.all(k[edge] <= k[inside].max() + 1e-7)
    _, cov = moments(k)
    np.testing.assert_allclose(np.diag(cov), radius**2 / 4, rtol=0.03)  # disk: r^2 / 4


def test_gaussian_disk_edge_cases_and_bad_arguments():
    assert gaussian_kernel(0).shape == (1, 1) and disk_kernel(0.4).shape == (1, 1)
    assert disk_kernel(0.0, size=5)[2, 2] == 1.0
    assert gaussian_kernel(1.0, size=4).shape == (4, 4)
    with pytest.raises(KernelError, match="sigma.*-0.5"):
        gaussian_kernel(-0.5)
    with pytest.raises(KernelError, match="radius.*nan"):
        disk_kernel(float("nan"))
    with pytest.raises(KernelError, match="size: 5 is too small for a disk of radius 4"):
        disk_kernel(4, size=5)


# ------------------------------------------------------------------ trajectories


@pytest.mark.parametrize("make", [camera_shake_kernel, gp_trajectory_kernel])
def test_trajectory_kernels_are_reproducible_and_seed_dependent(make):
    a, b = make(19, 7), make(19, 7)
    assert np.array_equal(a, b)
    assert np.array_equal(make(19, np.random.default_rng(7)), a)
    assert not np.allclose(make(19, 8), a)
    kernels = [make(19, s) for s in range(6)]
    assert len({k.tobytes() for k in kernels}) == 6


def test_camera_shake_without_anxiety_is_a_straight_streak():
    k = camera_shake_kernel(25, 3, anxiety=0.0, exposure=1.0)
    _, cov = moments(k)
    major, minor, _ = principal(cov)
    # a straight path of length 25 * 60 / 64 = 23.4 px: L^2/12 = 45.8 along, nothing across
    assert abs(major - (25 * 60 / 64) ** 2 / 12) < 0.1 * 45.8
    assert minor < 0.2


def test_camera_shake_exposure_shortens_the_path():
    full = camera_shake_kernel(31, 4, exposure=1.0, anxiety=1e-3)
    short = camera_shake_kernel(31, 4, exposure=0.25, anxiety=1e-3)
    assert np.trace(moments(short)[1]) < 0.5 * np.trace(moments(full)[1])


def test_camera_shake_is_scaled_down_to_fit():
    k = camera_shake_kernel(9, 5, anxiety=0.0, length=40.0, exposure=1.0)
    assert k.shape == (9, 9)
    # a straight 40 px path does not fit 9 px: it is shrunk until it touches the border
    assert k[:, 0].sum() + k[:, -1].sum() + k[0].sum() + k[-1].sum() > 0


def test_gp_fill_and_length_scale():
    big = gp_trajectory_kernel(25, 11, fill=1.0)
    small = gp_trajectory_kernel(25, 11, fill=0.3)
    border = big[0].sum() + big[-1].sum() + big[:, 0].sum() + big[:, -1].sum()
    assert border > 0                          # fill 1 reaches the border
    assert np.all(small[:6] == 0) and np.all(small[-6:] == 0)
    straight = gp_trajectory_kernel(25, 11, length_scale=10.0, fill=1.0)
    _, minor, _ = principal(moments(straight)[1])
    assert minor < 0.3                         # a very long length scale is a straight line


def test_trajectory_generators_refuse_bad_arguments():
    with pytest.raises(KernelError, match="exposure.*1.5"):
        camera_shake_kernel(15, 0, exposure=1.5)
    with pytest.raises(KernelError, match="exposure.*0"):
        camera_shake_kernel(15, 0, exposure=0)
    with pytest.raises(KernelError, match="seed.*-3"):
        camera_shake_kernel(15, -3)
    with pytest.raises(KernelError, match="size: must be >= 1, got 0"):
        gp_trajectory_kernel(0, 1)
    with pytest.raises(KernelError, match="length_scale.*0"):
        gp_trajectory_kernel(15, 1, length_scale=0.0)
    with pytest.raises(KernelError, match="fill.*nan"):
        gp_trajectory_kernel(15, 1, fill=float("nan"))


# ------------------------------------------------------------------ validation and viewing


def test_validate_kernel_refuses_non_kernels_naming_them():
    good = np.full((3, 3), 1 / 9, dtype=np.float64)
    out = validate_kernel(good, "k.npy")
    assert out.dtype == np.float32 and out is not good
    noisy = good.copy()
    noisy[0, 0], noisy[0, 1] = -5e-8, 2 / 9 + 5e-8
    assert validate_kernel(noisy).min() == 0.0  # float noise below zero is set to 0
    bad_cases = {
        "must be 2-D": np.ones((2, 2, 2)) / 8,
        "is empty": np.zeros((0, 3)),
        "2 non-finite": np.array([[np.nan, 0.5], [np.inf, 0.5]]),
        r"1 negative entries \(min -0.1\)": np.array([[-0.1, 0.6], [0.25, 0.25]]),
        "sums to 0.9, not 1": np.full((3, 3), 0.1),
        "real numbers": np.ones((2, 2), dtype=complex) / 4,
        "numpy array": [[1.0]],
    }
    for message, kernel in bad_cases.items():
        with pytest.raises(KernelError, match=f"^k.npy: .*{message}") as info:
            validate_kernel(kernel, "k.npy")
        assert "\n" not in str(info.value)
        assert isinstance(info.value, DeblurkitError)
    with pytest.raises(KernelError, match="validate_kernel_tensor"):
        validate_kernel(torch.ones(1, 1))


def test_validate_kernel_tensor_checks_each_kernel_of_a_batch():
    ks = torch.stack([torch.from_numpy(disk_kernel(2.0)),
                      torch.from_numpy(gaussian_kernel(0.8, 5))])
    assert validate_kernel_tensor(ks) is ks
    assert validate_kernel_tensor(ks[0]) is not None
    bad = ks.clone()
    bad[1] *= 1.1
    with pytest.raises(KernelError, match=r"kb: sums to 1.1 \(kernel 1 of the batch\)"):
        validate_kernel_tensor(bad, "kb")
    with pytest.raises(KernelError, match="negative"):
        validate_kernel_tensor(ks - 0.01)
    with pytest.raises(KernelError, match=r"\(kh, kw\) or \(B, kh, kw\)"):
        validate_kernel_tensor(ks[None])
    with pytest.raises(KernelError, match="floating-point"):
        validate_kernel_tensor(torch.ones(1, 1, dtype=torch.int64))


def test_kernel_to_image_scales_to_max_one():
    k = linear_motion_kernel(6, 20)
    img = kernel_to_image(k)
    assert img.dtype == np.float32 and img.max() == 1.0
    np.testing.assert_allclose(img * k.max(), k, atol=1e-7)
    with pytest.raises(KernelError):
        kernel_to_image(np.full((2, 2), 0.5))
