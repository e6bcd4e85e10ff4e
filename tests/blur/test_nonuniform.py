"""Non-uniform motion-field blur (Gong et al. 2017, survey eq. 13-16)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal as ss
import torch

from deblurkit.blur.nonuniform import (
    BOUNDARIES, FIELD_KINDS, blur_motion_field, blur_motion_field_adjoint, blur_motion_field_np,
    canonical_motion_field, default_samples, motion_field_kernels, random_motion_field,
    sample_bilinear, splat_bilinear,
)
from deblurkit.errors import DeblurkitError

SCIPY_MODE = {"replicate": "nearest", "reflection": "mirror", "zeros": "constant"}


@pytest.fixture(scope="module")
def smooth_grey() -> np.ndarray:
    """A natural 96x96 grey image (scikit-image astronaut, green channel), float64 in [0, 1]."""
    from skimage import data, transform

    img = data.astronaut().astype(np.float64)[..., 1] / 255.0
    return transform.resize(img, (96, 96), anti_aliasing=True)


def _const(h: int, w: int, value: float, b: int = 1) -> torch.Tensor:
    return torch.full((b, h, w), value, dtype=torch.float64)


def _as_t(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img, dtype=np.float64))[None, None]


# --- the bilinear sampler -------------------------------------------------------------------

@pytest.mark.parametrize("boundary", list(BOUNDARIES))
def test_sampler_matches_scipy_map_coordinates(boundary: str) -> None:
    """Pixel coordinates, boundary rules and bilinear weights against scipy.ndimage (order 1)."""
    rng = np.random.default_rng(1)
    img = rng.random((9, 13))
    x = rng.random((7, 5)) * 24 - 6     # well outside the image, too
    y = rng.random((7, 5)) * 18 - 5
    x[0, :3] = [0.0, 12.0, 5.0]         # exact pixel centres and the last column / row
    y[0, :3] = [0.0, 8.0, 3.0]
    mode = {"replicate": "nearest", "reflection": "mirror", "zeros": "grid-constant"}[boundary]
    ref = ndi.map_coordinates(img, [y, x], order=1, mode=mode, cval=0.0)
    out = sample_bilinear(torch.from_numpy(img)[None, None], torch.from_numpy(x)[None],
                          torch.from_numpy(y)[None], boundary=boundary)
    np.testing.assert_allclose(out[0, 0].numpy(), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("boundary", list(BOUNDARIES))
def test_splat_is_adjoint_of_sampler(boundary: str) -> None:
    g = torch.Generator().manual_seed(2)
    a = torch.randn(2, 2, 8, 11, dtype=torch.float64, generator=g)
    x = torch.rand(2, 6, 7, dtype=torch.float64, generator=g) * 16 - 3
    y = torch.rand(2, 6, 7, dtype=torch.float64, generator=g) * 12 - 3
    r = torch.randn(2, 2, 6, 7, dtype=torch.float64, generator=g)
    lhs = (sample_bilinear(a, x, y, boundary=boundary) * r).sum()
    rhs = (a * splat_bilinear(r, x, y, 8, 11, boundary=boundary)).sum()
    assert abs(float(lhs - rhs)) < 1e-10 * max(1.0, abs(float(lhs)))


# --- blur_motion_field ----------------------------------------------------------------------

def test_zero_field_returns_image_exactly() -> None:
    img = torch.rand(2, 3, 17, 23)
    zero = torch.zeros(2, 17, 23)
    for boundary in BOUNDARIES:
        assert torch.equal(blur_motion_field(img, zero, zero, boundary=boundary), img)
    # pixels with zero motion stay sharp inside a moving field too (every sample on the pixel,
    # up to float32 rounding of grid_sample's normalised coordinates)
    u = torch.zeros(2, 17, 23)
    u[:, :, 12:] = 5.3
    out = blur_motion_field(img, u, torch.zeros_like(u))
    torch.testing.assert_close(out[..., :12], img[..., :12], rtol=0, atol=2e-6)
    assert not torch.allclose(out[..., 14:], img[..., 14:])


@pytest.mark.parametrize("boundary", list(BOUNDARIES))
def test_integer_horizontal_and_vertical_motion_is_a_box_filter(boundary: str, smooth_grey) -> None:
    """|M| = 4 gives 5 samples at integer offsets -2..2: scipy's uniform filter, whole image."""
    h, w = smooth_grey.shape
    out = blur_motion_field(_as_t(smooth_grey), _const(h, w, 4.0), _const(h, w, 0.0),
                            boundary=boundary)[0, 0].numpy()
    ref = ndi.uniform_filter1d(smooth_grey, 5, axis=1, mode=SCIPY_MODE[boundary])
    np.testing.assert_allclose(out, ref, atol=1e-12)
    # vertical, negative: length 6 -> 7 samples, offsets -3..3
    out = blur_motion_field(_as_t(smooth_grey), _const(h, w, 0.0), _const(h, w, -6.0),
                            boundary=boundary)[0, 0].numpy()
    ref = ndi.uniform_filter1d(smooth_grey, 7, axis=0, mode=SCIPY_MODE[boundary])
    np.testing.assert_allclose(out, ref, atol=1e-12)


