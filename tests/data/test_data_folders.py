"""deblurkit.data.folders on tiny layouts built in tmp_path (PNGs written with Pillow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from deblurkit.data import (
    GoProDataset,
    ImageFolder,
    KohlerDataset,
    LaiDataset,
    LevinDataset,
    PairedFolder,
)
from deblurkit.errors import ConfigError, DeblurkitError, ImageError


def _png(path: Path, pixels: np.ndarray) -> np.ndarray:
    """Write uint8 pixels (H x W or H x W x 3) with Pillow; return them as float32 H x W x C."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    p = pixels.astype(np.float32) / 255.0
    return p[..., None] if p.ndim == 2 else p


def _rand(seed: int, h: int = 8, w: int = 10, c: int | None = 3) -> np.ndarray:
    shape = (h, w) if c is None else (h, w, c)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _chw(x: np.ndarray) -> np.ndarray:
    return x.transpose(2, 0, 1)


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


# ------------------------------------------------------------------------------------------
# PairedFolder


def test_paired_folder_pairs_by_relative_path_and_decodes(tmp_path):
    want = {}
    for i, name in enumerate(["a", "sub/b", "sub/deeper/c"]):
        want[name] = (_png(tmp_path / "blur" / f"{name}.png", _rand(i)),
                      _png(tmp_path / "sharp" / f"{name}.bmp", _rand(10 + i)))
    _png(tmp_path / "blur" / ".a.png.tmp-1.png", _rand(99))  # hidden: ignored
    (tmp_path / "sharp" / "notes.txt").write_text("not an image")
    ds = PairedFolder(tmp_path)
    assert ds.names == ["a", "sub/b", "sub/deeper/c"] and len(ds) == 3
    assert ds.pairs[1] == (tmp_path / "blur/sub/b.png", tmp_path / "sharp/sub/b.bmp")
    for i, name in enumerate(ds.names):
        item = ds[i]
        assert item["name"] == name
        assert item["blur"].dtype == torch.float32 and item["blur"].shape == (3, 8, 10)
        np.testing.assert_array_equal(item["blur"].numpy(), _chw(want[name][0]))
        np.testing.assert_array_equal(item["sharp"].numpy(), _chw(want[name][1]))
    assert ds[-1]["name"] == "sub/deeper/c"
    with pytest.raises(IndexError):
        ds[3]
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch["blur"].shape == (3, 3, 8, 10) and batch["name"] == ds.names


def test_paired_folder_lists_without_decoding(tmp_path):
    (tmp_path / "blur").mkdir()
    (tmp_path / "sharp").mkdir()
    (tmp_path / "blur" / "x.png").write_bytes(b"not a png at all")
    (tmp_path / "sharp" / "x.png").write_bytes(b"nor this")
    ds = PairedFolder(tmp_path)
    assert ds.pairs == [(tmp_path / "blur/x.png", tmp_path / "sharp/x.png")]
    with pytest.raises(ImageError, match="x.png"):
        ds[0]


def test_paired_folder_reports_unmatched_names(tmp_path):
    for name in ["a", "b", "c"]:
        _png(tmp_path / "blur" / f"{name}.png", _rand(0))
    for name in ["a", "z"]:
        _png(tmp_path / "sharp" / f"{name}.png", _rand(0))
    with pytest.raises(DeblurkitError) as exc:
        PairedFolder(tmp_path)
    msg = _one_line(exc)
    assert "2 in" in msg and str(tmp_path / "blur") in msg and "first: b, c" in msg
    assert "1 in" in msg and "first: z" in msg


def test_paired_folder_refuses_empty_missing_and_ambiguous(tmp_path):
    (tmp_path / "blur").mkdir()
    (tmp_path / "sharp").mkdir()
    with pytest.raises(DeblurkitError, match="no images found") as exc:
        PairedFolder(tmp_path)
    assert str(tmp_path / "blur") in _one_line(exc)
    with pytest.raises(DeblurkitError, match="is not a folder"):
        PairedFolder(tmp_path / "nowhere")
    with pytest.raises(DeblurkitError, match=r"input.* is not a folder"):
        PairedFolder(tmp_path, blur_dir="input")
    _png(tmp_path / "blur" / "a.png", _rand(0))
    _png(tmp_path / "blur" / "a.bmp", _rand(0))
    _png(tmp_path / "sharp" / "a.png", _rand(0))
    with pytest.raises(DeblurkitError, match="two images share the name 'a'"):
        PairedFolder(tmp_path)


