"""``deblurkit synth`` end to end on constructed photos: layout, content, determinism, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage, signal

from deblurkit.cli import main

H, W = 36, 44


def _u8(a: np.ndarray) -> np.ndarray:
    return np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)


def load(path: Path) -> np.ndarray:
    """8-bit PNG as float64 (H, W, C), read with Pillow (independent of deblurkit.io)."""
    a = np.asarray(Image.open(path), dtype=np.float64) / 255.0
    return a[..., None] if a.ndim == 2 else a


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Three small photos: RGB gradient + checkerboard, RGB texture, grey rings."""
    src = tmp_path / "sharp_in"
    src.mkdir()
    yy, xx = np.mgrid[:H, :W] / np.array([H, W])[:, None, None]
    checker = ((np.arange(H)[:, None] // 4 + np.arange(W)[None] // 4) % 2).astype(float)
    Image.fromarray(_u8(np.stack([xx, yy, 0.3 + 0.5 * checker], axis=2))).save(src / "a.png")
    rng = np.random.default_rng(0)
    Image.fromarray(_u8(ndimage.uniform_filter(rng.random((H, W, 3)), (3, 3, 1)))).save(
        src / "b.png")
    rings = 0.5 + 0.5 * np.cos(np.hypot(yy - 0.5, xx - 0.5) * 40)
    Image.fromarray(_u8(rings)).save(src / "c.png")
    (src / "notes.txt").write_text("not an image, ignored")
    return src


def run_synth(*args: object) -> int:
    return main(["synth", *map(str, args)])


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_layout_and_content_match_an_independent_blur(photos, tmp_path):
    out = tmp_path / "out"
    assert run_synth(photos, "-o", out, "--seed", 3) == 0
    files = set(tree(out))
    for name in "abc":
        for rel in (f"blur/{name}.png", f"sharp/{name}.png", f"kernels/{name}.npy",
                    f"kernels/{name}.png"):
            assert rel in files
    assert not any("notes" in f for f in files)
    assert not [f for f in files if ".tmp" in f]  # no temporary leftovers
    for name in "abc":
        sharp, blurred = load(out / "sharp" / f"{name}.png"), load(out / "blur" / f"{name}.png")
        source = load(photos / f"{name}.png")
        np.testing.assert_array_equal(sharp, source)  # no crop: the photo itself
        kernel = np.load(out / "kernels" / f"{name}.npy")
        assert kernel.dtype == np.float32 and abs(kernel.sum() - 1) < 1e-5 and kernel.min() >= 0
        assert 11 <= kernel.shape[0] <= 31 and kernel.shape[0] % 2 == 1
        ref = np.stack([ndimage.convolve(source[..., c], kernel.astype(np.float64),
                                         mode="reflect") for c in range(source.shape[2])], axis=2)
        assert np.abs(blurred - ref).max() <= 0.5 / 255 + 1e-6  # 8-bit rounding only
        assert np.abs(blurred - sharp).mean() > 0.005              # it did blur


def test_same_seed_gives_identical_files_and_another_seed_does_not(photos, tmp_path):
    args = ("--noise", 0.02, "--jpeg", 70, "--count", 4, "--crop", "20x16",
            "--kernel-size", "5:9")
    assert run_synth(photos, "-o", tmp_path / "r1", "--seed", 11, *args) == 0
    assert run_synth(photos, "-o", tmp_path / "r2", "--seed", 11, *args) == 0
    assert run_synth(photos, "-o", tmp_path / "r3", "--seed", 12, *args) == 0
    first, second, other = (tree(tmp_path / r) for r in ("r1", "r2", "r3"))
    assert first == second
    assert first.keys() == other.keys()
    assert all(first[k] != other[k] for k in first if k.endswith(".npy"))
    # --count 4 over 3 photos: photos in turn, with the round in the name
    assert sorted(k for k in first if k.startswith("blur/")) == [
        "blur/a_0.png", "blur/a_1.png", "blur/b_0.png", "blur/c_0.png"]


def test_noise_and_jpeg_come_after_the_same_kernel(photos, tmp_path):
    assert run_synth(photos, "-o", tmp_path / "clean", "--seed", 5, "--kind", "gaussian") == 0
    assert run_synth(photos, "-o", tmp_path / "noisy", "--seed", 5, "--kind", "gaussian",
                     "--noise", 0.05) == 0
    clean, noisy = tmp_path / "clean", tmp_path / "noisy"
    for name in "abc":
        assert (clean / "kernels" / f"{name}.npy").read_bytes() == \
            (noisy / "kernels" / f"{name}.npy").read_bytes()
        diff = load(noisy / "blur" / f"{name}.png") - load(clean / "blur" / f"{name}.png")
        assert 0.03 < diff.std() < 0.06
        np.testing.assert_array_equal(load(noisy / "sharp" / f"{name}.png"),
                                      load(clean / "sharp" / f"{name}.png"))


def test_crop_is_blurred_without_boundary_effects(photos, tmp_path):
    out = tmp_path / "out"
    assert run_synth(photos, "-o", out, "--crop", "18x14", "--kind", "disk",
                     "--kernel-size", "5:9", "--grey") == 0
    for name in "abc":
        sharp, blurred = load(out / "sharp" / f"{name}.png"), load(out / "blur" / f"{name}.png")
        assert sharp.shape == blurred.shape == (14, 18, 1)
        kernel = np.load(out / "kernels" / f"{name}.npy").astype(np.float64)
        src = Image.open(photos / f"{name}.png")
        rgb = np.asarray(src.convert("RGB"), dtype=np.float64) / 255.0
        grey = rgb @ np.array([0.2126, 0.7152, 0.0722]) if src.mode != "L" else rgb[..., 0]
        # find the crop in the photo, then blur the region around it with scipy ('valid')
        kh = kernel.shape[0]
        r = kh // 2
        hits = [(y, x) for y in range(H - 13) for x in range(W - 17)
                if np.abs(grey[y:y + 14, x:x + 18] - sharp[..., 0]).max() <= 0.5 / 255 + 1e-6]
        assert hits
        y, x = hits[0]
        assert r <= y <= H - 14 - r and r <= x <= W - 18 - r  # room for the kernel
        ref = signal.convolve(grey[y - r:y + 14 + r, x - r:x + 18 + r], kernel, mode="valid")
        assert np.abs(blurred[..., 0] - ref).max() <= 1 / 255 + 1e-6


def test_gamma_blurs_in_linear_light(photos, tmp_path):
    out = tmp_path / "out"
    assert run_synth(photos, "-o", out, "--gamma", 2.2, "--kind", "motion", "--count", 1) == 0
    source = load(photos / "a.png")
    kernel = np.load(out / "kernels" / "a.npy").astype(np.float64)
    lin = np.stack([ndimage.convolve(source[..., c] ** 2.2, kernel, mode="reflect")
                    for c in range(3)], axis=2)
    assert np.abs(load(out / "blur" / "a.png") - lin ** (1 / 2.2)).max() <= 0.5 / 255 + 1e-5
    plain = np.stack([ndimage.convolve(source[..., c], kernel, mode="reflect") for c in range(3)],
                     axis=2)
    assert np.abs(load(out / "blur" / "a.png") - plain).max() > 5 / 255  # not the plain blur


def test_every_kind_runs(photos, tmp_path):
    for kind in ("motion", "shake", "gp", "gaussian", "disk", "mixed"):
        out = tmp_path / kind
        assert run_synth(photos, "-o", out, "--kind", kind, "--count", 1,
                         "--kernel-size", "9") == 0
        k = np.load(out / "kernels" / "a.npy")
        assert k.shape == (9, 9) and abs(k.sum() - 1) < 1e-5


def test_frames_mode_averages_in_linear_light(tmp_path):
    src = tmp_path / "clips"
    frames = {}
    for clip, n in (("c1", 7), ("c2", 9)):
        (src / clip).mkdir(parents=True)
        for i in range(n):
            f = np.full((20, 24, 3), 0.2)
            f[6:12, 2 + 2 * i:8 + 2 * i] = 0.9  # a square moving right
            Image.fromarray(_u8(f)).save(src / clip / f"{i:04d}.png")
            frames[clip, i] = _u8(f) / 255.0
    out = tmp_path / "out"
    assert run_synth(src, "-o", out, "--frames", "--frames-per-blur", 3) == 0
    names = sorted(p.stem for p in (out / "blur").iterdir())
    assert names == ["c1_0000", "c1_0003", "c2_0000", "c2_0003", "c2_0006"]
    assert not (out / "kernels").exists()
    stack = np.stack([frames["c2", i] for i in (3, 4, 5)])
    expected = np.mean(stack ** 2.2, axis=0) ** (1 / 2.2)
    assert np.abs(load(out / "blur" / "c2_0003.png") - expected).max() <= 0.5 / 255 + 1e-6
    np.testing.assert_array_equal(load(out / "sharp" / "c2_0003.png"), frames["c2", 4])


def test_errors_are_one_line_and_exit_2(photos, tmp_path, capsys):
    def error(*args) -> str:
        capsys.readouterr()
        assert run_synth(*args) == 2
        lines = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]
        assert len(lines) == 1
        return lines[0]

    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no image files found" in error(empty, "-o", tmp_path / "o1")
    assert not (tmp_path / "o1").exists()
    assert "does not exist" in error(tmp_path / "missing", "-o", tmp_path / "o2")
    assert "inside SHARP_DIR" in error(photos, "-o", photos / "out")
    assert "SHARP_DIR itself" in error(photos, "-o", photos)
    assert "contains SHARP_DIR" in error(photos, "-o", photos.parent)
    assert "--crop: expected WxH" in error(photos, "-o", tmp_path / "o3", "--crop", "12by3")
    assert "--kernel-size: " in error(photos, "-o", tmp_path / "o3", "--kernel-size", "9:5")
    assert "--noise: " in error(photos, "-o", tmp_path / "o3", "--noise", -1)
    assert "--jpeg: " in error(photos, "-o", tmp_path / "o3", "--jpeg", 0)
    assert "--frames-per-blur: must be odd" in error(photos, "-o", tmp_path / "o3", "--frames",
                                                     "--frames-per-blur", 4)
    assert "--kind and --kernel-size do not apply" in error(photos, "-o", tmp_path / "o3",
                                                            "--frames", "--kind", "disk")
    assert "no sub-folders" in error(photos, "-o", tmp_path / "o3", "--frames")
    assert not (tmp_path / "o3").exists()
    line = error(photos, "-o", tmp_path / "o4", "--crop", "60x20")
    assert "a.png: 44x36 is smaller than the" in line


def test_corrupt_photo_is_named_and_written_pairs_are_listed(photos, tmp_path, capsys):
    (photos / "d.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    out = tmp_path / "out"
    capsys.readouterr()
    assert run_synth(photos, "-o", out) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]
    assert len(err) == 1
    assert "d.png" in err[0] and "stopped after writing 3 of 4 pairs" in err[0]
    assert "a, b, c" in err[0]
    assert sorted(p.name for p in (out / "blur").iterdir()) == ["a.png", "b.png", "c.png"]
    assert not any("d" == p.stem for p in out.rglob("*"))


def test_a_pair_that_fails_half_way_is_removed(photos, tmp_path, capsys, monkeypatch):
    import deblurkit.io.image as image_io
    from deblurkit.errors import ImageError

    real = image_io.write_image

    def failing(path, pixels, **kw):
        if Path(path).parent.name == "blur" and Path(path).stem == "b":
            raise ImageError(f"{path}: cannot write (disk full)")
        return real(path, pixels, **kw)

    monkeypatch.setattr(image_io, "write_image", failing)
    out = tmp_path / "out"
    assert run_synth(photos, "-o", out) == 2
    assert "b.png: cannot write (disk full); stopped after writing 1 of 3" in capsys.readouterr().err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.*")) == [
        "blur/a.png", "kernels/a.npy", "kernels/a.png", "kernels/a_view.png", "sharp/a.png"]


def test_duplicate_stems_are_refused(photos, tmp_path, capsys):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(photos / "a.jpg")
    assert run_synth(photos, "-o", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "a.jpg and a.png have the same name stem" in err
    assert not (tmp_path / "out").exists()
