"""Sun et al. 2015 (survey eq. 9-12): kernel labels, the rotation trick, eq. 11, the eq. 12 MRF and
its TRW-S solver, the dense patch CNN, and the pipeline end to end."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from deblurkit.blur.kernels import linear_motion_kernel
from deblurkit.blur.nonuniform import motion_field_kernels
from deblurkit.errors import ConfigError, ImageError, WeightsError
from deblurkit.estimation import sun2015 as S
from deblurkit.estimation.base import EstimatorModule, MotionFieldEstimator


# --------------------------------------------------------------------------------------------
# labels
# --------------------------------------------------------------------------------------------

def test_kernel_sets_are_the_papers():
    assert len(S.BASE_KERNELS) == 73 and len(S.EXTENDED_KERNELS) == 361
    assert S.LENGTHS == tuple(range(1, 26, 2)) and S.BASE_ORIENTATIONS == (0, 30, 60, 90, 120, 150)
    assert S.BASE_KERNELS[0] == (1, 0) and sum(l == 1 for l, _ in S.BASE_KERNELS) == 1
    assert len(set(S.BASE_KERNELS)) == 73 and len(set(S.EXTENDED_KERNELS)) == 361
    assert set(S.BASE_KERNELS) <= set(S.EXTENDED_KERNELS)


def test_label_motion_round_trip_and_sign_invariance():
    labels = np.arange(361)
    u, v = S.label_to_motion(labels)
    assert np.array_equal(S.motion_to_label(u, v), labels)
    assert np.array_equal(S.motion_to_label(-u, -v), labels)      # (u, v) ~ (-u, -v)
    base = np.arange(73)
    ub, vb = S.label_to_motion(base, S.BASE_KERNELS)
    assert np.array_equal(S.motion_to_label(ub, vb, S.BASE_KERNELS), base)
    # known values: (25, 90) is 24 px vertical, (3, 0) 2 px horizontal, (1, 0) no motion
    idx = {k: i for i, k in enumerate(S.EXTENDED_KERNELS)}
    uu, vv = S.label_to_motion(np.array([idx[(25, 90)], idx[(3, 0)], idx[(1, 0)]]))
    np.testing.assert_allclose(uu, [0, 2, 0], atol=1e-5)
    np.testing.assert_allclose(vv, [-24, 0, 0], atol=1e-5)
    with pytest.raises(ConfigError, match="labels"):
        S.label_to_motion(np.array([361]))


@pytest.mark.parametrize("length, angle", [(9, 30), (15, 120), (25, 174), (5, 90)])
def test_label_motion_is_the_linear_motion_kernel(length, angle):
    """The motion vector of a label, blurred as a constant field, is the streak of
    linear_motion_kernel(length, angle) (independent rasterisation; docs say ~2 % apart)."""
    idx = S.EXTENDED_KERNELS.index((length, angle))
    u, v = S.label_to_motion(np.array([[idx]]))
    ours = motion_field_kernels(u.astype(np.float64), v.astype(np.float64), 29)[0, 0]
    ref = linear_motion_kernel(length, angle, size=29)
    assert np.abs(ours - ref).sum() < 0.25
    # same second moments (orientation and extent)
    yy, xx = np.mgrid[-14:15, -14:15]
    for w in (xx * xx, yy * yy, xx * yy):
        assert abs((ours * w).sum() - (ref * w).sum()) < 0.1 * max(1.0, (ref * (xx**2 + yy**2)).sum())


# --------------------------------------------------------------------------------------------
# rotation trick
# --------------------------------------------------------------------------------------------

def test_rotation_label_map_is_consistent():
    m = S.rotation_label_map()
    assert m.shape == (5, 73)
    for r, theta in enumerate(S.ROTATIONS):
        for b, (length, o) in enumerate(S.BASE_KERNELS):
            ext = S.EXTENDED_KERNELS[m[r, b]]
            assert ext == ((1, 0) if length == 1 else (length, (o + theta) % 180))
    blurred = m[:, 1:].ravel()
    assert sorted(blurred.tolist()) == list(range(1, 361))        # each once
    assert (m[:, 0] == 0).all()


def test_extend_probabilities_is_a_mixture():
    rng = np.random.default_rng(0)
    p = rng.random((3, 5, 73))
    p /= p.sum(-1, keepdims=True)
    ext = S.extend_probabilities(p)
    assert ext.shape == (3, 361)
    np.testing.assert_allclose(ext.sum(-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(ext[:, 0], p[:, :, 0].mean(1), atol=1e-12)
    m = S.rotation_label_map()
    np.testing.assert_allclose(ext[1, m[2, 40]], p[1, 2, 40] / 5, atol=1e-12)
    with pytest.raises(ConfigError, match="probs"):
        S.extend_probabilities(np.ones((2, 4, 73)))


def _moment_angle(img: np.ndarray) -> float:
    """Orientation (degrees, counter-clockwise on screen, mod 180) of the principal axis of an
    intensity image's second moments."""
    yy, xx = np.mgrid[: img.shape[0], : img.shape[1]].astype(np.float64)
    w = img / img.sum()
    cx, cy = (w * xx).sum(), (w * yy).sum()
    cov = np.array([[(w * (xx - cx) ** 2).sum(), (w * (xx - cx) * (yy - cy)).sum()],
                    [(w * (xx - cx) * (yy - cy)).sum(), (w * (yy - cy) ** 2).sum()]])
    vals, vecs = np.linalg.eigh(cov)
    d = vecs[:, 1]
    return math.degrees(math.atan2(-d[1], d[0])) % 180


