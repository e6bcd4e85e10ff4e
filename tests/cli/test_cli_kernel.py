"""``deblurkit kernel`` end to end: kernels consistent with ``deblurkit synth``, motion fields,
errors and no partial output."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from deblurkit import estimation
from deblurkit.blur import blur
from deblurkit.cli import main
from deblurkit.cli.kernel import motion_field_picture
from deblurkit.estimation._common import kernel_similarity
from deblurkit.io import read_image, read_kernel


@pytest.fixture(scope="module")
def pair(tmp_path_factory, camera):
    """One grey pair from ``deblurkit synth`` with a known, clearly asymmetric shake kernel."""
    root = tmp_path_factory.mktemp("kernel")
    (root / "sharp").mkdir()
    Image.fromarray(np.round(camera[100:400, 100:400] * 255).astype(np.uint8)).save(
        root / "sharp" / "cam.png")
    assert main(["synth", str(root / "sharp"), "-o", str(root / "pairs"), "--kind", "shake",
                 "--kernel-size", "21", "--grey", "--crop", "255x255", "--seed", "9"]) == 0
    return root / "pairs"


def test_estimated_kernel_reblurs_the_sharp_image_like_synth(pair, tmp_path, capsys):
    out = tmp_path / "est" / "cam"
    assert main(["kernel", str(pair / "blur" / "cam.png"), "-o", str(out)]) == 0
    assert "classical kernel 31x31" in capsys.readouterr().out
    kernel = np.load(tmp_path / "est" / "cam.npy")
    truth = np.load(pair / "kernels" / "cam.npy")
    # the test needs a kernel whose flip is a different blur
    flip = truth[::-1, ::-1]
    assert float((flip * truth).sum() / (truth * truth).sum()) < 0.3
    assert kernel.dtype == np.float32 and kernel.min() >= 0
    assert abs(float(kernel.sum()) - 1.0) < 1e-5
    assert kernel_similarity(kernel, truth) > 0.8          # measured when written: 0.87

    sharp = read_image(pair / "sharp" / "cam.png").pixels[..., 0]
    blurred = read_image(pair / "blur" / "cam.png").pixels[..., 0]
    inner = (slice(20, -20), slice(20, -20))

    def error(k: np.ndarray) -> float:
        again = blur(sharp, np.ascontiguousarray(k), boundary="reflect")
        return float(np.sqrt(np.mean((again[inner] - blurred[inner]) ** 2)))

    # measured when written: 0.0095 (estimate), 0.036 (flipped), 0.101 (no blur), 0.0011 (truth)
    assert error(kernel) < 0.4 * error(kernel[::-1, ::-1])
    assert error(kernel) < 0.15 * error(np.ones((1, 1), np.float32))
    # the PNG holds the same kernel to 16-bit precision; the view is enlarged
    assert np.allclose(read_kernel(tmp_path / "est" / "cam.png"), kernel, atol=1e-4)
    view = Image.open(tmp_path / "est" / "cam_view.png")
    assert view.size[0] >= 128 and view.size[0] % 31 == 0


def test_kernel_size_option_and_npy_suffix(pair, tmp_path):
    assert main(["kernel", str(pair / "blur" / "cam.png"), "-o", str(tmp_path / "k.npy"),
                 "--kernel-size", "25"]) == 0
    assert np.load(tmp_path / "k.npy").shape == (25, 25)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.npy", "k.png", "k_view.png"]


def test_bad_inputs_give_one_line_and_no_output(pair, tmp_path, capsys):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    cases = [
        (["kernel", str(broken), "-o", str(tmp_path / "a")], str(broken)),
        (["kernel", str(tmp_path / "missing.png"), "-o", str(tmp_path / "a")], "missing.png"),
        (["kernel", str(pair / "blur" / "cam.png"), "-o", str(tmp_path / "a"),
          "--model", "nafnet"], "--model 'nafnet': not a kernel estimator; choose one of: "),
        (["kernel", str(pair / "blur" / "cam.png"), "-o", str(tmp_path / "a"),
          "--kernel-size", "20"], "kernel_size: must be odd, got 20"),
    ]
    for argv, expected in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert expected in err and "\n" not in err, err
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((20, 40), np.uint8)).save(tiny)
    assert main(["kernel", str(tiny), "-o", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip()
    assert str(tiny) in err and "too small" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.png", "tiny.png"]


def test_refuses_to_overwrite_the_input(tmp_path, capsys):
    src = tmp_path / "x.png"
    Image.fromarray(np.zeros((80, 80), np.uint8)).save(src)
    before = src.read_bytes()
    assert main(["kernel", str(src), "-o", str(src)]) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert src.read_bytes() == before


class FakeField:
    """A non-uniform estimator returning a known field (rotation about the centre)."""

    kind = "nonuniform"

    def estimate_motion_field(self, image):
        h, w = image.shape[:2]
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        return 0.1 * (y - h / 2), -0.1 * (x - w / 2)

    def deblur(self, image):
        return image


def test_motion_field_output(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(estimation, "ESTIMATORS", dict(estimation.ESTIMATORS))
    estimation.register("fakefield", FakeField)
    src = tmp_path / "photo.png"
    Image.fromarray(np.full((60, 90, 3), 128, np.uint8)).save(src)
    assert main(["kernel", str(src), "-o", str(tmp_path / "m"), "--model", "fakefield"]) == 0
    assert "fakefield motion field 90x60" in capsys.readouterr().out
    field = np.load(tmp_path / "m_uv.npy")
    u, v = FakeField().estimate_motion_field(np.zeros((60, 90, 3)))
    assert field.shape == (2, 60, 90) and field.dtype == np.float32
    assert np.array_equal(field[0], u) and np.array_equal(field[1], v)
    picture = np.asarray(Image.open(tmp_path / "m_field.png"))
    assert picture.shape == (60, 90, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m_field.png", "m_uv.npy", "photo.png"]


def test_motion_field_picture_colours():
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=(2, 30, 40)) * 5
    a = motion_field_picture(u, v, step=1000)      # no segments drawn
    b = motion_field_picture(-u, -v, step=1000)
    assert np.allclose(a, b, atol=1e-6)           # (u, v) and (-u, -v) are the same blur
    assert a.min() >= 0 and a.max() <= 1
    assert np.allclose(motion_field_picture(np.zeros((5, 5)), np.zeros((5, 5))), 1.0)
    # the longest vector is fully saturated, and horizontal / vertical differ in hue
    lines = motion_field_picture(np.array([[4.0, 0.0]]), np.array([[0.0, 4.0]]), step=1000)
    assert np.allclose(lines[0, 0], [1, 0, 0]) and not np.allclose(lines[0, 1], lines[0, 0])
    drawn = motion_field_picture(np.full((24, 24), 10.0), np.zeros((24, 24)), step=24)
    assert np.allclose(drawn[12, 7:18], 0.0)      # a black horizontal segment of length 10