def test_paired_folder_refuses_pairs_of_different_size(tmp_path):
    _png(tmp_path / "blur" / "a.png", _rand(0, 8, 10))
    _png(tmp_path / "sharp" / "a.png", _rand(0, 8, 12))
    with pytest.raises(ImageError, match=r"a: images differ in size \(blur 8x10, sharp 8x12\)"):
        PairedFolder(tmp_path)[0]


def test_paired_folder_crop_flip_keep_the_pair_aligned_and_are_seeded(tmp_path):
    """sharp = blur + pattern(row, col); blur encodes its own coordinates."""
    h, w = 24, 20
    r, c = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    pattern = (r * 3 + c) % 7
    blur_img = np.stack([r * 10, c * 10, np.zeros_like(r)], axis=-1).astype(np.uint8)
    sharp_img = blur_img.copy()
    sharp_img[..., 2] = pattern * 30
    _png(tmp_path / "blur" / "p.png", blur_img)
    _png(tmp_path / "sharp" / "p.png", sharp_img)
    ds = PairedFolder(tmp_path, crop=8, flip=True, seed=5)
    outs = []
    for epoch in range(6):
        ds.set_epoch(epoch)
        item = ds[0]
        b, s = item["blur"].numpy() * 255, item["sharp"].numpy() * 255
        rows, cols = np.rint(b[0] / 10).astype(int), np.rint(b[1] / 10).astype(int)
        np.testing.assert_allclose(s[:2], b[:2], atol=1e-4)
        np.testing.assert_allclose(s[2], pattern[rows, cols] * 30, atol=1e-3)
        assert item["blur"].shape == (3, 8, 8)
        outs.append(item["blur"])
    assert len({tuple(o.flatten().tolist()) for o in outs}) > 3
    ds.set_epoch(2)
    assert torch.equal(ds[0]["blur"], outs[2])
    again = PairedFolder(tmp_path, crop=8, flip=True, seed=5)
    assert torch.equal(again[0]["sharp"], PairedFolder(tmp_path, crop=8, flip=True, seed=5)[0]["sharp"])
    centre = PairedFolder(tmp_path, crop=(4, 6), random_crop=False)[0]
    np.testing.assert_array_equal(centre["blur"].numpy()[:, :, :] * 255,
                                  _chw(blur_img[10:14, 7:13].astype(np.float32)))
    with pytest.raises(ImageError, match="smaller than the crop 30x30"):
        PairedFolder(tmp_path, crop=30)[0]
    with pytest.raises(ConfigError, match="crop"):
        PairedFolder(tmp_path, crop=-4)
    with pytest.raises(ConfigError, match="seed"):
        PairedFolder(tmp_path, seed=-1)
    with pytest.raises(ConfigError, match="epoch"):
        ds.set_epoch(-1)


def test_transform_is_applied_last(tmp_path):
    _png(tmp_path / "blur" / "a.png", _rand(0))
    _png(tmp_path / "sharp" / "a.png", _rand(1))
    ds = PairedFolder(tmp_path, transform=lambda d: {**d, "diff": d["sharp"] - d["blur"]})
    item = ds[0]
    assert torch.equal(item["diff"], item["sharp"] - item["blur"])
    with pytest.raises(ConfigError, match="transform"):
        PairedFolder(tmp_path, transform="no")


# ------------------------------------------------------------------------------------------
# GoPro


def _gopro(root: Path) -> dict:
    want = {}
    for split, seqs in (("train", ["GOPR0372_07_00", "GOPR0374_11_00"]), ("test", ["GOPR0384_11_00"])):
        for s, seq in enumerate(seqs):
            for f in range(2):
                frame = f"{f + 1:06d}"
                base = root / split / seq
                seed = 100 * s + f
                want[(split, f"{seq}/{frame}")] = {
                    "blur": _png(base / "blur" / f"{frame}.png", _rand(seed)),
                    "blur_gamma": _png(base / "blur_gamma" / f"{frame}.png", _rand(seed + 1000)),
                    "sharp": _png(base / "sharp" / f"{frame}.png", _rand(seed + 2000)),
                }
    return want