def _angle_diff(a: float, b: float) -> float:
    return abs((a - b + 90) % 180 - 90)


@pytest.mark.parametrize("orientation, theta", [(36, 6), (60, 24), (150, 12), (100, 18)])
def test_rotating_by_minus_theta_maps_orientation_to_the_base_class(orientation, theta):
    """A streak at orientation o + ... read with patch_grid(angle=-theta) lies at o - theta: the
    rotation trick's assumption (blur at o_b + theta in the image is class o_b in the patch)."""
    streak = np.pad(linear_motion_kernel(21, orientation, size=23), 19)   # 61 x 61
    assert _angle_diff(_moment_angle(streak), orientation) < 1.0
    img = torch.from_numpy(streak)[None, None].double()
    x, y = S.patch_grid(np.array([30.0]), np.array([30.0]), -theta, size=40)
    patch = S.sample_patches(img, x, y)[0, 0].numpy()
    assert _angle_diff(_moment_angle(patch), orientation - theta) < 1.5
    # the same through rotated_canvas
    canvas, (px, py) = S.rotated_canvas(img, -theta, 5, np.array([30.0]), np.array([30.0]))
    cx, cy = int(round(px[0])), int(round(py[0]))      # where the image centre landed
    centre = canvas[0, 0].numpy()[cy - 20: cy + 21, cx - 20: cx + 21].clip(0)
    assert _angle_diff(_moment_angle(centre), orientation - theta) < 1.5


def test_rotated_canvas_positions_and_exact_zero_rotation(rng):
    img = rng.random((21, 17))
    t = torch.from_numpy(img)[None, None]
    canvas, (px, py) = S.rotated_canvas(t, 0.0, 7, np.array([0.0, 16.0]), np.array([0.0, 20.0]))
    # grid_sample's normalised coordinates round: "exact" means to a few ulps
    np.testing.assert_allclose(canvas[0, 0].numpy(), np.pad(img, 7, mode="reflect"), atol=1e-12)
    np.testing.assert_allclose(px, [7, 23]) and np.testing.assert_allclose(py, [7, 27])
    # rotated: the canvas read at the returned positions gives back the image (a smooth one)
    smooth = ndi.gaussian_filter(rng.random((40, 50)), 3)
    ts = torch.from_numpy(smooth)[None, None]
    yy, xx = np.meshgrid(np.arange(8.0, 32), np.arange(8.0, 42), indexing="ij")
    canvas, (px, py) = S.rotated_canvas(ts, -18.0, 10, xx, yy)
    back = S.sample_patches(canvas, px[None], py[None])[0, 0].numpy()
    err = np.abs(back - smooth[8:32, 8:42]).max()
    assert err < 4e-3                      # two bilinear interpolations of a smooth image
    wrong, _ = S.rotated_canvas(ts, +18.0, 10, xx, yy)   # the other direction does not fit
    assert np.abs(S.sample_patches(wrong, px[None], py[None])[0, 0].numpy()
                  - smooth[8:32, 8:42]).max() > 10 * err