def test_constant_field_is_convolution_with_its_kernel(smooth_grey) -> None:
    u0, v0 = 7.0, -3.0
    h, w = smooth_grey.shape
    out = blur_motion_field(_as_t(smooth_grey), _const(h, w, u0), _const(h, w, v0))[0, 0].numpy()
    kernels = motion_field_kernels(np.full((3, 4), u0), np.full((3, 4), v0), 15)
    assert kernels.shape == (3, 4, 15, 15) and kernels.dtype == np.float32
    k = kernels[1, 2].astype(np.float64)
    np.testing.assert_array_equal(kernels[0, 0], kernels[2, 3])        # constant field
    assert k.min() >= 0 and abs(k.sum() - 1) < 1e-6
    np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-7)            # (u,v) ~ (-u,-v)
    ref = ss.convolve(smooth_grey, k, mode="same")
    inner = (slice(10, -10), slice(10, -10))
    np.testing.assert_allclose(out[inner], ref[inner], atol=1e-6)


def _area_line_kernel(u: float, v: float, size: int, n: int = 4001) -> np.ndarray:
    """Independent reference: the segment from -(u,v)/2 to (u,v)/2 rasterised by dense points
    (nearest pixel), in scipy.signal.convolve orientation, x right / y down."""
    c = size // 2
    t = np.linspace(-0.5, 0.5, n)
    k = np.zeros((size, size))
    np.add.at(k, (np.rint(-t * v).astype(int) + c, np.rint(-t * u).astype(int) + c), 1.0)
    return k / k.sum()


def test_constant_field_matches_an_independent_line_kernel(smooth_grey) -> None:
    """Up to interpolation error; the mirrored orientation must be clearly worse."""
    u0, v0 = 7.0, -3.0
    h, w = smooth_grey.shape
    out = blur_motion_field(_as_t(smooth_grey), _const(h, w, u0), _const(h, w, v0))[0, 0].numpy()
    inner = (slice(10, -10), slice(10, -10))

    def rms(a):
        return float(np.sqrt(np.mean(a[inner] ** 2)))

    right = rms(out - ss.convolve(smooth_grey, _area_line_kernel(u0, v0, 15), mode="same"))
    mirrored = rms(out - ss.convolve(smooth_grey, _area_line_kernel(u0, -v0, 15), mode="same"))
    blur_amount = rms(out - smooth_grey)
    assert right < 0.25 * blur_amount
    assert mirrored > 2.5 * right


