"""Gong et al. 2017 (survey eq. 13-17): canonical labels, the two-head FCN, the pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deblurkit.blur.nonuniform import blur_motion_field, canonical_motion_field, random_motion_field
from deblurkit.errors import ConfigError, ImageError, KernelError, WeightsError
from deblurkit.estimation import gong2017 as G
from deblurkit.estimation.base import EstimatorModule, MotionFieldEstimator


def test_canonical_labels_identify_opposite_motions(rng):
    u = rng.uniform(-20, 20, (30, 40))
    v = rng.uniform(-20, 20, (30, 40))
    u[:5] = 0.0                                      # the u = 0 tie-break (v >= 0)
    u[5:8] = rng.uniform(-0.4, 0.4, (3, 40))         # rounds to u = 0
    for a, b in [(u, v), (u.astype(np.float32), v.astype(np.float32))]:
        iu, iv = G.motion_to_labels(a, b, 20, 20)
        ju, jv = G.motion_to_labels(-a, -b, 20, 20)
        assert np.array_equal(iu, ju) and np.array_equal(iv, jv)
        assert iu.min() >= 0 and iu.max() <= 20 and iv.min() >= 0 and iv.max() <= 40
        assert iu.dtype == iv.dtype == np.int64
    # where u rounds to 0, the label has v >= 0
    iu, iv = G.motion_to_labels(u, v, 20, 20)
    assert (iv[iu == 0] >= 20).all()
    # torch input is accepted too
    tu, tv = G.motion_to_labels(torch.from_numpy(u), torch.from_numpy(v), 20, 20)
    assert np.array_equal(tu, iu) and np.array_equal(tv, iv)


def test_label_round_trip(rng):
    # every label pair maps to a canonical integer motion and back
    iu, iv = np.meshgrid(np.arange(13), np.arange(25), indexing="ij")
    u, v = G.labels_to_motion(iu, iv, 12)
    keep = ~((u == 0) & (v < 0))                     # not canonical: never produced
    ru, rv = G.motion_to_labels(u, v, 12, 12)
    assert np.array_equal(ru[keep], iu[keep]) and np.array_equal(rv[keep], iv[keep])
    # a real field: labels -> motion is the rounded canonical field, within 0.5 px per component
    fu, fv = random_motion_field(24, 32, 3, max_length=11.0, kind="rotation")
    lu, lv = G.motion_to_labels(fu, fv, 12, 12)
    mu, mv = G.labels_to_motion(lu, lv, 12)
    cu, cv = canonical_motion_field(np.rint(fu), np.rint(fv))
    assert np.array_equal(mu, cu) and np.array_equal(mv, cv)
    assert mu.dtype == np.float32
    err = np.minimum(np.hypot(mu - fu, mv - fv), np.hypot(mu + fu, mv + fv))
    assert err.max() <= np.sqrt(0.5) + 1e-6


def test_out_of_range_and_bad_fields_are_refused():
    with pytest.raises(KernelError, match="u: motion of 9 px exceeds u_max=8"):
        G.motion_to_labels(np.array([9.2]), np.array([0.0]), 8, 8)
    with pytest.raises(KernelError, match="v: .*v_max=4"):
        G.motion_to_labels(np.array([1.0]), np.array([-6.0]), 8, 4)
    with pytest.raises(KernelError, match="non-finite"):
        G.motion_to_labels(np.array([np.nan]), np.array([0.0]), 8, 8)
    with pytest.raises(KernelError, match="shape"):
        G.motion_to_labels(np.zeros(3), np.zeros(4), 8, 8)
    with pytest.raises(ConfigError, match="u_max"):
        G.motion_to_labels(np.zeros(3), np.zeros(3), 0, 8)


@pytest.mark.parametrize("shape", [(37, 53), (1, 1), (17, 16), (64, 33)])
def test_fcn_gives_per_pixel_distributions_for_any_size(shape):
    torch.manual_seed(0)
    net = G.MotionFlowFCN(widths=(4, 6, 8, 8), convs=1, u_max=5, v_max=7).eval()
    x = torch.rand(2, 1, *shape)
    with torch.no_grad():
        lu, lv = net(x)
    assert lu.shape == (2, 6, *shape) and lv.shape == (2, 15, *shape)
    for logits in (lu, lv):
        p = torch.softmax(logits, 1)
        assert torch.isfinite(p).all() and (p >= 0).all()
        torch.testing.assert_close(p.sum(1), torch.ones(2, *shape))
    # a crop is not the same input, but the first sample does not depend on the second
    with torch.no_grad():
        lu1, _ = net(x[:1])
    torch.testing.assert_close(lu1, lu[:1])
    with pytest.raises(ImageError, match=r"\(B, 1, H, W\)"):
        net(torch.zeros(1, 3, 8, 8))


def test_fcn_options_and_sizes():
    for bad in [dict(widths=[]), dict(widths=[4, 0]), dict(convs=0), dict(u_max=0)]:
        with pytest.raises(ConfigError, match="gong2017 option"):
            G.MotionFlowFCN(**bad)
    counts = {k: sum(p.numel() for p in G.create_network(k).parameters()) for k in G.SIZES}
    assert counts["cpu"] < 1_000_000 < 10_000_000 < counts["paper"]
    paper = G.create_network("paper")
    assert paper.head_u.out_channels == 37 and paper.head_v.out_channels == 73
    with pytest.raises(ConfigError, match="size"):
        G.create_network("huge")


def test_training_loss_decreases_on_a_constant_blur(camera):
    """The heads can learn: a few Adam steps on one blurred image lower the eq. 15-16 loss and
    the arg-max moves to the true labels (a sanity check that labels and logits line up)."""
    torch.manual_seed(0)
    net = G.MotionFlowFCN(widths=(8, 8), convs=1, u_max=6, v_max=6)
    sharp = torch.from_numpy(camera[200:248, 200:248])[None, None]
    u = torch.full((48, 48), -5.0)
    v = torch.full((48, 48), 3.0)
    blurred = blur_motion_field(sharp, u, v)
    iu, iv = (torch.from_numpy(a)[None] for a in G.motion_to_labels(u.numpy(), v.numpy(), 6, 6))
    assert int(iu[0, 0, 0]) == 5 and int(iv[0, 0, 0]) == 6 - 3     # canonical (5, -3)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    losses = []
    for _ in range(30):
        lu, lv = net(blurred)
        loss = torch.nn.functional.cross_entropy(lu, iu) + torch.nn.functional.cross_entropy(lv, iv)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
    est = G.Gong2017Estimator(net)
    fu, fv = est.estimate_motion_field(blurred[0, 0].numpy())
    assert (fu == 5).mean() > 0.9 and (fv == -3).mean() > 0.9


def test_pipeline_runs_end_to_end(astronaut):
    est = G.Gong2017Estimator()
    assert isinstance(est, MotionFieldEstimator) and est.kind == "nonuniform"
    img = np.ascontiguousarray(astronaut[50:91, 300:357])          # 41 x 57 RGB, odd sizes
    u, v = est.estimate_motion_field(img)
    assert u.shape == v.shape == (41, 57) and u.dtype == np.float32
    assert (u >= 0).all() and (u <= 24).all() and (np.abs(v) <= 24).all()
    assert np.array_equal(u, np.rint(u)) and not ((u == 0) & (v < 0)).any()
    pu, pv = est.probabilities(img)
    np.testing.assert_allclose(pu.sum(0), 1.0, atol=1e-5)
    np.testing.assert_allclose(pv.sum(0), 1.0, atol=1e-5)
    out = est.deblur(img)
    assert out.shape == img.shape and out.dtype == np.float32
    assert np.isfinite(out).all() and 0 <= out.min() and out.max() <= 1
    assert est.deblur(img[:, :, 0]).shape == (41, 57)
    y = EstimatorModule(est)(torch.from_numpy(img).permute(2, 0, 1)[None])
    assert y.shape == (1, 3, 41, 57)


def test_bad_inputs_options_and_weights(tmp_path, camera):
    from deblurkit.models.weights import save_weights

    est = G.Gong2017Estimator()
    with pytest.raises(ImageError, match="dtype"):
        est.deblur(np.zeros((8, 8), dtype=np.uint8))
    with pytest.raises(ImageError, match="shape"):
        est.estimate_motion_field(np.zeros((8, 8, 2), dtype=np.float32))
    for opt, value in [("deconv_weight", 0.0), ("deconv_iterations", 0), ("size", "x")]:
        with pytest.raises(ConfigError, match=opt):
            G.Gong2017Estimator(**{opt: value})
    options = {"widths": [4, 4], "convs": 1, "u_max": 3, "v_max": 3}
    torch.manual_seed(2)
    net = G.MotionFlowFCN(**options)
    path = tmp_path / "g.safetensors"
    digest = save_weights(net, path, metadata={"model": "gong2017", "options": options})
    a = G.Gong2017Estimator(net)
    b = G.Gong2017Estimator.from_file(path, sha256=digest)
    np.testing.assert_array_equal(a.probabilities(camera[:20, :24])[1],
                                  b.probabilities(camera[:20, :24])[1])
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        G.Gong2017Estimator.from_file(path, sha256="0" * 64)
    with pytest.raises(WeightsError, match="not in the weights registry"):
        G.Gong2017Estimator.from_pretrained("no-such-weights")


def test_registry_factory(tmp_path, monkeypatch, camera):
    from deblurkit import paths
    from deblurkit.models import registry
    from deblurkit.models.weights import save_weights

    options = {"widths": [4, 4], "convs": 1, "u_max": 3, "v_max": 3, "norm": True}
    torch.manual_seed(4)
    net = G.MotionFlowFCN(**options)
    digest = save_weights(net, tmp_path / "g.safetensors",
                          metadata={"model": "gong2017", "options": options})
    entry = {"model": "gong2017", "file": "g.safetensors", "sha256": digest, "options": options}
    monkeypatch.setattr(paths, "weights_dir", lambda: tmp_path)
    monkeypatch.setattr(registry, "weights_registry", lambda: {"gong2017": entry})
    a, b = G.load(), G.load(tmp_path / "g.safetensors")
    np.testing.assert_array_equal(a.probabilities(camera[:20, :20])[0],
                                  b.probabilities(camera[:20, :20])[0])
    assert isinstance(G.load(None), G.Gong2017Estimator)
    with pytest.raises(ConfigError, match="bogus"):
        G.load(None, bogus=1)
    monkeypatch.setattr(registry, "weights_registry", lambda: {})
    with pytest.raises(WeightsError, match="not in the weights registry"):
        G.load()