# --------------------------------------------------------------------------------------------
# the network
# --------------------------------------------------------------------------------------------

def test_local_normalise_matches_scipy(rng):
    img = rng.random((2, 1, 40, 37))
    ours = S.local_normalise(torch.from_numpy(img), radius=4, eps=0.05).numpy()
    for b in range(2):
        mean = ndi.uniform_filter(img[b, 0], 9, mode="mirror")
        sq = ndi.uniform_filter(img[b, 0] ** 2, 9, mode="mirror")
        ref = (img[b, 0] - mean) / (np.sqrt(np.maximum(sq - mean**2, 0)) + 0.05)
        np.testing.assert_allclose(ours[b, 0], ref, atol=1e-9)


@pytest.mark.parametrize("f5_stride", [1, 2])
def test_dense_evaluation_equals_patch_classification(rng, f5_stride):
    torch.manual_seed(1)
    net = S.Sun2015Net(conv1=4, conv3=6, hidden=8).double().eval()
    img = torch.from_numpy(rng.standard_normal((1, 1, 47, 53)))
    with torch.no_grad():
        dense = net(img, f5_stride=f5_stride)
        # pooled map 8 x 9; F5 (4x4) at stride 1 -> 5 x 6, at stride 2 -> 3 x 3
        assert dense.shape == ((1, 73, 5, 6) if f5_stride == 1 else (1, 73, 3, 3))
        step = 4 * f5_stride
        for i, j in [(0, 0), (1, 2), (dense.shape[2] - 1, dense.shape[3] - 1)]:
            patch = img[:, :, step * i: step * i + 30, step * j: step * j + 30]
            torch.testing.assert_close(net.classify(patch)[0], dense[0, :, i, j])
    assert net.classify(img[:, :, :30, :30]).shape == (1, 73)
    with pytest.raises(ImageError, match="30"):
        net(torch.zeros(1, 1, 20, 40))
    with pytest.raises(ConfigError, match="conv1"):
        S.Sun2015Net(conv1=0)


def test_sizes_parameter_counts():
    counts = {k: sum(p.numel() for p in S.create_network(k).parameters()) for k in S.SIZES}
    # paper: C1 96x(7x7) + C3 256x96x(5x5) + F5 (256x4x4)->1024 + S6 1024->73, with biases
    assert counts["paper"] == 96 * 49 + 96 + 256 * 96 * 25 + 256 + 4096 * 1024 + 1024 + 1024 * 73 + 73
    assert counts["cpu"] < counts["paper"] / 10
    with pytest.raises(ConfigError, match="size"):
        S.create_network("huge")


# --------------------------------------------------------------------------------------------
# eq. 11
# --------------------------------------------------------------------------------------------

def test_gaussian_confidence_matches_a_hand_computation():
    probs = np.array([[[0.9, 0.1], [0.2, 0.8]],
                      [[0.5, 0.5], [0.0, 1.0]]])            # patches at (0,0),(0,4),(4,0),(4,4)
    cy = cx = np.array([0, 4])
    qy, qx = np.array([1, 4]), np.array([2])
    sigma, half = 3.0, 3.5
    ours = S.gaussian_confidence(probs, cy, cx, qy, qx, sigma=sigma, half=half)
    # pixel (1, 2): all four patches contain it (|d| <= 3.5 on both axes)
    d2 = {(0, 0): 1 + 4, (0, 1): 1 + 4, (1, 0): 9 + 4, (1, 1): 9 + 4}
    w = {k: math.exp(-d / (2 * sigma**2)) for k, d in d2.items()}
    ref = sum(w[k] * probs[k] for k in w) / sum(w.values())
    np.testing.assert_allclose(ours[0, 0], ref, atol=1e-12)
    # pixel (4, 2): only the patches of row 4 contain it (row 0 is 4 > 3.5 away)
    w2 = math.exp(-4 / 18)
    ref2 = (w2 * probs[1, 0] + w2 * probs[1, 1]) / (2 * w2)
    np.testing.assert_allclose(ours[1, 0], ref2, atol=1e-12)
    np.testing.assert_allclose(ours.sum(-1), 1.0, atol=1e-12)
    with pytest.raises(ConfigError, match="no patch"):
        S.gaussian_confidence(probs, cy, cx, np.array([20]), qx, sigma=sigma, half=half)
    with pytest.raises(ConfigError, match="sigma"):
        S.gaussian_confidence(probs, cy, cx, qy, qx, sigma=0.0)