@pytest.mark.parametrize("u0,v0", [(7.0, -3.0), (5.0, 5.0), (0.0, 6.0)])
def test_constant_field_matches_uniform_linear_motion_blur(
    smooth_grey, u0: float, v0: float
) -> None:
    """Against the uniform pipeline of deblurkit.blur (kernels.py / convolve.py) when present.

    A pixel moving by |M| px leaves a streak |M| + 1 px long: linear_motion_kernel's ``length``
    is the streak's extent, its angle counter-clockwise on screen (y down: atan2(-v, u)).
    """
    kernels_mod = pytest.importorskip("deblurkit.blur.kernels")
    convolve_mod = pytest.importorskip("deblurkit.blur.convolve")
    length = math.hypot(u0, v0) + 1
    angle = math.degrees(math.atan2(-v0, u0))
    img = torch.from_numpy(smooth_grey.astype(np.float32))[None, None]
    h, w = smooth_grey.shape
    out = blur_motion_field(img, _const(h, w, u0).float(), _const(h, w, v0).float())

    def uniform(theta: float) -> torch.Tensor:
        k = torch.as_tensor(np.asarray(kernels_mod.linear_motion_kernel(length, theta, 15)))
        return convolve_mod.blur(img, k.float(), boundary="replicate")

    inner = (..., slice(10, -10), slice(10, -10))

    def rms(a: torch.Tensor) -> float:
        return float(a[inner].pow(2).mean().sqrt())

    right = rms(out - uniform(angle))
    assert right < 0.05 * rms(out - img)          # measured ~2 %: bilinear vs. area rasterising
    if u0 != 0 and v0 != 0:                       # axis-aligned streaks are mirror-symmetric
        assert rms(out - uniform(-angle)) > 10 * right


def test_linearity_float64() -> None:
    g = torch.Generator().manual_seed(3)
    u = torch.randn(2, 12, 14, dtype=torch.float64, generator=g) * 3
    v = torch.randn(2, 12, 14, dtype=torch.float64, generator=g) * 3
    x1 = torch.rand(2, 3, 12, 14, dtype=torch.float64, generator=g)
    x2 = torch.rand(2, 3, 12, 14, dtype=torch.float64, generator=g)
    lhs = blur_motion_field(0.7 * x1 - 1.3 * x2, u, v)
    rhs = 0.7 * blur_motion_field(x1, u, v) - 1.3 * blur_motion_field(x2, u, v)
    torch.testing.assert_close(lhs, rhs, rtol=0, atol=1e-12)


@pytest.mark.parametrize("boundary", list(BOUNDARIES))
def test_adjoint_dot_product_and_autograd(boundary: str) -> None:
    g = torch.Generator().manual_seed(4)
    u = torch.randn(2, 13, 11, dtype=torch.float64, generator=g) * 4
    v = torch.randn(2, 13, 11, dtype=torch.float64, generator=g) * 4
    x = torch.randn(2, 3, 13, 11, dtype=torch.float64, generator=g)
    y = torch.randn(2, 3, 13, 11, dtype=torch.float64, generator=g)
    ax = blur_motion_field(x, u, v, boundary=boundary)
    aty = blur_motion_field_adjoint(y, u, v, boundary=boundary)
    lhs, rhs = float((ax * y).sum()), float((x * aty).sum())
    assert abs(lhs - rhs) < 1e-10 * max(1.0, abs(lhs))
    # the explicit scatter equals the vector-Jacobian product autograd derives from the gather
    xr = torch.zeros_like(x, requires_grad=True)
    (vjp,) = torch.autograd.grad(blur_motion_field(xr, u, v, boundary=boundary), xr, y)
    torch.testing.assert_close(aty, vjp, rtol=0, atol=1e-12)


@pytest.mark.parametrize("boundary", ["replicate", "reflection"])
def test_constant_image_stays_constant(boundary: str) -> None:
    u, v = (torch.from_numpy(f)[None] for f in random_motion_field(20, 30, 5, kind="mixed"))
    img = torch.full((1, 2, 20, 30), 0.37)
    out = blur_motion_field(img, u, v, boundary=boundary)
    torch.testing.assert_close(out, img, rtol=0, atol=1e-6)
    # the adjoint of a gather with these boundaries need not preserve sums, but the forward
    # operator's rows do: A^T applied to delta images gives rows summing to 1 -> A 1 = 1 above.
    kernels = motion_field_kernels(u[0].numpy(), v[0].numpy(), 41)
    np.testing.assert_allclose(kernels.sum(axis=(2, 3)), 1.0, atol=1e-5)
    assert kernels.min() >= 0


