"""Conjugate-gradient deconvolution of non-uniform blur."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deblurkit.deconv import deconv_linear, deconv_motion_field, l2_gradient
from deblurkit.errors import ConfigError, ImageError, KernelError

nonuniform = pytest.importorskip("deblurkit.blur.nonuniform")


def _difference_matrix(n: int) -> np.ndarray:
    """Forward differences with a zero last row (Neumann border), n x n."""
    d = np.zeros((n, n))
    for i in range(n - 1):
        d[i, i], d[i, i + 1] = -1.0, 1.0
    return d


def test_matches_a_dense_solve_of_the_normal_equations(rng):
    """A random dense linear operator on 7 x 9 images; the reference solves
    (A^T A + w D^T D) x = A^T b with numpy.linalg.solve."""
    h, w, n = 7, 9, 63
    matrix = rng.random((n, n)) / n + np.eye(n) * 0.5
    images = rng.random((2, 3, h, w))

    def forward(x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(*x.shape[:2], n)
        return (flat @ torch.from_numpy(matrix).T).reshape(x.shape)

    blurred = forward(torch.from_numpy(images))
    weight = 0.05
    dx = np.kron(np.eye(h), _difference_matrix(w))   # row-major flattening: x index fastest
    dy = np.kron(_difference_matrix(h), np.eye(w))
    system = matrix.T @ matrix + weight * (dx.T @ dx + dy.T @ dy)
    ours = deconv_linear(blurred, forward, weight=weight, iterations=500, tol=1e-12)
    for bi in range(2):
        for c in range(3):
            rhs = matrix.T @ blurred[bi, c].reshape(n).numpy()
            ref = np.linalg.solve(system, rhs).reshape(h, w)
            np.testing.assert_allclose(ours[bi, c].numpy(), ref, atol=1e-8)


def test_autograd_adjoint_equals_explicit_adjoint(camera):
    image = torch.from_numpy(camera[100:148, 100:156].astype(np.float64))[None, None]
    h, w = image.shape[-2:]
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                            torch.arange(w, dtype=torch.float64), indexing="ij")
    u = (0.1 * (yy - h / 2))[None]          # a rotation-like field, a few pixels long
    v = (-0.1 * (xx - w / 2))[None]
    blurred = nonuniform.blur_motion_field(image, u, v)
    explicit = deconv_motion_field(blurred, u, v, weight=1e-2, iterations=60, tol=1e-10)
    via_autograd = deconv_linear(
        blurred, lambda x: nonuniform.blur_motion_field(x, u, v), weight=1e-2, iterations=60,
        tol=1e-10)
    torch.testing.assert_close(explicit, via_autograd, atol=1e-7, rtol=0)
    # and the deconvolution restores the image better than the blurred input
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))
    assert float((explicit - image)[inner].abs().mean()) < \
        0.7 * float((blurred - image)[inner].abs().mean())


def test_constant_field_approximates_uniform_deconvolution(camera):
    """A constant motion field is a uniform blur whose kernel is the field's impulse response;
    away from the borders (where the two boundary models differ) the CG solution equals the
    Fourier-domain l2_gradient solution with that kernel."""
    image = torch.from_numpy(camera[180:308, 150:278].astype(np.float64))[None, None]
    h, w = image.shape[-2:]
    u = torch.full((1, h, w), 6.0, dtype=torch.float64)
    v = torch.full((1, h, w), -3.0, dtype=torch.float64)
    blurred = nonuniform.blur_motion_field(image, u, v)
    delta = torch.zeros(1, 1, 31, 31, dtype=torch.float64)
    delta[..., 15, 15] = 1.0
    response = nonuniform.blur_motion_field(delta, u[:, :31, :31], v[:, :31, :31])[0, 0]
    kernel = response[15 - 5:15 + 6, 15 - 5:15 + 6]             # 11 x 11, centre (5, 5)
    assert abs(float(kernel.sum()) - 1.0) < 1e-12
    cg = deconv_motion_field(blurred, u, v, weight=1e-2, iterations=400, tol=1e-9)
    fourier = l2_gradient(blurred, kernel, weight=1e-2)
    inner = (slice(None), slice(None), slice(40, -40), slice(40, -40))
    diff = (cg - fourier)[inner].abs()
    assert float(diff.max()) < 1e-2 and float(diff.mean()) < 5e-4
    assert float((cg - blurred)[inner].abs().mean()) > 10 * float(diff.mean())
    error = float((cg - image)[inner].abs().mean())
    assert error < 0.8 * float((blurred - image)[inner].abs().mean())


def test_zero_field_with_tiny_weight_returns_the_image(rng):
    image = torch.from_numpy(rng.random((2, 3, 20, 24)))
    zero = torch.zeros(2, 20, 24, dtype=torch.float64)
    out = deconv_motion_field(image, zero, zero, weight=1e-9, iterations=5)
    torch.testing.assert_close(out, image, atol=1e-6, rtol=0)


def test_float32_batches_and_per_plane_convergence(rng):
    images = torch.from_numpy(rng.random((2, 2, 24, 24)).astype(np.float32))
    u = torch.stack([torch.full((24, 24), 4.0), torch.full((24, 24), 0.0)])
    v = torch.zeros(2, 24, 24)
    blurred = nonuniform.blur_motion_field(images, u, v)
    out = deconv_motion_field(blurred, u, v, weight=1e-2, iterations=200, tol=1e-5)
    assert out.dtype == torch.float32
    for i in range(2):
        single = deconv_motion_field(blurred[i:i + 1], u[i:i + 1], v[i:i + 1], weight=1e-2,
                                     iterations=200, tol=1e-5)
        torch.testing.assert_close(out[i:i + 1], single, atol=1e-4, rtol=0)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(weight=0.0), ConfigError, "weight: must be a finite number > 0"),
    (dict(iterations=0), ConfigError, "iterations: must be an integer >= 1"),
    (dict(tol=-1.0), ConfigError, "tol: must be a finite number > 0"),
])
def test_bad_options_refused(kwargs, error, message):
    image = torch.rand(1, 1, 8, 8)
    zero = torch.zeros(1, 8, 8)
    with pytest.raises(error, match=message):
        deconv_motion_field(image, zero, zero, **kwargs)


def test_bad_inputs_refused():
    zero = torch.zeros(1, 8, 8)
    with pytest.raises(ImageError, match="blurred: deconv_motion_field takes a torch tensor"):
        deconv_motion_field(np.zeros((8, 8, 1), np.float32), zero, zero)
    with pytest.raises(KernelError, match="u: expected shape"):
        deconv_motion_field(torch.rand(1, 1, 8, 8), torch.zeros(1, 9, 8), zero)
    with pytest.raises(ImageError, match="non-finite"):
        deconv_motion_field(torch.full((1, 1, 8, 8), float("nan")), zero, zero)
    with pytest.raises(ConfigError, match="forward: must be a callable"):
        deconv_linear(torch.rand(1, 1, 8, 8), "blur")
    with pytest.raises(ConfigError, match="x0: shape"):
        deconv_linear(torch.rand(1, 1, 8, 8), lambda x: x, x0=torch.rand(1, 1, 8, 9))


def test_label_field_equals_the_gather_and_splat_solver(camera):
    """deconv_motion_field applies A and A^T through MotionFieldOperator (a sparse matrix for a
    field of few distinct vectors); the previous implementation passed the gather
    blur_motion_field and the splat blur_motion_field_adjoint to the same CG solver. Same
    iterates, so the same result to float64 rounding, per-sample fields and 2 channels."""
    image = torch.from_numpy(np.stack([camera[200:250, 180:244], camera[260:310, 100:164]])
                             .astype(np.float64))[:, None].repeat(1, 2, 1, 1)
    image[:, 1] = 1 - image[:, 1]
    rng = np.random.default_rng(3)
    vec = rng.uniform(-8, 8, (2, 5, 2))
    cells = rng.integers(0, 5, (2, 13, 16))
    lab = np.repeat(np.repeat(cells, 4, axis=1), 4, axis=2)[:, :50, :64]
    field = np.take_along_axis(vec, lab.reshape(2, -1, 1), axis=1).reshape(2, 50, 64, 2)
    u, v = torch.from_numpy(field[..., 0].copy()), torch.from_numpy(field[..., 1].copy())
    blurred = nonuniform.blur_motion_field(image, u, v)
    for boundary in ("replicate", "reflection"):
        ours = deconv_motion_field(blurred, u, v, weight=1e-2, iterations=30, boundary=boundary)
        previous = deconv_linear(
            blurred, lambda x: nonuniform.blur_motion_field(x, u, v, boundary=boundary),
            adjoint=lambda y: nonuniform.blur_motion_field_adjoint(y, u, v, boundary=boundary),
            weight=1e-2, iterations=30)
        torch.testing.assert_close(ours, previous, rtol=0, atol=1e-9)
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))
    assert float((ours - image)[inner].abs().mean()) < \
        0.7 * float((blurred - image)[inner].abs().mean())
