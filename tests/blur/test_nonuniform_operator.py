"""MotionFieldOperator: the motion-field blur and its adjoint as a sparse matrix built once.

References: the previous implementation (the gather :func:`blur_motion_field` and the splat
:func:`blur_motion_field_adjoint`, kept as they were), a direct per-pixel computation with
``scipy.ndimage.map_coordinates`` (independent of torch), the dense matrices of both operators
built column by column, and the dot-product identity ``<A x, y> == <x, A^T y>``."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from deblurkit.blur import nonuniform
from deblurkit.blur.nonuniform import (
    BOUNDARIES, MotionFieldOperator, blur_motion_field, blur_motion_field_adjoint, default_samples,
)
from deblurkit.errors import ConfigError, ImageError, KernelError

SCIPY_MODE = {"replicate": "nearest", "reflection": "mirror", "zeros": "grid-constant"}


def _label_field(h: int, w: int, seed: int, labels: int = 6, block: int = 4,
                 max_length: float = 9.0, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """A piecewise-constant field: ``labels`` random motion vectors (non-integer, any angle,
    one of them zero) on ``block`` x ``block`` cells, like Sun et al.'s MRF lattice; float64
    ``(batch, h, w)``."""
    rng = np.random.default_rng(seed)
    vec = rng.uniform(-max_length, max_length, (batch, labels, 2))
    vec[:, 0] = 0.0
    cells = rng.integers(0, labels, (batch, -(-h // block), -(-w // block)))
    lab = np.repeat(np.repeat(cells, block, axis=1), block, axis=2)[:, :h, :w]
    field = np.take_along_axis(vec, lab.reshape(batch, -1, 1), axis=1).reshape(batch, h, w, 2)
    return torch.from_numpy(field[..., 0].copy()), torch.from_numpy(field[..., 1].copy())


def _direct(image: np.ndarray, u: np.ndarray, v: np.ndarray, samples: int,
            boundary: str) -> np.ndarray:
    """Survey eq. 13-14 pixel by pixel: the mean of ``samples`` bilinear reads (scipy, order 1)
    along the segment ``p + t (u, v)``, ``t`` in [-1/2, 1/2]; ``image`` ``(H, W)``."""
    h, w = image.shape
    out = np.zeros((h, w))
    ts = [0.0] if samples == 1 else [-0.5 + k / (samples - 1) for k in range(samples)]
    for i in range(h):
        for j in range(w):
            xs = [j + t * u[i, j] for t in ts]
            ys = [i + t * v[i, j] for t in ts]
            out[i, j] = ndi.map_coordinates(image, [ys, xs], order=1, mode=SCIPY_MODE[boundary],
                                            cval=0.0).mean()
    return out


def _dense(apply, shape: tuple[int, int]) -> np.ndarray:
    """The matrix of a linear map on ``(1, 1, H, W)`` float64 images, column by column."""
    h, w = shape
    cols = []
    for k in range(h * w):
        e = torch.zeros(1, 1, h, w, dtype=torch.float64)
        e.view(-1)[k] = 1.0
        cols.append(apply(e).reshape(-1).numpy())
    return np.stack(cols, axis=1)


@pytest.mark.parametrize("boundary", list(BOUNDARIES))
def test_matches_the_gather_and_splat_on_a_label_field(boundary):
    """Per-sample fields, 3 channels, float64: the sparse path equals the previous gather and
    splat to rounding (both are exact in float64)."""
    u, v = _label_field(29, 37, seed=1, batch=2)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 29, 37, dtype=torch.float64, generator=g)
    y = torch.randn(2, 3, 29, 37, dtype=torch.float64, generator=g)
    op = MotionFieldOperator(u, v, x, boundary=boundary)
    assert op.matrices is not None and len(op.matrices) == 2        # the fast path, per sample
    torch.testing.assert_close(op.forward(x), blur_motion_field(x, u, v, boundary=boundary),
                               rtol=0, atol=1e-12)
    torch.testing.assert_close(op.adjoint(y),
                               blur_motion_field_adjoint(y, u, v, boundary=boundary),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("boundary", list(BOUNDARIES))
def test_matches_a_direct_per_pixel_computation(boundary):
    """Independent of torch: scipy bilinear reads pixel by pixel, motions reaching far outside a
    small image (several reflections for "reflection")."""
    u, v = _label_field(9, 11, seed=2, labels=4, block=3, max_length=26.0)
    image = np.random.default_rng(3).random((9, 11))
    n = default_samples(u, v)
    ref = _direct(image, u[0].numpy(), v[0].numpy(), n, boundary)
    x = torch.from_numpy(image)[None, None]
    out = MotionFieldOperator(u, v, x, boundary=boundary).forward(x)
    np.testing.assert_allclose(out[0, 0].numpy(), ref, rtol=0, atol=1e-12)
    # explicit samples (fewer than the default: sparser segments) too
    ref5 = _direct(image, u[0].numpy(), v[0].numpy(), 5, boundary)
    out5 = MotionFieldOperator(u, v, x, samples=5, boundary=boundary).forward(x)
    np.testing.assert_allclose(out5[0, 0].numpy(), ref5, rtol=0, atol=1e-12)


@pytest.mark.parametrize("boundary", list(BOUNDARIES))
def test_adjoint_is_the_transpose(boundary):
    """Dense matrices of both maps: A^T from the adjoint equals the transpose of A from the
    forward map; and the dot-product identity on random images."""
    u, v = _label_field(8, 10, seed=4, labels=5, block=2, max_length=7.0)
    like = torch.zeros(1, 1, 8, 10, dtype=torch.float64)
    op = MotionFieldOperator(u, v, like, boundary=boundary)
    a = _dense(op.forward, (8, 10))
    at = _dense(op.adjoint, (8, 10))
    np.testing.assert_allclose(at, a.T, rtol=0, atol=1e-14)
    assert a.min() >= 0                                           # rows of a blur sum to 1
    if boundary == "zeros":                                       # (less what falls outside)
        assert (a.sum(axis=1) <= 1 + 1e-12).all() and (a.sum(axis=1) < 1 - 1e-3).any()
    else:
        np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 2, 8, 10, dtype=torch.float64, generator=g)
    y = torch.randn(1, 2, 8, 10, dtype=torch.float64, generator=g)
    op2 = MotionFieldOperator(u, v, x, boundary=boundary)
    lhs = float((op2.forward(x) * y).sum())
    rhs = float((x * op2.adjoint(y)).sum())
    assert abs(lhs - rhs) < 1e-12 * max(1.0, abs(lhs))


def test_float32_matches_the_gather_to_float_rounding():
    """float32: the gather rounds each sample position ``p + t M`` in float32, the operator
    computes the taps from ``t M`` in float64; they agree to float32 rounding (the float64
    versions to 1e-12, above)."""
    u, v = _label_field(48, 64, seed=6, labels=12, batch=1, max_length=24.0)
    u, v = u.float(), v.float()
    g = torch.Generator().manual_seed(7)
    x = torch.rand(1, 3, 48, 64, generator=g)
    op = MotionFieldOperator(u[0], v[0], x)                   # (H, W) field, shared
    assert op.dtype == torch.float32 and len(op.matrices) == 1
    fwd = op.forward(x)
    adj = op.adjoint(x)
    assert fwd.dtype == adj.dtype == torch.float32
    # positions near x = 64 round by ulp(64) = 7.6e-6 px; pixel steps are <= 1
    torch.testing.assert_close(fwd, blur_motion_field(x, u, v), rtol=0, atol=1e-5)
    torch.testing.assert_close(adj, blur_motion_field_adjoint(x, u, v), rtol=0, atol=1e-5)


def test_shared_field_for_a_batch_and_sun2015_labels():
    """Sun et al.'s kernel labels (lengths up to 25 px, 6-degree orientations) on a coarse
    lattice, one field shared by a batch of 2."""
    from deblurkit.estimation import sun2015

    rng = np.random.default_rng(8)
    lab = np.repeat(np.repeat(rng.integers(0, 361, (5, 6)), 8, axis=0), 8, axis=1)
    u, v = sun2015.label_to_motion(lab)
    ut = torch.from_numpy(u.astype(np.float64))[None]
    vt = torch.from_numpy(v.astype(np.float64))[None]
    x = torch.rand(2, 2, 40, 48, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    op = MotionFieldOperator(ut, vt, x)
    assert len(op.matrices) == 1
    torch.testing.assert_close(op.forward(x), blur_motion_field(x, ut, vt), rtol=0, atol=1e-12)
    torch.testing.assert_close(op.adjoint(x), blur_motion_field_adjoint(x, ut, vt), rtol=0,
                               atol=1e-12)


def test_fallbacks_give_the_same_results(monkeypatch):
    """A continuous field with more distinct vectors than the tap table allows, and an input
    that needs autograd, use the gather / splat themselves."""
    h, w = 12, 14
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                            torch.arange(w, dtype=torch.float64), indexing="ij")
    u, v = (0.3 * (yy - 6))[None], (-0.3 * (xx - 7))[None]       # a rotation: all distinct
    x = torch.rand(1, 1, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert MotionFieldOperator(u, v, x).matrices is not None
    monkeypatch.setattr(nonuniform, "MAX_TAP_TABLE", 100)
    op = MotionFieldOperator(u, v, x)
    assert op.matrices is None
    torch.testing.assert_close(op.forward(x), blur_motion_field(x, u, v), rtol=0, atol=0)
    torch.testing.assert_close(op.adjoint(x), blur_motion_field_adjoint(x, u, v), rtol=0, atol=0)
    monkeypatch.undo()
    monkeypatch.setattr(nonuniform, "MAX_NONZEROS", h * w)    # > 1 tap a pixel: too big
    op = MotionFieldOperator(u, v, x)
    assert op.matrices is None
    torch.testing.assert_close(op.adjoint(x), blur_motion_field_adjoint(x, u, v), rtol=0, atol=0)
    monkeypatch.undo()
    op = MotionFieldOperator(u, v, x)
    xr = x.clone().requires_grad_()
    out = op.forward(xr)
    assert out.requires_grad
    (grad,) = torch.autograd.grad(out.sum(), xr)
    torch.testing.assert_close(grad, op.adjoint(torch.ones_like(x)), rtol=0, atol=1e-12)


def test_zero_field_is_the_identity():
    zero = torch.zeros(2, 6, 7)
    x = torch.rand(2, 3, 6, 7)
    op = MotionFieldOperator(zero, zero, x)
    assert op.samples == 1
    assert torch.equal(op.forward(x), x) and torch.equal(op.adjoint(x), x)


def test_bad_arguments_are_refused():
    zero = torch.zeros(1, 8, 8)
    x = torch.rand(1, 1, 8, 8)
    with pytest.raises(KernelError, match=r"u: expected shape \(1, 8, 8\)"):
        MotionFieldOperator(torch.zeros(1, 9, 8), zero, x)
    with pytest.raises(ConfigError, match="boundary='wrap'"):
        MotionFieldOperator(zero, zero, x, boundary="wrap")
    with pytest.raises(ConfigError, match="samples=0"):
        MotionFieldOperator(zero, zero, x, samples=0)
    with pytest.raises(ImageError, match="like: expected shape"):
        MotionFieldOperator(zero, zero, torch.rand(8, 8))
    op = MotionFieldOperator(torch.full((1, 8, 8), 3.0), zero, x)
    with pytest.raises(ImageError, match=r"image: expected shape \(1, C, 8, 8\)"):
        op.forward(torch.rand(1, 1, 8, 9))
    with pytest.raises(ImageError, match="y: has 1 non-finite"):
        bad = x.clone()
        bad[0, 0, 0, 0] = float("nan")
        op.adjoint(bad)