# --------------------------------------------------------------------------------------------
# eq. 12
# --------------------------------------------------------------------------------------------

def test_mrf_energy_matches_a_hand_computation():
    unary = np.array([[[1.0, 2.0], [0.5, 3.0]]])                  # 1 x 2 grid, 2 labels
    vec = np.array([[0.0, 0.0], [3.0, 4.0]])
    labels = np.array([[1, 0]])
    assert S.mrf_energy(labels, unary, vec, 0.1) == pytest.approx(2.0 + 0.5 + 0.1 * 25)
    # symmetric: (3, 4) vs (-3, -4) are the same blur
    vec2 = np.array([[-3.0, -4.0], [3.0, 4.0]])
    assert S.mrf_energy(labels, unary, vec2, 0.1) == pytest.approx(2.5)
    assert S.mrf_energy(labels, unary, vec2, 0.1, symmetric=False) == pytest.approx(2.5 + 10.0)


@pytest.mark.parametrize("symmetric", [True, False])
def test_mrf_finds_the_brute_force_optimum_on_a_tiny_grid(symmetric):
    h, w, l = 2, 3, 3
    for seed in range(8):
        rng = np.random.default_rng(seed)
        unary = rng.random((h, w, l))
        vec = rng.normal(size=(l, 2))
        lam = float(rng.uniform(0.05, 0.5))
        labels, info = S.solve_mrf(unary, vec, lam, candidates=3, iterations=10,
                                   symmetric=symmetric)
        best = min(S.mrf_energy(np.array(c).reshape(h, w), unary, vec, lam, symmetric=symmetric)
                   for c in itertools.product(range(l), repeat=h * w))
        assert info["energy"] == pytest.approx(best, abs=1e-12)
        assert S.mrf_energy(labels, unary, vec, lam, symmetric=symmetric) == pytest.approx(best)


def test_mrf_lowers_the_energy_of_the_unsmoothed_field_and_recovers_a_smooth_field():
    """Noisy confidences over the 361 labels around a smooth true field: the MRF's energy is
    below the arg-max field's, and its labels are closer to the truth."""
    rng = np.random.default_rng(3)
    h, w = 12, 14
    vec = S.kernel_motion()
    yy, xx = np.mgrid[:h, :w]
    tu, tv = 8 + 0.5 * xx, -4 + 0.3 * yy
    truth = S.motion_to_label(tu, tv)
    d = np.minimum(((vec[None, None] - np.stack([tu, tv], -1)[:, :, None]) ** 2).sum(-1),
                   ((vec[None, None] + np.stack([tu, tv], -1)[:, :, None]) ** 2).sum(-1))
    conf = np.exp(-d / 8.0) + 1.5 * rng.random((h, w, 361))
    conf /= conf.sum(-1, keepdims=True)
    labels, info = S.solve_mrf(-conf, vec, 2e-4, candidates=16, iterations=5)
    argmax = conf.argmax(-1)
    e_arg = S.mrf_energy(argmax, -conf, vec, 2e-4)
    assert info["energy_argmax"] == pytest.approx(e_arg)
    assert info["energy"] < e_arg - 1e-6
    err = lambda lab: np.abs(vec[lab] - vec[truth]).sum(-1).mean()   # noqa: E731
    assert err(labels) < err(argmax)
    assert labels.dtype == np.int64 and labels.shape == (h, w)