def test_gopro_layout_splits_and_blur_kinds(tmp_path):
    want = _gopro(tmp_path)
    train = GoProDataset(tmp_path, split="train")
    assert train.names == ["GOPR0372_07_00/000001", "GOPR0372_07_00/000002",
                           "GOPR0374_11_00/000001", "GOPR0374_11_00/000002"]
    test = GoProDataset(tmp_path)
    assert test.names == ["GOPR0384_11_00/000001", "GOPR0384_11_00/000002"]
    for kind in ("blur", "blur_gamma"):
        ds = GoProDataset(tmp_path, split="train", blur_kind=kind)
        item = ds[3]
        w = want[("train", item["name"])]
        assert item["sequence"] == "GOPR0374_11_00"
        np.testing.assert_array_equal(item["blur"].numpy(), _chw(w[kind]))
        np.testing.assert_array_equal(item["sharp"].numpy(), _chw(w["sharp"]))
        assert f"/{kind}/" in item["blur_path"].replace("\\", "/")


def test_gopro_refuses_bad_layouts(tmp_path):
    _gopro(tmp_path)
    with pytest.raises(ConfigError, match="split: expected one of train, test, got 'val'"):
        GoProDataset(tmp_path, split="val")
    with pytest.raises(ConfigError, match="blur_kind"):
        GoProDataset(tmp_path, blur_kind="gamma")
    (tmp_path / "test" / "GOPR0999_00_00" / "blur").mkdir(parents=True)
    with pytest.raises(DeblurkitError, match=r"GOPR0999_00_00.* is not a folder") as exc:
        GoProDataset(tmp_path)
    assert "blur_gamma" not in _one_line(exc) and "sharp" in str(exc.value)
    with pytest.raises(DeblurkitError, match=r"train: no test/ folder \(root must be the GOPRO_Large"):
        GoProDataset(tmp_path / "train")


# ------------------------------------------------------------------------------------------
# Köhler


def _kohler(root: Path) -> None:
    # Blurry1_1 with 5 frames in Image1/Kernel1/ (the archives' layout), Blurry2_3 with 4 flat.
    _png(root / "Blurry1_1.png", _rand(1, 6, 6))
    _png(root / "Blurry2_3.png", _rand(2, 6, 6))
    for k in range(1, 6):
        _png(root / "Image1" / "Kernel1" / f"GroundTruth1_1_{k}.png", np.full((6, 6, 3), 10 * k, np.uint8))
    for k in (1, 2, 3, 10):  # numeric, not lexical, frame order
        _png(root / f"GroundTruth2_3_{k}.png", np.full((6, 6, 3), 7 * k, np.uint8))


