"""deblurkit.data.synthetic: on-the-fly pairs, determinism across workers/seeds, kernel/blur match."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import torch
from PIL import Image
from torch.utils.data import DataLoader

from deblurkit.blur.convolve import blur
from deblurkit.blur.kernels import validate_kernel
from deblurkit.data import BlurGenerator, SyntheticBlurDataset, UniformKernelBlur
from deblurkit.data.augment import item_rng
from deblurkit.data.synthetic import LUMA_601
from deblurkit.errors import ConfigError, DeblurkitError, ImageError

NO_NOISE = dict(noise_sigma=(0.0, 0.0))


def _photos(root: Path, n: int = 3, h: int = 48, w: int = 56) -> Path:
    """n smooth-ish colour photos (uint8 PNG) under root (one in a sub-folder)."""
    rng = np.random.default_rng(0)
    for i in range(n):
        base = rng.random((h // 4, w // 4, 3))
        img = np.kron(base, np.ones((4, 4, 1)))  # blocky: real edges for the blur to act on
        path = root / ("sub" if i == 0 else "") / f"photo{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.rint(img * 255).astype(np.uint8)).save(path)
    return root


class Identity:
    """A minimal BlurGenerator: no blur; records the shapes it was given."""

    def __init__(self, margin: int = 0) -> None:
        self.margin = margin
        self.seen: list[tuple[int, ...]] = []

    def __call__(self, sharp, rng):
        self.seen.append(sharp.shape)
        m = self.margin
        inner = sharp[m:sharp.shape[0] - m, m:sharp.shape[1] - m]
        return {"blur": inner.copy(), "sharp": inner.copy(), "u": np.zeros(inner.shape[:2], np.float32)}


def test_uniform_generator_is_a_blur_generator():
    assert isinstance(UniformKernelBlur(), BlurGenerator)
    assert isinstance(Identity(), BlurGenerator)
    assert UniformKernelBlur(size_range=(3, 9)).margin == 4


@pytest.mark.parametrize("kind", ["shake", "gp", "motion", "gaussian", "disk"])
def test_each_kernel_kind_is_a_valid_kernel_that_reproduces_the_blur(kind):
    gen = UniformKernelBlur(kinds=(kind,), size_range=(5, 12), **NO_NOISE)
    rng = np.random.default_rng(1)
    sharp = rng.random((40, 36, 3)).astype(np.float32)
    sizes = set()
    for _ in range(4):
        out = gen(sharp, rng)
        k = out["kernel"]
        sizes.add(k.shape[0])
        validate_kernel(k)
        assert k.shape[0] == k.shape[1] and 5 <= k.shape[0] <= 12
        m = gen.margin
        assert out["blur"].shape == out["sharp"].shape == (40 - 2 * m, 36 - 2 * m, 3)
        np.testing.assert_array_equal(out["sharp"], sharp[m:-m, m:-m])
        # independent reference: scipy.signal.convolve "valid" region of the full input, with the
        # window aligned to deblurkit's centre (kh // 2, kw // 2)
        kh, kw = k.shape
        for c in range(3):
            ref = scipy.signal.convolve(sharp[..., c].astype(np.float64), k.astype(np.float64), mode="full")
            ref = ref[m + kh // 2: m + kh // 2 + 40 - 2 * m, m + kw // 2: m + kw // 2 + 36 - 2 * m]
            np.testing.assert_allclose(out["blur"][..., c], ref, atol=2e-6)
    assert {s % 2 for s in sizes} == {0, 1}  # even kernels (centre kh // 2) are covered too


@pytest.mark.parametrize("kind", ["motion", "gaussian", "disk"])
def test_every_size_in_the_range_works(kind):
    gen = UniformKernelBlur(kinds=(kind,), size_range=(1, 14))
    rng = np.random.default_rng(2)
    sizes = set()
    for _ in range(90):
        k, drawn = gen.draw_kernel(rng)
        validate_kernel(k)
        assert drawn == kind and k.shape[0] == k.shape[1]
        sizes.add(k.shape[0])
    assert sizes == set(range(1, 15))


def test_dataset_kernel_reproduces_the_blur_with_deblurkit_blur(tmp_path):
    ds = SyntheticBlurDataset(_photos(tmp_path), crop=24, length=6, seed=3,
                              generator=UniformKernelBlur(size_range=(3, 9), **NO_NOISE))
    for i in range(len(ds)):
        item = ds[i]
        k = item["kernel"].numpy()
        r = max(k.shape) // 2
        sharp = item["sharp"].permute(1, 2, 0).numpy()
        re = blur(sharp, k, boundary="reflect")
        got = item["blur"].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(re[r:-r, r:-r], got[r:-r, r:-r], atol=1e-6)
        assert not np.allclose(sharp, got, atol=1e-3) or k.shape == (1, 1)


def test_determinism_across_instances_seeds_epochs(tmp_path):
    root = _photos(tmp_path)
    gen = UniformKernelBlur(size_range=(3, 7), noise_sigma=(0.01, 0.03))
    a = SyntheticBlurDataset(root, crop=16, length=4, generator=gen, seed=11)
    b = SyntheticBlurDataset(root, crop=16, length=4, generator=gen, seed=11)
    for i in (3, 0, 2):  # order does not matter
        x, y = a[i], b[i]
        assert torch.equal(x["blur"], y["blur"]) and torch.equal(x["sharp"], y["sharp"])
        assert torch.equal(x["kernel"], y["kernel"])
    c = SyntheticBlurDataset(root, crop=16, length=4, generator=gen, seed=12)
    assert not torch.equal(a[0]["blur"], c[0]["blur"])
    first = a[1]["blur"]
    a.set_epoch(1)
    assert not torch.equal(a[1]["blur"], first)
    a.set_epoch(0)
    assert torch.equal(a[1]["blur"], first)


def _collate_keep_kernels(items):
    return {"blur": torch.stack([it["blur"] for it in items]),
            "sharp": torch.stack([it["sharp"] for it in items]),
            "kernel": [it["kernel"] for it in items],
            "index": [it["index"] for it in items]}


def test_same_batches_with_zero_and_two_workers(tmp_path):
    ds = SyntheticBlurDataset(_photos(tmp_path), crop=16, length=6, seed=7,
                              generator=UniformKernelBlur(size_range=(3, 7)))
    ds.set_epoch(2)
    runs = []
    for workers in (0, 2):
        loader = DataLoader(ds, batch_size=2, num_workers=workers, collate_fn=_collate_keep_kernels)
        runs.append(list(loader))
    assert len(runs[0]) == len(runs[1]) == 3
    for b0, b1 in zip(*runs):
        assert torch.equal(b0["blur"], b1["blur"]) and torch.equal(b0["sharp"], b1["sharp"])
        assert all(torch.equal(k0, k1) for k0, k1 in zip(b0["kernel"], b1["kernel"]))
        assert b0["index"] == b1["index"]


def test_items_cycle_over_photos_with_the_margin_taken_from_the_photo(tmp_path):
    root = _photos(tmp_path, n=3, h=48, w=56)
    gen = Identity(margin=5)
    ds = SyntheticBlurDataset(root, crop=(20, 12), length=7, generator=gen, flip=False)
    assert [ds[i]["name"] for i in range(7)] == ["photo1", "photo2", "sub/photo0"] * 2 + ["photo1"]
    assert set(gen.seen) == {(30, 22, 3)}
    item = ds[0]
    assert item["blur"].shape == (3, 20, 12) and item["u"].shape == (20, 12)
    # the crop is a window of the photo at the position the item's generator drew
    photo = np.asarray(Image.open(root / "photo1.png"), dtype=np.float32) / 255
    rng = item_rng(0, 0, 0)
    top, left = int(rng.integers(0, 29)), int(rng.integers(0, 45))
    np.testing.assert_allclose(item["sharp"].permute(1, 2, 0).numpy(),
                               photo[top:top + 20, left:left + 12], atol=1e-6)


def test_crop_as_large_as_the_photo_mirrors_the_margin(tmp_path):
    root = _photos(tmp_path, n=1, h=16, w=16)
    gen = Identity(margin=3)
    seen = {}

    def record(sharp, rng):
        seen["window"] = sharp.copy()
        return gen(sharp, rng)
    record.margin = 3
    ds = SyntheticBlurDataset(root, crop=16, generator=record, flip=False)
    item = ds[0]
    photo = np.asarray(Image.open(root / "sub" / "photo0.png"), dtype=np.float32) / 255
    np.testing.assert_allclose(seen["window"], np.pad(photo, ((3, 3), (3, 3), (0, 0)), mode="symmetric"),
                               atol=1e-7)
    np.testing.assert_allclose(item["sharp"].permute(1, 2, 0).numpy(), photo, atol=1e-7)


def test_grey_uses_bt601_luma_and_grey_photos_become_rgb(tmp_path):
    root = _photos(tmp_path)
    colour = SyntheticBlurDataset(root, crop=16, length=3, generator=Identity(), seed=4)
    grey = SyntheticBlurDataset(root, crop=16, length=3, generator=Identity(), seed=4, grey=True)
    for i in range(3):
        c, g = colour[i]["sharp"], grey[i]["sharp"]
        assert g.shape == (1, 16, 16)
        want = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
        torch.testing.assert_close(g[0], want, atol=1e-6, rtol=0)
    np.testing.assert_allclose(LUMA_601.sum(), 1.0, rtol=1e-6)
    gdir = tmp_path / "grey"
    gdir.mkdir()
    Image.fromarray(np.full((20, 20), 77, np.uint8)).save(gdir / "g.png")
    item = SyntheticBlurDataset(gdir, crop=8, generator=Identity())[0]
    assert item["sharp"].shape == (3, 8, 8)
    torch.testing.assert_close(item["sharp"], torch.full((3, 8, 8), 77 / 255), atol=1e-6, rtol=0)


def test_flips_only_keep_shape_for_non_square_crops(tmp_path):
    ds = SyntheticBlurDataset(_photos(tmp_path), crop=(8, 12), length=30, generator=Identity(), seed=1)
    assert {tuple(ds[i]["blur"].shape) for i in range(30)} == {(3, 8, 12)}
    sq = SyntheticBlurDataset(_photos(tmp_path / "b", h=20, w=20), crop=20, length=30,
                              generator=Identity(), seed=1)
    photo = sq[0]["sharp"]
    # the whole photo is the crop, so items differ only by the dihedral code: expect all 8
    distinct = {tuple(sq[i]["sharp"].flatten().tolist()) for i in range(0, 30, 3)}
    assert len(distinct) > 4 and photo.shape == (3, 20, 20)


def test_sharp_pairs_and_noise_level(tmp_path):
    root = _photos(tmp_path)
    ident = SyntheticBlurDataset(root, crop=24, length=3,
                                 generator=UniformKernelBlur(sharp_prob=1.0, **NO_NOISE))
    for i in range(3):
        item = ident[i]
        assert item["kernel"].shape == (1, 1)
        assert torch.equal(item["blur"], item["sharp"])
    mid = tmp_path / "mid"
    mid.mkdir()
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(mid / "grey.png")
    noisy = SyntheticBlurDataset(mid, crop=48, generator=UniformKernelBlur(
        sharp_prob=1.0, noise_sigma=(0.05, 0.05)))[0]
    resid = (noisy["blur"] - noisy["sharp"]).numpy()
    assert abs(resid.std() - 0.05) < 0.005 and abs(resid.mean()) < 0.005
    jpeg = SyntheticBlurDataset(root, crop=24, generator=UniformKernelBlur(
        size_range=(3, 5), jpeg_quality=(10, 10), **NO_NOISE))[0]
    plain = SyntheticBlurDataset(root, crop=24, generator=UniformKernelBlur(
        size_range=(3, 5), **NO_NOISE))[0]
    assert torch.equal(jpeg["kernel"], plain["kernel"])  # JPEG is drawn last
    diff = (jpeg["blur"] - plain["blur"]).abs()
    assert 0 < float(diff.mean()) < 0.1
    assert float(jpeg["blur"].min()) >= 0 and float(jpeg["blur"].max()) <= 1


def test_cache_is_bounded(tmp_path):
    root = _photos(tmp_path, n=3, h=48, w=56)
    one = 48 * 56 * 3 * 4
    ds = SyntheticBlurDataset(root, crop=8, length=9, generator=Identity(), cache_mb=1.5 * one / 2**20)
    for i in range(9):
        ds[i]
        assert ds._cached <= ds.cache_bytes and len(ds._cache) == 1
    none = SyntheticBlurDataset(root, crop=8, generator=Identity(), cache_mb=0)
    none[0]
    assert len(none._cache) == 0


def test_bad_inputs_are_refused(tmp_path):
    root = _photos(tmp_path, n=1, h=16, w=16)
    with pytest.raises(ImageError, match=r"photo0.png: 16x16 is smaller than the crop 32x32"):
        SyntheticBlurDataset(root, crop=32, generator=Identity())[0]
    for kwargs, arg in ((dict(crop=None), "crop"), (dict(length=0), "length"), (dict(seed=-1), "seed"),
                        (dict(cache_mb=-1), "cache_mb"), (dict(generator="x"), "generator"),
                        (dict(transform=3), "transform")):
        with pytest.raises(ConfigError, match=arg):
            SyntheticBlurDataset(root, **kwargs)
    bad_margin = Identity()
    bad_margin.margin = -2
    with pytest.raises(ConfigError, match="generator.margin"):
        SyntheticBlurDataset(root, generator=bad_margin)
    for kwargs, arg in ((dict(kinds=("shake", "wobble")), "kinds"), (dict(kinds=()), "kinds"),
                        (dict(size_range=(9, 3)), "size_range"), (dict(size_range=(0, 3)), "size_range"),
                        (dict(size_range=(2.5, 3)), "size_range"),
                        (dict(noise_sigma=(-0.1, 0.1)), "noise_sigma"),
                        (dict(jpeg_quality=(0, 90)), "jpeg_quality"), (dict(sharp_prob=1.5), "sharp_prob")):
        with pytest.raises(ConfigError, match=arg):
            UniformKernelBlur(**kwargs)
    with pytest.raises(DeblurkitError, match="not a folder or an image file"):
        SyntheticBlurDataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DeblurkitError, match="no images found"):
        SyntheticBlurDataset(tmp_path / "empty")

    def wrong_shape(sharp, rng):
        return {"blur": sharp[:4], "sharp": sharp}
    with pytest.raises(DeblurkitError,
                       match=r"generator function: 'blur' has shape \(4, 8, 3\), expected \(8, 8, 3\)"):
        SyntheticBlurDataset(root, crop=8, generator=wrong_shape)[0]
    with pytest.raises(ImageError, match="margin"):
        UniformKernelBlur(size_range=(3, 21))(np.zeros((16, 16, 3), np.float32), np.random.default_rng())
    with pytest.raises(IndexError):
        SyntheticBlurDataset(root, crop=8, generator=Identity(), length=2)[2]


def test_paths_list_and_files_accepted(tmp_path):
    root = _photos(tmp_path, n=2)
    ds = SyntheticBlurDataset([root / "photo1.png", root / "sub"], crop=8, generator=Identity())
    assert ds.names == ["photo1", "photo0"] and len(ds) == 2
