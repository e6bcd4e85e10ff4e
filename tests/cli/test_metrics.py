"""`deblurkit metrics PRED GT`: JSON checked against the library, Markdown, matching by stem,
Levin and Köhler layouts, and one-line errors for unmatched files and size mismatches."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from deblurkit.cli import main
from deblurkit.io import read_image, to_tensor, write_image
from deblurkit.metrics import kohler_score, levin_score, plain_score


def _run(capsys, *argv):
    code = main(["metrics", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def folders(tmp_path, astronaut, rng):
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    for i, noise in enumerate((0.02, 0.05, 0.1)):
        img = astronaut[40 * i:40 * i + 60, 100:171]
        write_image(gt / f"im{i}.png", img)
        noisy = np.clip(img + noise * rng.standard_normal(img.shape), 0, 1).astype(np.float32)
        write_image(pred / f"im{i}.jpg" if i == 1 else pred / f"im{i}.png", noisy)
    return pred, gt


def _library(pred_path, gt_path, convention="skimage", crop_border=0):
    p = to_tensor(read_image(pred_path).pixels)
    t = to_tensor(read_image(gt_path).pixels)
    s = plain_score(p, t, ssim_convention=convention, crop_border=crop_border)
    return float(s.psnr[0]), float(s.ssim[0])


@pytest.mark.parametrize("convention", ["skimage", "matlab"])
def test_json_matches_library(capsys, folders, convention):
    pred, gt = folders
    code, out, _ = _run(capsys, pred, gt, "--json", "--ssim", convention, "--crop-border", 2)
    assert code == 0
    report = json.loads(out)
    assert set(report) == {"images", "mean"}
    assert [e["name"] for e in report["images"]] == ["im0", "im1", "im2"]
    expected = []
    for entry in report["images"]:
        name = entry["name"]
        pfile = pred / (f"{name}.jpg" if name == "im1" else f"{name}.png")
        p, s = _library(pfile, gt / f"{name}.png", convention, crop_border=2)
        assert entry["psnr"] == pytest.approx(p, abs=1e-9)
        assert entry["ssim"] == pytest.approx(s, abs=1e-9)
        expected.append((p, s))
    assert report["mean"]["psnr"] == pytest.approx(np.mean([p for p, _ in expected]), abs=1e-9)
    assert report["mean"]["ssim"] == pytest.approx(np.mean([s for _, s in expected]), abs=1e-9)
    assert report["images"][0]["psnr"] > report["images"][2]["psnr"]


def test_markdown_table_and_single_files(capsys, folders):
    pred, gt = folders
    code, out, _ = _run(capsys, pred, gt)
    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith("|")]
    assert rows[0] == "| image | PSNR (dB) | SSIM (skimage) |"
    assert len(rows) == 2 + 3 + 1 and rows[-1].startswith("| **mean** |")
    p, s = _library(pred / "im0.png", gt / "im0.png")
    assert f"| im0 | {p:.3f} | {s:.4f} |" in out
    code, out, _ = _run(capsys, pred / "im0.png", gt / "im0.png", "--json")
    assert code == 0
    entry = json.loads(out)["images"][0]
    assert entry["name"] == "im0" and entry["psnr"] == pytest.approx(p, abs=1e-9)


def test_identical_images_give_null_psnr(capsys, folders):
    _, gt = folders
    code, out, _ = _run(capsys, gt / "im0.png", gt / "im0.png", "--json")
    report = json.loads(out)
    assert code == 0 and report["images"][0]["psnr"] is None and report["mean"]["psnr"] is None
    assert report["images"][0]["ssim"] == 1.0
    code, out, _ = _run(capsys, gt / "im0.png", gt / "im0.png")
    assert "| im0 | inf | 1.0000 |" in out


def _error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("deblurkit metrics: error: ")
    return lines[0]


def test_unmatched_files_are_an_error_unless_allowed(capsys, folders, astronaut):
    pred, gt = folders
    write_image(pred / "extra.png", astronaut[:60, :71])
    (gt / "im2.png").rename(gt / "other.png")
    code, out, err = _run(capsys, pred, gt, "--json")
    line = _error_line(err)
    assert code == 2 and out == ""
    assert "2 prediction(s): extra, im2" in line and "1 ground truth(s): other" in line
    code, out, err = _run(capsys, pred, gt, "--json", "--allow-missing")
    assert code == 0
    assert [e["name"] for e in json.loads(out)["images"]] == ["im0", "im1"]
    assert "extra, im2" in err


def test_size_mismatch_names_both_files(capsys, folders, astronaut):
    pred, gt = folders
    write_image(pred / "im0.png", astronaut[:61, :71])
    code, _, err = _run(capsys, pred, gt)
    line = _error_line(err)
    assert code == 2
    assert f"PRED {pred / 'im0.png'} is 71x61 with 3 channel(s)" in line
    assert f"GT {gt / 'im0.png'} is 71x60 with 3 channel(s)" in line


def test_bad_arguments(capsys, folders, tmp_path):
    pred, gt = folders
    code, _, err = _run(capsys, pred, gt, "--protocol", "levin", "--crop-border", "3")
    assert code == 2 and "use --border with --protocol levin" in _error_line(err)
    code, _, err = _run(capsys, pred, gt / "im0.png")
    assert code == 2 and "is a file but PRED" in _error_line(err)
    code, _, err = _run(capsys, tmp_path / "nope", gt)
    assert code == 2 and f"PRED {tmp_path / 'nope'}: no such file or folder" in _error_line(err)
    (pred / "im0.jpg").write_bytes((pred / "im0.png").read_bytes())
    code, _, err = _run(capsys, pred, gt)
    assert code == 2 and "two images with the stem 'im0'" in _error_line(err)
    with pytest.raises(SystemExit):
        main(["metrics", str(pred), str(gt), "--ssim", "gopro"])


def test_levin_protocol_with_reference(capsys, tmp_path, camera):
    sharp = camera[100:200, 120:230]
    folders = {k: tmp_path / k for k in ("pred", "gt", "ref")}
    write_image(folders["gt"] / "im1_k1.png", sharp)
    write_image(folders["pred"] / "im1_k1.png", np.roll(sharp, (2, -3), axis=(0, 1)))
    write_image(folders["ref"] / "im1_k1.png", np.clip(sharp + 0.05, 0, 1))
    code, out, _ = _run(capsys, folders["pred"], folders["gt"], "--protocol", "levin",
                        "--reference", folders["ref"], "--json")
    assert code == 0
    entry = json.loads(out)["images"][0]
    assert entry["shift"] == [2.0, -3.0] and entry["psnr"] is None and entry["error_ratio"] == 0
    lib = levin_score(to_tensor(read_image(folders["pred"] / "im1_k1.png").pixels),
                      to_tensor(read_image(folders["gt"] / "im1_k1.png").pixels))
    assert entry["ssim"] == pytest.approx(float(lib.ssim[0]), abs=1e-12)
    code, out, _ = _run(capsys, folders["pred"], folders["gt"], "--protocol", "levin")
    assert "| im1_k1 | inf | 1.0000 | (2, -3) |" in out


def test_kohler_protocol_frame_folders(capsys, tmp_path, astronaut):
    pred_dir, gt_dir = tmp_path / "pred", tmp_path / "gt"
    crops = [astronaut[y:y + 50, x:x + 60] for y, x in ((10, 200), (10, 215), (300, 30))]
    for i, crop in enumerate(crops):
        write_image(gt_dir / "blur1" / f"frame{i:03d}.png", crop)
    write_image(pred_dir / "blur1.png", np.roll(crops[1], (1, 2), axis=(0, 1)) * 0.75)
    code, out, _ = _run(capsys, pred_dir, gt_dir, "--protocol", "kohler", "--max-shift", "4",
                        "--json")
    assert code == 0
    entry = json.loads(out)["images"][0]
    assert entry["psnr_frame"] == "frame001.png" and entry["ssim_frame"] == "frame001.png"
    assert entry["frames"] == 3
    frames = np.stack([read_image(gt_dir / "blur1" / f"frame{i:03d}.png").pixels
                       for i in range(3)])
    lib = kohler_score(read_image(pred_dir / "blur1.png").pixels, frames, max_shift=4)
    assert entry["psnr"] == pytest.approx(lib.psnr, abs=1e-9)
    assert entry["ssim"] == pytest.approx(lib.ssim, abs=1e-12)
    assert lib.psnr > 40 and math.isfinite(lib.psnr)
    # a single prediction file with its folder of frames
    code, out, _ = _run(capsys, pred_dir / "blur1.png", gt_dir / "blur1", "--protocol", "kohler",
                        "--max-shift", "4", "--json")
    assert code == 0 and json.loads(out)["images"][0]["psnr"] == pytest.approx(lib.psnr)
    (gt_dir / "empty").mkdir()
    write_image(pred_dir / "empty.png", crops[0])
    code, _, err = _run(capsys, pred_dir, gt_dir, "--protocol", "kohler")
    assert code == 2 and "no image files (sharp frames)" in _error_line(err)
    (gt_dir / "empty").rmdir()
    (pred_dir / "empty.png").unlink()
    # the default max shift (20) leaves too little of a 60x50 image: the error names the files
    code, _, err = _run(capsys, pred_dir, gt_dir, "--protocol", "kohler")
    line = _error_line(err)
    assert code == 2 and f"{pred_dir / 'blur1.png'} vs {gt_dir / 'blur1'}: " in line
    assert "needs at least 11x11 pixels" in line


def test_cli_conventions_match_library():
    from deblurkit.cli import metrics as cli_metrics
    from deblurkit.metrics import FITS, SSIM_CONVENTIONS

    assert cli_metrics._CONVENTIONS == SSIM_CONVENTIONS and cli_metrics._FITS == FITS