def test_kohler_layout_and_frames(tmp_path):
    _kohler(tmp_path)
    ds = KohlerDataset(tmp_path)
    assert ds.names == ["Blurry1_1", "Blurry2_3"]
    assert ds.frame_numbers == [[1, 2, 3, 4, 5], [1, 2, 3, 10]]
    assert ds.pairs[0] == (tmp_path / "Blurry1_1.png", tmp_path / "Image1/Kernel1/GroundTruth1_1_3.png")
    assert ds.pairs[1][1] == tmp_path / "GroundTruth2_3_2.png"
    item = ds[0]
    assert item["printout"] == 1 and item["trajectory"] == 1
    assert item["sharp_frames"].shape == (5, 3, 6, 6)
    np.testing.assert_allclose(item["sharp_frames"][:, 0, 0, 0].numpy() * 255, [10, 20, 30, 40, 50], atol=1e-4)
    np.testing.assert_allclose(float(item["sharp"][0, 0, 0]) * 255, 30, atol=1e-4)
    assert item["frame_numbers"].tolist() == [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(item["blur"].numpy(), _chw(_rand(1, 6, 6) / np.float32(255)))
    second = ds[1]
    np.testing.assert_allclose(second["sharp_frames"][:, 0, 0, 0].numpy() * 255, [7, 14, 21, 70], atol=1e-4)
    for frames, numbers in (("first", [1]), ("last", [5]), ("middle", [3]), (3, [3]), ([3, 1], [3, 1])):
        it = KohlerDataset(tmp_path, frames=frames)[0]
        assert it["frame_numbers"].tolist() == numbers
        np.testing.assert_allclose(it["sharp_frames"][:, 0, 0, 0].numpy() * 255,
                                   [10 * k for k in numbers], atol=1e-4)
    cropped = KohlerDataset(tmp_path, crop=4, flip=True, seed=3)[0]
    assert cropped["blur"].shape == (3, 4, 4) and cropped["sharp_frames"].shape == (5, 3, 4, 4)


def test_kohler_refuses_incomplete_layouts(tmp_path):
    _kohler(tmp_path)
    with pytest.raises(DeblurkitError,
                       match=r"Blurry1_1: frames \[7\] not found \(has 5 frames numbered 1..5\)"):
        KohlerDataset(tmp_path, frames=7)
    with pytest.raises(ConfigError, match="frames"):
        KohlerDataset(tmp_path, frames="middle-ish")
    with pytest.raises(ConfigError, match="frames"):
        KohlerDataset(tmp_path, frames=[])
    _png(tmp_path / "Blurry4_12.png", _rand(3, 6, 6))
    with pytest.raises(DeblurkitError, match=r"1 blurred photos have no .*first: Blurry4_12"):
        KohlerDataset(tmp_path)
    with pytest.raises(DeblurkitError, match="no Blurry"):
        KohlerDataset(tmp_path / "Image1")


# ------------------------------------------------------------------------------------------
# Levin


def _circular_blur(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Circular true convolution by FFT, kernel centre at (kh//2, kw//2): an independent reference."""
    kh, kw = k.shape
    pad = np.zeros_like(x)
    pad[:kh, :kw] = k
    pad = np.roll(pad, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    return np.real(np.fft.ifft2(np.fft.fft2(x) * np.fft.fft2(pad)))


def _levin(root: Path) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    k = np.zeros((7, 5))
    k[0, 0], k[1, 1], k[3, 2], k[6, 4], k[2, 4] = 0.35, 0.25, 0.2, 0.15, 0.05  # far from symmetric
    y = np.clip(np.rint(_circular_blur(x / 255.0, k) * 255), 0, 255).astype(np.uint8)
    _png(root / "sharp" / "im1.png", x)
    _png(root / "blur" / "im1_ker1.png", y)
    _png(root / "blur" / "im1_ker2.png", x)
    (root / "kernels").mkdir()
    np.save(root / "kernels" / "ker1.npy", k)
    np.save(root / "kernels" / "ker2.npy", np.ones((1, 1)))
    return x, k


def test_levin_kernel_orientation_reproduces_a_circular_blur(tmp_path):
    """The finding documented on LevinDataset, on a constructed case: the stored kernel (not its
    flip) reproduces the noise-free circular blur up to 8-bit rounding."""
    _levin(tmp_path)
    ds = LevinDataset(tmp_path)
    assert ds.names == ["im1_ker1", "im1_ker2"] and ds.kernel_indices == [1, 2]
    item = ds[0]
    assert item["image"] == "im1" and item["kernel_index"] == 1
    assert item["blur"].shape == (1, 32, 32) and item["kernel"].shape == (7, 5)
    assert item["kernel"].dtype == torch.float32
    x, y, k = item["sharp"][0].numpy(), item["blur"][0].numpy(), item["kernel"].numpy()
    err = np.abs(_circular_blur(x, k) - y)
    assert err.max() <= 0.5 / 255 + 1e-6
    flipped = np.abs(_circular_blur(x, k[::-1, ::-1]) - y).mean()
    assert flipped > 20 * err.mean()


def test_levin_flip_augmentation_turns_the_kernel_too(tmp_path):
    _levin(tmp_path)
    for seed in range(6):
        item = LevinDataset(tmp_path, flip=True, seed=seed)[0]
        x, y, k = item["sharp"][0].numpy(), item["blur"][0].numpy(), item["kernel"].numpy()
        assert np.abs(_circular_blur(x, k) - y).max() <= 0.5 / 255 + 1e-6


def test_levin_refuses_unpairable_files(tmp_path):
    _levin(tmp_path)
    _png(tmp_path / "blur" / "im1_ker9.png", _rand(0, c=None))
    with pytest.raises(DeblurkitError, match=r"im1_ker9 \(no kernels/ker9\.\*\)"):
        LevinDataset(tmp_path)
    (tmp_path / "blur" / "im1_ker9.png").unlink()
    _png(tmp_path / "blur" / "im3_ker1.png", _rand(0, c=None))
    with pytest.raises(DeblurkitError, match=r"im3_ker1 \(no sharp/im3\.\*\)"):
        LevinDataset(tmp_path)
    (tmp_path / "blur" / "im3_ker1.png").unlink()
    _png(tmp_path / "blur" / "photo.png", _rand(0, c=None))
    with pytest.raises(DeblurkitError, match=r"photo \(expected <image>_ker<K>\)"):
        LevinDataset(tmp_path)


# ------------------------------------------------------------------------------------------
# Lai


def _lai(root: Path) -> None:
    for i, name in enumerate(["car2", "bird", "family", "text1"]):
        _png(root / f"{name}.png", _rand(i))
    (root / "attribute.txt").write_text(
        "car2        manmade         saturated\n"
        "bird        natural\n"
        "\n"
        "family      manmade         people          saturated\n"
        "text1       text\n")


def test_lai_attributes_and_subsets(tmp_path):
    _lai(tmp_path)
    ds = LaiDataset(tmp_path)
    assert ds.names == ["bird", "car2", "family", "text1"]
    assert ds.attributes["family"] == ("manmade", "people", "saturated")
    assert ds.pairs[0] == (tmp_path / "bird.png", None)
    item = ds[1]
    assert item["name"] == "car2" and item["attributes"] == "manmade,saturated"
    assert "sharp" not in item
    np.testing.assert_array_equal(item["blur"].numpy(), _chw(_rand(0) / np.float32(255)))
    assert LaiDataset(tmp_path, subset="saturated").names == ["car2", "family"]
    assert LaiDataset(tmp_path, subset=["saturated", "people"]).names == ["family"]
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["attributes"] == ["natural", "manmade,saturated", "manmade,people,saturated", "text"]


def test_lai_refuses_bad_subsets_and_attribute_files(tmp_path):
    _lai(tmp_path)
    with pytest.raises(ConfigError, match=r"no photo has attribute 'blurry'; attribute.txt lists "
                                          r"manmade, natural, people, saturated, text"):
        LaiDataset(tmp_path, subset="blurry")
    with pytest.raises(DeblurkitError, match="no photo .* has all of natural, text"):
        LaiDataset(tmp_path, subset=("natural", "text"))
    with pytest.raises(ConfigError, match="subset"):
        LaiDataset(tmp_path, subset=[3])
    (tmp_path / "bird.png").unlink()
    with pytest.raises(DeblurkitError, match=r"attribute.txt: 1 names have no photo .*first: bird"):
        LaiDataset(tmp_path)
    (tmp_path / "attribute.txt").unlink()
    assert LaiDataset(tmp_path)[0]["attributes"] == ""
    with pytest.raises(DeblurkitError, match="attribute.txt not found"):
        LaiDataset(tmp_path, subset="text")


# ------------------------------------------------------------------------------------------
# ImageFolder


def test_image_folder_recursive_sorted_and_single_file(tmp_path):
    want = {name: _png(tmp_path / f"{name}.png", _rand(i, c=None if i == 1 else 3))
            for i, name in enumerate(["b", "a", "z/c"])}
    (tmp_path / "readme.md").write_text("x")
    ds = ImageFolder(tmp_path)
    assert ds.names == ["a", "b", "z/c"]
    item = ds[0]
    assert item["image"].shape == (1, 8, 10) and item["name"] == "a"
    np.testing.assert_array_equal(item["image"].numpy(), _chw(want["a"]))
    assert ImageFolder(tmp_path, recursive=False).names == ["a", "b"]
    single = ImageFolder(tmp_path / "z" / "c.png")
    assert single.names == ["c"] and single.pairs == [(tmp_path / "z" / "c.png", None)]
    np.testing.assert_array_equal(single[0]["image"].numpy(), _chw(want["z/c"]))
    with pytest.raises(DeblurkitError, match="not an image file"):
        ImageFolder(tmp_path / "readme.md")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DeblurkitError, match="no images found"):
        ImageFolder(tmp_path / "empty")
    with pytest.raises(DeblurkitError, match="not a folder"):
        ImageFolder(tmp_path / "missing")