def test_zeros_boundary_darkens_the_border_only() -> None:
    img = torch.ones(1, 1, 16, 16, dtype=torch.float64)
    out = blur_motion_field(img, _const(16, 16, 6.0), _const(16, 16, 0.0), boundary="zeros")
    assert torch.equal(out[..., 3:-3], img[..., 3:-3])
    assert float(out[0, 0, 0, 0]) == pytest.approx(4 / 7)   # 7 samples, 3 fall left of the image


def test_default_samples() -> None:
    z = np.zeros((2, 2))
    assert default_samples(z, z) == 1
    assert default_samples(np.full((2, 2), 4.0), z) == 5
    assert default_samples(np.full((2, 2), 4.2), z) == 7   # ceil 5 + 1 = 6 -> odd 7
    assert default_samples(np.full((2, 2), 3.0), np.full((2, 2), 4.0)) == 7   # |M| = 5 -> 6 -> 7
    assert default_samples(np.full((2, 2), 1e4), z) == 257


def test_explicit_samples_and_field_gradient() -> None:
    g = torch.Generator().manual_seed(6)
    img = torch.rand(1, 1, 10, 12, dtype=torch.float64, generator=g)
    u = (torch.rand(1, 10, 12, dtype=torch.float64, generator=g) * 3 + 0.1).requires_grad_()
    v = (torch.rand(1, 10, 12, dtype=torch.float64, generator=g) * 3 + 0.1).requires_grad_()
    # the motion field is a differentiable input (bilinear weights), e.g. for learned estimators
    assert torch.autograd.gradcheck(
        lambda a, b: blur_motion_field(img, a, b, samples=4), (u, v), eps=1e-7, atol=1e-6
    )


def test_numpy_wrapper_matches_torch(smooth_grey) -> None:
    u, v = random_motion_field(96, 96, 7, max_length=9.0, kind="rotation")
    rgb = np.stack([smooth_grey, smooth_grey**2, 1 - smooth_grey], axis=-1).astype(np.float32)
    out = blur_motion_field_np(rgb, u, v)
    assert out.shape == rgb.shape and out.dtype == np.float32
    ref = blur_motion_field(torch.from_numpy(rgb).permute(2, 0, 1)[None],
                            torch.from_numpy(u)[None], torch.from_numpy(v)[None])
    np.testing.assert_allclose(out, ref[0].permute(1, 2, 0).numpy(), atol=1e-7)
    grey = blur_motion_field_np(rgb[..., 0], u, v)
    assert grey.shape == (96, 96)
    np.testing.assert_allclose(grey, out[..., 0], atol=1e-7)


def test_canonical_field_keeps_the_blur(smooth_grey) -> None:
    u, v = random_motion_field(96, 96, 8, kind="rotation")
    cu, cv = canonical_motion_field(u, v)
    assert (cu >= 0).all() and (u < 0).any()
    np.testing.assert_array_equal(np.hypot(cu, cv), np.hypot(u, v))
    img = smooth_grey.astype(np.float32)
    np.testing.assert_allclose(blur_motion_field_np(img, cu, cv), blur_motion_field_np(img, u, v),
                               atol=1e-6)
    tu, tv = canonical_motion_field(torch.from_numpy(u), torch.from_numpy(v))
    np.testing.assert_array_equal(tu.numpy(), cu)
    np.testing.assert_array_equal(tv.numpy(), cv)


# --- random motion fields -------------------------------------------------------------------

@pytest.mark.parametrize("kind", FIELD_KINDS)
def test_random_field_reproducible_scaled_smooth(kind: str) -> None:
    u, v = random_motion_field(40, 56, 11, max_length=12.5, kind=kind)
    u2, v2 = random_motion_field(40, 56, 11, max_length=12.5, kind=kind)
    u3, _ = random_motion_field(40, 56, 12, max_length=12.5, kind=kind)
    assert u.shape == v.shape == (40, 56) and u.dtype == v.dtype == np.float32
    np.testing.assert_array_equal(u, u2)
    np.testing.assert_array_equal(v, v2)
    assert not np.array_equal(u, u3)
    assert np.hypot(u, v).max() == pytest.approx(12.5, rel=1e-5)
    # smooth: neighbouring vectors differ by a small fraction of the longest one
    step = max(np.abs(np.diff(u, axis=0)).max(), np.abs(np.diff(u, axis=1)).max(),
               np.abs(np.diff(v, axis=0)).max(), np.abs(np.diff(v, axis=1)).max())
    assert step < 0.1 * 12.5


