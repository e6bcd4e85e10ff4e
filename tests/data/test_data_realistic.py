"""Realistic training-pair generators: shapes, alignment, zero-blur identities, determinism, errors."""

from __future__ import annotations

import numpy as np
import pytest

from deblurkit.data import realistic as R
from deblurkit.errors import ConfigError


@pytest.fixture(scope="module")
def window(astronaut):
    return np.ascontiguousarray(astronaut[100:100 + 112, 150:150 + 112])


@pytest.mark.parametrize("name", sorted(R.GENERATORS))
def test_generator_shapes_range_and_determinism(name, window):
    gen = R.GENERATORS[name]()
    a = gen(window.copy(), np.random.default_rng(3))
    b = gen(window.copy(), np.random.default_rng(3))
    m = gen.margin
    for key in ("blur", "sharp"):
        assert a[key].shape == (112 - 2 * m, 112 - 2 * m, 3)
        assert a[key].dtype == np.float32
        assert 0.0 <= a[key].min() and a[key].max() <= 1.0
        np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize("name", ["camera", "shake", "frames"])
def test_sharp_target_is_the_centre_of_the_window(name, window):
    gen = R.GENERATORS[name](highlight_prob=0.0)
    out = gen(window.copy(), np.random.default_rng(0))
    m = gen.margin
    np.testing.assert_allclose(out["sharp"], window[m:-m, m:-m], atol=2e-6)
    assert np.abs(out["blur"] - out["sharp"]).mean() > 1e-3  # it is blurred


def test_zero_extent_gives_no_blur(window):
    for gen in (R.CameraMotionBlur(extent=(0.0, 0.0), highlight_prob=0.0),
                R.ObjectMotionBlur(extent=(0.0, 0.0), highlight_prob=0.0),
                R.FrameAverageBlur(extent=(0.0, 0.0), highlight_prob=0.0)):
        out = gen(window.copy(), np.random.default_rng(1))
        np.testing.assert_allclose(out["blur"], out["sharp"], atol=1e-5, err_msg=type(gen).__name__)


def test_highlights_saturate_in_both_images():
    w = np.full((80, 80, 3), 0.3, np.float32)
    w[30:50, 30:50] = 0.98  # a lamp
    gen = R.ShakeKernelBlur(highlight_prob=1.0, highlight_gain=(6.0, 6.0), size=(9, 9))
    out = gen(w, np.random.default_rng(0))
    assert out["sharp"].max() == pytest.approx(1.0)
    # the blurred lamp spreads light above what blurring the unboosted scene could give
    plain = R.ShakeKernelBlur(highlight_prob=0.0, size=(9, 9))(w, np.random.default_rng(0))
    assert (out["blur"] > plain["blur"] + 0.05).sum() > 0


def test_object_motion_leaves_background_alone(window):
    gen = R.ObjectMotionBlur(highlight_prob=0.0, extent=(20.0, 20.0))
    rng = np.random.default_rng(5)
    out = gen(window.copy(), rng)
    diff = np.abs(out["blur"] - out["sharp"]).max(axis=2)
    # some pixels are unchanged (static background) and some strongly changed (moving object),
    # unless the background was drawn shaken (40 %): then everything moves a little.
    assert (diff > 0.05).mean() > 0.01


def test_mixture_and_noise(window):
    gen = R.build_generator({"sharp": 1.0}, {"sharp": {"identity_prob": 1.0},
                                             "noise": {"noise_prob": 0.0, "jpeg_prob": 0.0}})
    out = gen(window.copy(), np.random.default_rng(0))
    # identity blur + 8-bit quantisation only
    np.testing.assert_allclose(out["blur"], np.round(out["sharp"] * 255) / 255, atol=1e-6)
    noisy = R.build_generator({"sharp": 1.0}, {"sharp": {"identity_prob": 1.0},
                                               "noise": {"noise_prob": 1.0, "peak": [100.0, 100.0]}})
    out2 = noisy(window.copy(), np.random.default_rng(0))
    assert np.abs(out2["blur"] - out2["sharp"]).std() > 0.01


def test_mixture_weights_are_respected(window):
    gen = R.build_generator({"sharp": 3.0, "frames": 1.0},
                            {"sharp": {"identity_prob": 1.0}, "frames": {"extent": [6.0, 6.0]},
                             "noise": {"noise_prob": 0.0, "jpeg_prob": 0.0}})
    assert gen.margin == max(R.SharpPair().margin, R.FrameAverageBlur().margin)
    small = np.ascontiguousarray(window[:64, :64])
    unblurred = 0
    for i in range(120):
        out = gen(small.copy(), np.random.default_rng(i))
        unblurred += bool(np.abs(out["blur"] - np.round(out["sharp"] * 255) / 255).max() < 1e-6)
    assert 0.6 < unblurred / 120 < 0.9  # expected 0.75


def test_bad_generator_config_is_refused():
    with pytest.raises(ConfigError, match="unknown generator 'blurry'"):
        R.build_generator({"blurry": 1.0})
    with pytest.raises(ConfigError, match="data.generators.camera"):
        R.build_generator({"camera": 1.0}, {"camera": {"length": 3}})
    with pytest.raises(ConfigError, match="camera.extent"):
        R.CameraMotionBlur(extent=(5.0, 1.0))


def test_soft_sharp_pairs_keep_the_softened_photo_as_target(window):
    """soft_prob 1, identity 1: blur == sharp == the window softened by a Gaussian in linear light
    (checked against scipy); soft_prob 0 draws nothing extra (older recipes unchanged)."""
    from scipy.ndimage import gaussian_filter

    gen = R.SharpPair(identity_prob=1.0, soft_prob=1.0, soft_sigma=(1.0, 1.0))
    out = gen(window.copy(), np.random.default_rng(0))
    np.testing.assert_array_equal(out["blur"], out["sharp"])
    ref_lin = np.stack([gaussian_filter(R._lin(window.astype(np.float32))[..., c].astype(np.float64), 1.0,
                                        mode="reflect", truncate=3.0) for c in range(3)], axis=-1)
    ref = R._enc(ref_lin.astype(np.float32))[4:-4, 4:-4]
    # the kernel is a normalised sampled Gaussian (7 taps at sigma 1), as scipy's with truncate 3
    np.testing.assert_allclose(out["sharp"], ref, atol=2e-3)
    assert np.abs(out["sharp"] - window[4:-4, 4:-4]).mean() > 2e-3  # it is softer than the photo
    plain = R.SharpPair()(window.copy(), np.random.default_rng(7))
    zero = R.SharpPair(soft_prob=0.0)(window.copy(), np.random.default_rng(7))
    np.testing.assert_array_equal(plain["blur"], zero["blur"])
    # gaussian_prob 0: every barely blurred pair is a short linear motion, never a Gaussian
    motion = R.SharpPair(identity_prob=0.0, gaussian_prob=0.0)(window.copy(), np.random.default_rng(1))
    assert np.abs(motion["blur"] - motion["sharp"]).mean() > 0


def test_soft_sharp_pairs_refuse_bad_options():
    with pytest.raises(ConfigError, match=r"sharp.soft_prob: expected a probability in \[0, 1\], got 1.5"):
        R.SharpPair(soft_prob=1.5)
    with pytest.raises(ConfigError, match=r"sharp.soft_sigma: .*margin / 3"):
        R.SharpPair(soft_sigma=(0.5, 2.0))  # a sigma-2 kernel reaches 6 px: more than the 4 px margin
    with pytest.raises(ConfigError, match="sharp.gaussian_prob"):
        R.build_generator({"sharp": 1.0}, {"sharp": {"gaussian_prob": -0.1}})