def test_mrf_refuses_bad_arguments():
    with pytest.raises(ConfigError, match="unary"):
        S.solve_mrf(np.zeros((2, 2)), np.zeros((2, 2)), 1.0)
    with pytest.raises(ConfigError, match="vectors"):
        S.solve_mrf(np.zeros((2, 2, 3)), np.zeros((2, 2)), 1.0)
    with pytest.raises(ConfigError, match="smoothness"):
        S.solve_mrf(np.zeros((2, 2, 2)), np.zeros((2, 2)), -1.0)
    with pytest.raises(ConfigError, match="candidates"):
        S.solve_mrf(np.zeros((2, 2, 2)), np.zeros((2, 2)), 1.0, candidates=0)


# --------------------------------------------------------------------------------------------
# the pipeline
# --------------------------------------------------------------------------------------------

def test_pipeline_runs_end_to_end(astronaut):
    est = S.Sun2015Estimator()
    assert isinstance(est, MotionFieldEstimator) and est.kind == "nonuniform"
    img = np.ascontiguousarray(astronaut[100:149:1, 200:262])      # 49 x 62 RGB
    u, v = est.estimate_motion_field(img)
    assert u.shape == v.shape == (49, 62) and u.dtype == v.dtype == np.float32
    assert np.isfinite(u).all() and np.isfinite(v).all()
    labels = S.motion_to_label(u, v)
    ru, rv = S.label_to_motion(labels)
    np.testing.assert_allclose(ru, u, atol=1e-5) and np.testing.assert_allclose(rv, v, atol=1e-5)
    assert est.last_info["energy"] <= est.last_info["energy_argmax"] + 1e-12
    out = est.deblur(img)
    assert out.shape == img.shape and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    grey_out = est.deblur(img[:, :, 1])
    assert grey_out.shape == (49, 62)
    wrapped = EstimatorModule(est)
    assert any(True for _ in wrapped.parameters())
    y = wrapped(torch.from_numpy(img).permute(2, 0, 1)[None])
    assert y.shape == (1, 3, 49, 62)


def test_known_blur_is_recovered_by_a_perfect_classifier(camera):
    """With a stand-in network that always answers one class (and the 73 classes alone, no
    rotation trick), the pipeline returns that class's motion at every pixel."""
    class Fixed(S.Sun2015Net):
        def forward(self, x, f5_stride=1):
            out = super().forward(x, f5_stride)
            logits = torch.full_like(out, -30.0)
            logits[:, S.BASE_KERNELS.index((13, 60))] = 0.0
            return logits

    est = S.Sun2015Estimator(Fixed(conv1=2, conv3=2, hidden=2), rotations=False)
    u, v = est.estimate_motion_field(camera[:40, :44])
    np.testing.assert_allclose(u, 12 * math.cos(math.radians(60)), atol=1e-5)
    np.testing.assert_allclose(v, -12 * math.sin(math.radians(60)), atol=1e-5)


def test_bad_inputs_and_options_are_refused():
    est = S.Sun2015Estimator()
    with pytest.raises(ImageError, match="image"):
        est.estimate_motion_field(np.zeros((20, 20), dtype=np.uint8))
    bad = np.zeros((20, 20), dtype=np.float32)
    bad[3, 3] = np.nan
    with pytest.raises(ImageError, match="non-finite"):
        est.deblur(bad)
    with pytest.raises(ImageError, match="shape"):
        est.deblur(np.zeros((2, 20, 20, 3), dtype=np.float32))
    for opt, value in [("stride", 6), ("mrf_step", 0), ("sigma", -1.0), ("smoothness", -1.0),
                       ("deconv_iterations", 0), ("size", "huge")]:
        with pytest.raises(ConfigError, match=opt):
            S.Sun2015Estimator(**{opt: value})