def test_random_field_motion_models() -> None:
    u, v = random_motion_field(30, 40, 1, kind="translation")
    assert np.ptp(u) < 1e-5 and np.ptp(v) < 1e-5
    # rotation: a rigid rotation field has zero divergence, u_y = -v_x, u_x = v_y = 0
    u, v = (f.astype(np.float64) for f in random_motion_field(30, 40, 2, kind="rotation"))
    uy, ux = np.gradient(u)
    vy, vx = np.gradient(v)
    assert np.abs(ux).max() < 1e-4 and np.abs(vy).max() < 1e-4
    np.testing.assert_allclose(uy, -vx, atol=1e-4)
    assert np.abs(uy).mean() > 1e-3
    # zoom: radial field, curl free, u_x = v_y constant, u_y = v_x = 0
    u, v = (f.astype(np.float64) for f in random_motion_field(30, 40, 3, kind="zoom"))
    uy, ux = np.gradient(u)
    vy, vx = np.gradient(v)
    assert np.abs(uy).max() < 1e-4 and np.abs(vx).max() < 1e-4
    np.testing.assert_allclose(ux, vy, atol=1e-4)
    assert np.abs(ux).mean() > 1e-3
    zero_u, zero_v = random_motion_field(8, 8, 0, max_length=0.0, kind="mixed")
    assert not zero_u.any() and not zero_v.any()


# --- bad inputs -----------------------------------------------------------------------------

def _raises(match: str):
    return pytest.raises(DeblurkitError, match=match)


def test_bad_inputs_are_refused() -> None:
    img = torch.rand(1, 1, 6, 7)
    z = torch.zeros(1, 6, 7)
    nan_img = img.clone()
    nan_img[0, 0, 2, 3] = float("nan")
    with _raises(r"^image: has 1 non-finite"):
        blur_motion_field(nan_img, z, z)
    with _raises(r"^image: expected shape \(B, C, H, W\), got \(6, 7\)"):
        blur_motion_field(img[0, 0], z, z)
    with _raises(r"^image: expected a torch.Tensor"):
        blur_motion_field(img.numpy(), z, z)
    with _raises(r"^u: expected shape \(1, 6, 7\).*got \(1, 7, 6\)"):
        blur_motion_field(img, torch.zeros(1, 7, 6), z)
    bad_v = z.clone()
    bad_v[0, 1, 1] = float("inf")
    with _raises(r"^v: has 1 non-finite"):
        blur_motion_field(img, z, bad_v)
    with _raises(r"^boundary='wrap'"):
        blur_motion_field(img, z, z, boundary="wrap")
    with _raises(r"^samples=0"):
        blur_motion_field(img, z, z, samples=0)
    with _raises(r"^y: has 1 non-finite"):
        blur_motion_field_adjoint(nan_img, z, z)
    with _raises(r"^u: expected a numpy array of shape \(6, 7\)"):
        blur_motion_field_np(np.zeros((6, 7, 3), np.float32), np.zeros((6, 6)), np.zeros((6, 7)))
    with _raises(r"^image: expected a float array"):
        blur_motion_field_np(np.zeros((6, 7, 3), np.uint8), np.zeros((6, 7)), np.zeros((6, 7)))
    with _raises(r"^size=5: too small for the longest motion \(8.00 px\)"):
        motion_field_kernels(np.full((2, 2), 8.0), np.zeros((2, 2)), 5)
    with _raises(r"^kind='spiral'"):
        random_motion_field(8, 8, 0, kind="spiral")
    with _raises(r"^height=0"):
        random_motion_field(0, 8, 0)
    with _raises(r"^max_length=nan"):
        random_motion_field(8, 8, 0, max_length=float("nan"))
    with _raises(r"^seed=-1"):
        random_motion_field(8, 8, -1)
