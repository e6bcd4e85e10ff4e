"""deblurkit.data.augment: dihedral maps, kernel equivariance, paired crops, per-item seeding."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import torch

from deblurkit.blur.convolve import blur
from deblurkit.data.augment import (
    ALL_CODES,
    SHAPE_KEEPING_CODES,
    PairAugment,
    crop_box,
    dihedral,
    dihedral_inverse,
    dihedral_kernel,
    dihedral_torch,
    item_rng,
    parse_size,
    to_chw,
)
from deblurkit.errors import ConfigError, DeblurkitError, ImageError


def _coords(h: int, w: int) -> np.ndarray:
    """H x W x 2 image whose pixels hold their own (row, col): every pixel is unique."""
    r, c = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return np.stack([r, c], axis=-1).astype(np.float32)


def _is_plain_crop(c: np.ndarray) -> bool:
    """True if a coordinate image is an untransformed window: rows and columns step by +1."""
    return bool(np.all(np.diff(c[..., 0], axis=0) == 1) and np.all(np.diff(c[..., 0], axis=1) == 0)
                and np.all(np.diff(c[..., 1], axis=1) == 1) and np.all(np.diff(c[..., 1], axis=0) == 0))


def test_dihedral_matches_explicit_index_maps():
    h, w = 5, 7
    x = _coords(h, w)
    # mirror (code 4): out[i, j] = x[i, w-1-j]
    np.testing.assert_array_equal(dihedral(x, 4), x[:, ::-1])
    # one counter-clockwise quarter turn (code 1): out has shape w x h and out[i, j] = x[j, w-1-i]
    out = dihedral(x, 1)
    assert out.shape == (w, h, 2)
    for i in range(w):
        for j in range(h):
            np.testing.assert_array_equal(out[i, j], x[j, w - 1 - i])
    # half turn (code 2): out[i, j] = x[h-1-i, w-1-j]
    np.testing.assert_array_equal(dihedral(x, 2), x[::-1, ::-1])


def test_dihedral_group_has_eight_distinct_elements_and_inverses():
    x = np.random.default_rng(1).random((6, 6, 3)).astype(np.float32)
    images = [dihedral(x, c) for c in ALL_CODES]
    for a in range(8):
        for b in range(a + 1, 8):
            assert not np.array_equal(images[a], images[b]), (a, b)
    for c in ALL_CODES:
        np.testing.assert_array_equal(dihedral(dihedral(x, c), dihedral_inverse(c)), x)
    rect = np.zeros((4, 9, 1), np.float32)
    for c in ALL_CODES:
        assert dihedral(rect, c).shape[:2] == ((4, 9) if c in SHAPE_KEEPING_CODES else (9, 4))


def test_dihedral_torch_matches_numpy():
    x = np.random.default_rng(2).random((5, 7, 3)).astype(np.float32)
    t = torch.from_numpy(x).permute(2, 0, 1)[None]
    for c in ALL_CODES:
        got = dihedral_torch(t, c)[0].permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(got, dihedral(x, c))


@pytest.mark.parametrize("shape", [(5, 3), (4, 6), (4, 4), (1, 2)])
def test_kernel_turns_with_the_image(shape):
    """T(k * x) == T(k) * T(x) for every code, odd and even kernels, checked against
    scipy.ndimage.convolve (zero boundary, centre kh // 2) and deblurkit's blur."""
    rng = np.random.default_rng(3)
    x = rng.random((11, 11)).astype(np.float64)
    k = rng.random(shape)
    k /= k.sum()
    ref = scipy.ndimage.convolve(x, k, mode="constant")
    np.testing.assert_allclose(blur(x, k, boundary="constant"), ref, atol=1e-12)
    for c in ALL_CODES:
        kt = dihedral_kernel(k, c)
        assert kt.shape[0] % 2 == 1 and kt.shape[1] % 2 == 1
        assert kt.sum() == pytest.approx(1.0)
        want = dihedral(ref, c, axes=(0, 1))
        got = scipy.ndimage.convolve(dihedral(x, c, axes=(0, 1)), kt, mode="constant")
        np.testing.assert_allclose(got, want, atol=1e-12, err_msg=f"code {c}")
        got = blur(dihedral(x, c, axes=(0, 1)), kt, boundary="constant")
        np.testing.assert_allclose(got, want, atol=1e-12, err_msg=f"code {c}")


def test_pair_augment_applies_one_transform_to_blur_sharp_and_frames():
    """sharp = blur + a known pattern of position; after the augmentation the difference must
    still be the pattern evaluated at each output pixel's source position."""
    h, w = 12, 10
    coords = _coords(h, w)
    pattern = (0.01 * coords[..., :1] * coords[..., 1:] + 0.5).astype(np.float32)  # H x W x 1
    blur_img = np.concatenate([coords, np.zeros((h, w, 1), np.float32)], axis=-1)  # 3 channels
    sharp_img = blur_img + pattern
    frames = np.stack([blur_img + k for k in range(3)])  # N x H x W x 3
    seen_codes, seen_boxes = set(), set()
    for square, crop in ((True, 6), (False, (6, 4))):
        aug = PairAugment(crop=crop, random_crop=True, flip=True)
        for seed in range(40):
            out, _ = aug({"blur": blur_img, "sharp": sharp_img, "sharp_frames": frames},
                         item_rng(seed, 0, 0))
            b, s, f = out["blur"], out["sharp"], out["sharp_frames"]
            assert b.shape[:2] == s.shape[:2] == f.shape[1:3]
            rows, cols = b[..., 0].astype(int), b[..., 1].astype(int)
            np.testing.assert_allclose(s - b, np.broadcast_to(pattern[rows, cols], s.shape), atol=1e-6)
            for k in range(3):
                np.testing.assert_array_equal(f[k], b + k)
            # which code and crop were applied: recover from the coordinates
            seen_boxes.add((rows.min(), cols.min()))
            found = [c for c in ALL_CODES if _is_plain_crop(dihedral(b, dihedral_inverse(c)))]
            assert len(found) == 1
            seen_codes.add((square, found[0]))
    assert {c for sq, c in seen_codes if sq} == set(ALL_CODES)
    assert {c for sq, c in seen_codes if not sq} == set(SHAPE_KEEPING_CODES)
    assert len(seen_boxes) > 10


def test_pair_augment_turns_the_kernel_consistently():
    rng = np.random.default_rng(4)
    sharp = rng.random((16, 16, 1))
    k = np.zeros((4, 5))
    k[0, 0], k[1, 3], k[3, 2] = 0.5, 0.3, 0.2  # asymmetric, even rows
    blurred = blur(sharp, k, boundary="constant")
    aug = PairAugment(crop=None, flip=True)
    for seed in range(12):
        out, kern = aug({"blur": blurred, "sharp": sharp}, item_rng(seed, 0, 0), {"kernel": k})
        np.testing.assert_allclose(blur(out["sharp"], kern["kernel"], boundary="constant"),
                                   out["blur"], atol=1e-12)


def test_centre_crop_and_crop_box():
    assert crop_box(10, 8, (4, 4)) == (3, 2)
    rng = np.random.default_rng(0)
    boxes = {crop_box(10, 8, (4, 4), rng) for _ in range(200)}
    assert boxes == {(t, l) for t in range(7) for l in range(5)}
    x = _coords(10, 8)
    out, _ = PairAugment(crop=4, random_crop=False)({"blur": x}, rng)
    np.testing.assert_array_equal(out["blur"], x[3:7, 2:6])
    with pytest.raises(ImageError, match=r"photo\.png: 10x8 is smaller than the crop 12x4"):
        crop_box(10, 8, (12, 4), what="photo.png")


def test_pair_augment_refuses_misaligned_images():
    with pytest.raises(ImageError, match=r"pairX: images differ in size \(blur 4x4, sharp 4x5\)"):
        PairAugment(crop=2)({"blur": np.zeros((4, 4, 1)), "sharp": np.zeros((4, 5, 1))},
                            item_rng(0, 0, 0), what="pairX")


def test_item_rng_depends_only_on_seed_epoch_index():
    a = item_rng(3, 1, 7).random(4)
    np.testing.assert_array_equal(a, item_rng(3, 1, 7).random(4))
    for other in ((4, 1, 7), (3, 2, 7), (3, 1, 8)):
        assert not np.array_equal(a, item_rng(*other).random(4))
    for bad, arg in (((-1, 0, 0), "seed"), ((0, -2, 0), "epoch"), ((0, 0, 1.5), "index")):
        with pytest.raises(ConfigError, match=arg):
            item_rng(*bad)


def test_bad_arguments_are_refused():
    assert parse_size(5) == (5, 5) and parse_size((3, 4)) == (3, 4) and parse_size(None) is None
    for bad in (0, -3, (2,), (2, 0), "64", True, 2.5):
        with pytest.raises(ConfigError, match="crop"):
            parse_size(bad)
    for bad in (-1, 8, 1.0, True):
        with pytest.raises(ConfigError, match="code"):
            dihedral(np.zeros((2, 2, 1)), bad)
    with pytest.raises(ConfigError, match="kernel"):
        dihedral_kernel(np.ones((2, 2, 2)), 0)
    with pytest.raises(DeblurkitError, match="shape"):
        to_chw(np.zeros((3, 3)))


def test_to_chw_layouts():
    x = np.random.default_rng(5).random((4, 5, 3))
    t = to_chw(x)
    assert t.dtype == torch.float32 and t.shape == (3, 4, 5)
    np.testing.assert_allclose(t[1].numpy(), x[..., 1], rtol=1e-6)
    s = to_chw(np.stack([x, x]))
    assert s.shape == (2, 3, 4, 5)