def test_weights_round_trip(tmp_path, camera):
    from deblurkit.models.weights import save_weights

    torch.manual_seed(5)
    net = S.Sun2015Net(conv1=3, conv3=4, hidden=5)
    path = tmp_path / "s.safetensors"
    digest = save_weights(net, path, metadata={"model": "sun2015",
                                               "options": {"conv1": 3, "conv3": 4, "hidden": 5}})
    a = S.Sun2015Estimator(net, mrf_step=8)
    b = S.Sun2015Estimator.from_file(path, sha256=digest, mrf_step=8)
    img = camera[:48, :48]
    np.testing.assert_array_equal(a.estimate_motion_field(img)[0], b.estimate_motion_field(img)[0])
    other = tmp_path / "g.safetensors"
    save_weights(net, other, metadata={"model": "gong2017", "options": {}})
    with pytest.raises(WeightsError, match="gong2017"):
        S.Sun2015Estimator.from_file(other)
    with pytest.raises(WeightsError, match="not in the weights registry"):
        S.Sun2015Estimator.from_pretrained("no-such-weights")


def test_registry_factory(tmp_path, monkeypatch, camera):
    """``load`` (the factory the estimation registry uses): shipped weights through a registry
    entry (sha256 checked), a file, or untrained; bad options refused."""
    from deblurkit import paths
    from deblurkit.models import registry
    from deblurkit.models.weights import save_weights

    options = {"conv1": 3, "conv3": 4, "hidden": 5}
    torch.manual_seed(3)
    net = S.Sun2015Net(**options)
    digest = save_weights(net, tmp_path / "sun2015.safetensors",
                          metadata={"model": "sun2015", "options": options})
    entry = {"model": "sun2015", "file": "sun2015.safetensors", "sha256": digest, "options": options}
    monkeypatch.setattr(paths, "weights_dir", lambda: tmp_path)
    monkeypatch.setattr(registry, "weights_registry", lambda: {"sun2015": entry})
    shipped = S.load(mrf_step=8)
    from_file = S.load(tmp_path / "sun2015.safetensors", mrf_step=8)
    img = camera[:40, :40]
    np.testing.assert_array_equal(shipped.estimate_motion_field(img)[1],
                                  from_file.estimate_motion_field(img)[1])
    assert isinstance(S.load(None, size="cpu"), S.Sun2015Estimator)
    with pytest.raises(ConfigError, match="bogus"):
        S.load(None, bogus=1)
    with pytest.raises(ConfigError, match="size"):
        S.load(size="paper")
    monkeypatch.setattr(registry, "weights_registry",
                        lambda: {"sun2015": {**entry, "sha256": "0" * 64}})
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        S.load()
    monkeypatch.setattr(registry, "weights_registry", lambda: {})
    with pytest.raises(WeightsError, match="not in the weights registry"):
        S.load()


# --------------------------------------------------------------------------------------------
# the faster pipeline computes what the straightforward code computed (issue 4 speed work)
# --------------------------------------------------------------------------------------------

def test_extend_probabilities_equals_the_scatter_add_to_the_bit():
    rng = np.random.default_rng(11)
    p = rng.random((4, 7, 5, 73))
    p /= p.sum(-1, keepdims=True)
    flat = p.reshape(-1, 5 * 73) / 5
    ref = np.zeros((flat.shape[0], 361))
    np.add.at(ref.T, S.rotation_label_map().ravel(), flat.T)       # the previous formulation
    ours = S.extend_probabilities(p)
    assert ours.shape == (4, 7, 361)
    assert np.array_equal(ours.reshape(-1, 361), ref)
    assert np.array_equal(S.extend_probabilities(torch.from_numpy(p)), ours)


@pytest.mark.parametrize("stride, step", [(4, 4), (8, 4), (4, 1), (8, 3)])
def test_gaussian_confidence_equals_a_dense_contraction(stride, step):
    """The banded sparse products equal the dense double sum of eq. 11 (numpy einsum)."""
    rng = np.random.default_rng(stride + step)
    h, w = 37, 53
    cy, cx = np.arange(0, h, stride), np.arange(0, w, stride)
    qy, qx = S.lattice(h, step), S.lattice(w, step)
    probs = rng.random((len(cy), len(cx), 9))
    probs /= probs.sum(-1, keepdims=True)
    wy = np.exp(-0.5 * ((qy[:, None] - cy[None]) / 5.0) ** 2) * (np.abs(qy[:, None] - cy) <= 15)
    wx = np.exp(-0.5 * ((qx[:, None] - cx[None]) / 5.0) ** 2) * (np.abs(qx[:, None] - cx) <= 15)
    ref = np.einsum("ij,kl,jlc->ikc", wy, wx, probs) / (wy.sum(1)[:, None, None]
                                                        * wx.sum(1)[None, :, None])
    ours = S.gaussian_confidence(probs, cy, cx, qy, qx, sigma=5.0)
    np.testing.assert_allclose(ours, ref, rtol=1e-13, atol=0)


