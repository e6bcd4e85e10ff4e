"""Chakrabarti 2016 (survey eq. 5-8): band decomposition and filter layout against numpy
references, exact patch recombination, the eq. 8 solver against scipy and constructed cases, the
pipeline end to end, and refusals."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.optimize
import torch

from deblurkit.blur.convolve import blur
from deblurkit.blur.kernels import camera_shake_kernel, validate_kernel
from deblurkit.errors import ConfigError, ImageError
from deblurkit.estimation.chakrabarti2016 import (
    CENTRE,
    N_FILTER_COEFFS,
    PATCH,
    SIZES,
    Chakrabarti2016Estimator,
    ChakrabartiNet,
    apply_filters,
    band_decomposition,
    band_dims,
    derivative_filters,
    filter_from_output,
    identity_filter,
    image_to_patches,
    kernel_from_latent,
    kernel_normal_equations,
    patches_to_image,
    project_simplex,
    solve_kernel_qp,
)
from deblurkit.estimation.schuler2014 import pad_kernel


def _circular(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    return ndi.convolve(x, k, mode="grid-wrap")


def _signed(i: int, n: int) -> int:
    return i if i <= n // 2 else i - n


# ------------------------------------------------------------------------------------ eq. 5-6

def test_band_decomposition_matches_numpy(rng):
    p = rng.random((2, PATCH, PATCH))
    bands = band_decomposition(torch.from_numpy(p))
    assert [b.shape[1] for b in bands] == band_dims() == [81, 208, 208, 208]
    for (n, lo, hi, dc), band in zip(((65, -1, 4, True), (65, 4, 8, False), (33, 4, 8, False),
                                      (17, 4, 8, False)), bands):
        off = (PATCH - n) // 2
        spec = np.fft.fft2(p[:, off:off + n, off:off + n]) / (n * n)
        re, im = [], []
        for c in range(n // 2 + 1):                        # same enumeration: columns, then rows
            for r in range(n):
                fy = _signed(r, n)
                if c == 0 and fy <= 0:                     # DC and the mirrored half of column 0
                    continue
                if lo < max(abs(fy), c) <= hi:
                    re.append(spec[:, r, c].real)
                    im.append(spec[:, r, c].imag)
        ref = np.stack(([spec[:, 0, 0].real] if dc else []) + re + im, axis=1)
        np.testing.assert_allclose(band.numpy(), ref, atol=1e-12)
    np.testing.assert_allclose(bands[0][:, 0].numpy(), p.mean(axis=(1, 2)), atol=1e-12)  # DC = mean


def test_filter_layout_applies_a_known_convolution(rng):
    """The output vector holding a kernel's transfer function restores as that circular convolution."""
    k = np.zeros((PATCH, PATCH))
    k[:3, :4] = rng.random((3, 4))
    k /= k.sum()
    kernel = k[:3, :4]
    otf = np.fft.fft2(np.roll(np.pad(kernel, ((0, PATCH - 3), (0, PATCH - 4))), (-1, -2), axis=(0, 1)))
    rows, cols = [], []
    for c in range(PATCH // 2 + 1):
        for r in range(PATCH):
            if c == 0 and _signed(r, PATCH) <= 0:
                continue
            rows.append(r)
            cols.append(c)
    assert len(rows) == N_FILTER_COEFFS == 2112
    vals = otf[rows, cols]
    out = torch.from_numpy(np.concatenate([vals.real, vals.imag]))[None]
    G = filter_from_output(out)
    patch = rng.random((1, PATCH, PATCH))
    restored = apply_filters(torch.from_numpy(patch), G)[0].numpy()
    ref = _circular(patch[0], kernel)[16:49, 16:49]
    np.testing.assert_allclose(restored, ref, atol=1e-10)
    # identity filter returns the patch centre exactly
    ident = apply_filters(torch.from_numpy(patch), filter_from_output(identity_filter(1, torch.float64)))
    np.testing.assert_allclose(ident[0].numpy(), patch[0, 16:49, 16:49], atol=1e-12)


@pytest.mark.parametrize("shape, stride", [((40, 53), 1), ((70, 61), 8), ((97, 100), 16), ((10, 12), 4)])
def test_patch_decomposition_and_recombination_exact_for_identity(rng, shape, stride):
    img = torch.from_numpy(rng.random(shape))
    patches, layout = image_to_patches(img, stride)
    assert patches.shape[1:] == (PATCH, PATCH)
    centres = apply_filters(patches, filter_from_output(identity_filter(patches.shape[0], torch.float64)))
    out = patches_to_image(centres, layout)
    assert out.shape == shape
    np.testing.assert_allclose(out.numpy(), img.numpy(), atol=1e-12)


def test_recombination_is_a_weighted_average(rng):
    """Patch centres that disagree: every output pixel lies between their min and max."""
    img = torch.from_numpy(rng.random((50, 50)))
    patches, layout = image_to_patches(img, 8)
    centres = torch.from_numpy(rng.random((patches.shape[0], CENTRE, CENTRE)))
    out = patches_to_image(centres, layout)
    assert float(out.min()) >= float(centres.min()) and float(out.max()) <= float(centres.max())
    const = patches_to_image(torch.full_like(centres, 0.3), layout)
    np.testing.assert_allclose(const.numpy(), 0.3, atol=1e-12)


def test_network_sizes_and_identity_init():
    # the paper's nw_wts.m: 1024 units per first-level group, 2048 at level 2, 5 x 4096 globals
    sz = 1024
    paper = (sz * (81 + 208) + sz) + 2 * (sz * 416 + sz) + 2 * (2 * sz * 2 * sz + 2 * sz) \
        + (4 * sz * 4 * sz + 4 * sz) + 4 * (4 * sz * 4 * sz + 4 * sz) + (4224 * 4 * sz + 4224)
    with torch.device("meta"):
        net = ChakrabartiNet(**SIZES["paper"])
    assert sum(p.numel() for p in net.parameters()) == paper == 110_755_968
    torch.manual_seed(0)
    small = ChakrabartiNet(**SIZES["tiny"])
    p = torch.rand(4, PATCH, PATCH)
    np.testing.assert_allclose(small.restore(p).detach().numpy(), p[:, 16:49, 16:49].numpy(), atol=0.05)


def test_whitening_decorrelates(rng):
    torch.manual_seed(0)
    net = ChakrabartiNet(**SIZES["tiny"])
    x = torch.from_numpy(rng.random((600, PATCH, PATCH))).float()
    x = torch.from_numpy(ndi.uniform_filter(x.numpy(), (1, 3, 3))).float()  # correlated pixels
    net.fit_whitening(x)
    for b in net.bands(x):
        cov = np.cov(b.double().numpy().T)
        np.testing.assert_allclose(np.diag(cov), 1.0, atol=0.02)
        assert np.abs(cov - np.diag(np.diag(cov))).max() < 0.02


def test_network_refuses_bad_input():
    net = ChakrabartiNet(**SIZES["tiny"])
    with pytest.raises(ImageError, match="patches"):
        net(torch.rand(2, 33, 33))
    with pytest.raises(ConfigError, match="h1"):
        ChakrabartiNet(h1=0)


# ------------------------------------------------------------------------------------ eq. 8

def test_normal_equations_match_direct_objective(rng):
    x = rng.normal(size=(3, 20, 24))
    y = rng.normal(size=(3, 20, 24))
    H, b, c = kernel_normal_equations(torch.from_numpy(x), torch.from_numpy(y), 5)
    for _ in range(3):
        k = rng.normal(size=(5, 5))
        direct = 0.5 * sum(((_circular(x[j], k) - y[j]) ** 2).sum() for j in range(3))
        quad = 0.5 * k.ravel() @ H.numpy() @ k.ravel() - b.numpy() @ k.ravel() + c
        assert abs(direct - quad) < 1e-9 * max(1.0, abs(direct))
    np.testing.assert_allclose(H.numpy(), H.numpy().T, atol=1e-10)


def test_project_simplex_against_bisection(rng):
    for _ in range(5):
        v = torch.from_numpy(rng.normal(size=30) * 2)
        p = project_simplex(v).numpy()
        lo, hi = float(v.min()) - 1, float(v.max())
        for _ in range(200):                               # sum(max(v - t, 0)) = 1 by bisection
            t = (lo + hi) / 2
            lo, hi = (t, hi) if np.maximum(v.numpy() - t, 0).sum() > 1 else (lo, t)
        np.testing.assert_allclose(p, np.maximum(v.numpy() - lo, 0), atol=1e-10)
    s = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    np.testing.assert_allclose(project_simplex(s).numpy(), s.numpy(), atol=1e-15)


def _noisy_problem(camera, rng, ks=9):
    x = camera[100:164, 100:164].astype(np.float64)
    k = camera_shake_kernel(ks, seed=5).astype(np.float64)
    feats = np.stack([np.roll(x, -1, 1) - x, np.roll(x, -1, 0) - x])
    ys = np.stack([_circular(f, k) for f in feats]) + rng.normal(0, 0.01, feats.shape)
    return torch.from_numpy(feats), torch.from_numpy(ys), k


def test_qp_simplex_matches_scipy_nnls_and_kkt(camera, rng):
    x, y, _ = _noisy_problem(camera, rng)
    H, b, _ = kernel_normal_equations(x, y, 9)
    k = solve_kernel_qp(H, b, iterations=5000, tol=1e-13).numpy()
    assert k.min() >= 0 and abs(k.sum() - 1) < 1e-12
    f = lambda v: 0.5 * v @ H.numpy() @ v - b.numpy() @ v  # noqa: E731
    # independent reference: NNLS (Lawson-Hanson) with the sum constraint as a heavy extra row
    ev, V = np.linalg.eigh(H.numpy())
    A = (V * np.sqrt(np.clip(ev, 0, None))).T
    d = np.linalg.lstsq(A.T, b.numpy(), rcond=None)[0]
    w = 1e3 * np.sqrt(ev.max())
    ref, _ = scipy.optimize.nnls(np.vstack([A, w * np.ones((1, 81))]), np.append(d, w), maxiter=20000)
    ref /= ref.sum()
    assert f(k) <= f(ref) + 1e-8 * abs(f(ref))
    # KKT of the simplex-constrained QP: gradient equal on the support, not smaller off it
    g = H.numpy() @ k - b.numpy()
    on = k > 1e-9
    mu = g[on].mean()
    assert np.abs(g[on] - mu).max() < 1e-5 * np.abs(g).max()
    assert (g[~on] >= mu - 1e-5 * np.abs(g).max()).all()


def test_qp_nonneg_lambda_sparsifies(camera, rng):
    x, y, _ = _noisy_problem(camera, rng)
    H, b, _ = kernel_normal_equations(x, y, 9)
    s = float(torch.diagonal(H).mean())
    nnz = []
    for lam in (0.0, 1e-3, 1e-2):
        k = solve_kernel_qp(H / s, b / s, mode="nonneg", lam=lam, iterations=3000).numpy()
        assert k.min() >= 0 and abs(k.sum() - 1) < 1e-12
        nnz.append(int((k > 1e-9).sum()))
    assert nnz[0] >= nnz[1] >= nnz[2] and nnz[0] > nnz[2]
    with pytest.raises(ConfigError, match="mode"):
        solve_kernel_qp(H, b, mode="l2")
    with pytest.raises(ConfigError, match="lam"):
        solve_kernel_qp(H, b, lam=-1.0)


def test_eq8_recovers_known_kernel_circular(camera):
    sharp = camera[120:220, 140:240].astype(np.float64)
    k = camera_shake_kernel(13, seed=11).astype(np.float64)
    blurred = _circular(sharp, k)
    est = kernel_from_latent(blurred, sharp, 15, edge_fraction=None, boundary="circular", iterations=4000)
    assert est.shape == (15, 15) and est.dtype == np.float32
    validate_kernel(est)
    np.testing.assert_allclose(est, pad_kernel(k, 15), atol=1e-4)


def test_eq8_recovers_known_kernel_real_boundary(camera):
    """A non-periodic blur (reflect boundary, 0.5 % noise), the default border taper."""
    sharp = camera[100:260, 120:280]
    k = camera_shake_kernel(15, seed=3)
    blurred = blur(sharp, k, boundary="reflect") + np.random.default_rng(1).normal(0, 0.005, sharp.shape)
    est = kernel_from_latent(blurred, sharp, 19, edge_fraction=None)
    validate_kernel(est)
    assert np.abs(est - pad_kernel(k, 19)).sum() < 0.25            # L1 distance, out of 2
    assert np.abs(est - pad_kernel(k, 19)).sum() < 0.2 * np.abs(pad_kernel(np.ones((1, 1)), 19) - pad_kernel(k, 19)).sum()


def test_eq8_refuses_bad_arguments():
    a = np.zeros((40, 40))
    with pytest.raises(ConfigError, match="kernel_size"):
        kernel_from_latent(a, a, 8)
    with pytest.raises(ImageError, match="one shape"):
        kernel_from_latent(a, np.zeros((40, 41)), 9)
    with pytest.raises(ConfigError, match="edge_fraction"):
        kernel_from_latent(a, a, 9, edge_fraction=2.0)
    with pytest.raises(ImageError, match="too small"):
        kernel_from_latent(np.zeros((20, 20)), np.zeros((20, 20)), 15)


def test_derivative_filters_are_derivatives():
    f = derivative_filters()
    assert f.shape == (16, 11, 11)
    np.testing.assert_allclose(f.sum(axis=(1, 2)), 0, atol=1e-5)   # kill constants (11-tap truncation)
    ramp = np.add.outer(np.arange(11.0), np.zeros(11))                    # vertical ramp
    assert abs((f[0] * ramp).sum()) > 0.1 and abs((f[4] * ramp).sum()) < 1e-12  # 0 and 90 degrees


# ------------------------------------------------------------------------------------ pipeline

def test_pipeline_end_to_end_untrained(camera):
    k = camera_shake_kernel(9, seed=2)
    b = np.clip(blur(camera[200:296, 200:296], k), 0, 1).astype(np.float32)
    est = Chakrabarti2016Estimator(weights=None, kernel_size=15, options=SIZES["tiny"], stride=16)
    assert est.kind == "uniform"
    kern = est.estimate_kernel(b)
    assert kern.shape == (15, 15) and kern.dtype == np.float32
    validate_kernel(kern)
    latent = est.sharp_estimate(b)
    assert latent.shape == b.shape and np.abs(latent - b).max() < 0.1   # untrained: ~identity filters
    out = est.deblur(np.repeat(b[:, :, None], 3, axis=2))
    assert out.shape == (96, 96, 3) and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1


def test_estimator_refuses_bad_options():
    with pytest.raises(ConfigError, match="stride"):
        Chakrabarti2016Estimator(weights=None, stride=0)
    with pytest.raises(ConfigError, match="mode"):
        Chakrabarti2016Estimator(weights=None, mode="x")
    with pytest.raises(ConfigError, match="unknown"):
        Chakrabarti2016Estimator(weights=None, options={"width": 3})
    est = Chakrabarti2016Estimator(weights=None, options=SIZES["tiny"])
    with pytest.raises(ImageError, match="dtype"):
        est.estimate_kernel(np.zeros((64, 64), np.int32))