def test_smallest_equals_a_stable_argsort_with_ties():
    rng = np.random.default_rng(12)
    values = rng.integers(0, 6, (9, 11, 40)).astype(np.float64)    # many ties at every cut
    values[0, 0] = 1.0                                             # all tied
    values[1, 1, :] = np.arange(40)[::-1]
    values[2, 2, -3:] = -1.0                                       # ties among the smallest
    for k in (1, 3, 12, 39, 40, 55):
        ref = np.argsort(values, axis=2, kind="stable")[:, :, :k]
        assert np.array_equal(S._smallest(values, k), ref), k
    real = rng.random((6, 7, 361))
    assert np.array_equal(S._smallest(real, 12),
                          np.argsort(real, axis=2, kind="stable")[:, :, :12])


def test_read_map_equals_the_bilinear_expression_to_the_bit():
    rng = np.random.default_rng(13)
    prob = torch.from_numpy(rng.random((1, 6, 9, 13)))
    fx = rng.uniform(-2, 15, (5, 7))                              # clamped outside the map
    fy = rng.uniform(-2, 11, (5, 7))
    fx[0, :3], fy[0, :3] = [0.0, 12.0, 4.0], [0.0, 8.0, 3.0]      # integer reads are exact
    m = prob[0].permute(1, 2, 0).numpy()
    cx, cy = np.clip(fx, 0, 12), np.clip(fy, 0, 8)
    x0, y0 = np.floor(cx).astype(int), np.floor(cy).astype(int)
    x1, y1 = np.minimum(x0 + 1, 12), np.minimum(y0 + 1, 8)
    ax, ay = (cx - x0)[..., None], (cy - y0)[..., None]
    ref = ((1 - ay) * ((1 - ax) * m[y0, x0] + ax * m[y0, x1])
           + ay * ((1 - ax) * m[y1, x0] + ax * m[y1, x1]))
    assert np.array_equal(S._read_map(prob, fx, fy), ref)
    assert np.array_equal(S._read_map(prob, fx, fy)[0, 1], m[8, 12])
    out = np.zeros((5, 7, 3, 6))
    S._read_map(prob, fx, fy, out=out[:, :, 1])
    assert np.array_equal(out[:, :, 1], ref) and not out[:, :, 0].any()


@pytest.mark.parametrize("shape", [(2, 3, 10, 12), (1, 4, 11, 9), (1, 1, 3, 2)])
def test_fast_max_pool_equals_max_pool2d(shape):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(14))
    ref = torch.nn.functional.max_pool2d(x, 2)
    assert torch.equal(S._max_pool2(x), ref)
    xr = x.clone().requires_grad_()                                 # autograd: max_pool2d
    out = S._max_pool2(xr)
    assert torch.equal(out, ref) and out.grad_fn is not None


def test_network_without_autograd_equals_with_autograd(rng):
    """The pooling/ReLU order and the strided pooling used without autograd change no value."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        net = S.create_network("cpu").eval()
    x = torch.from_numpy(rng.standard_normal((1, 1, 61, 75)).astype(np.float32))
    with torch.no_grad():
        fast = net(x)
    slow = net(x.clone().requires_grad_())
    c1 = torch.nn.functional.max_pool2d(torch.relu(net.c1(x)), 2)     # the paper's order
    c3 = torch.nn.functional.max_pool2d(torch.relu(net.c3(c1)), 2)
    ref = net.s6(torch.relu(net.f5(c3)))
    assert torch.equal(fast, slow.detach()) and torch.equal(fast, ref.detach())
