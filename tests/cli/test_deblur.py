"""`deblurkit deblur`: folders, bad files, no overwriting, 16-bit, alpha, EXIF, formats.

The model is a stand-in ``y = 1 - x`` registered by monkeypatching ``deblurkit.models.load_pretrained``
under the name ``invert`` (so no shipped weights are needed and every output is known exactly); one
test loads a ``.safetensors`` file with ``--arch`` through the real registry.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import deblurkit.infer.api as api
import deblurkit.models as models
from deblurkit.cli import main
from deblurkit.io import read_image, write_image


class Invert(nn.Module):
    def __init__(self):
        super().__init__()
        self.one = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.one - x


@pytest.fixture(autouse=True)
def invert_model(monkeypatch, tmp_path_factory):
    # the default backend ("auto") exports to ONNX on the CPU: keep its cache out of ~/.cache
    monkeypatch.setenv("DEBLURKIT_CACHE", str(tmp_path_factory.getbasetemp() / "onnx-cache"))
    loads = []

    def fake_load(name, device="cpu"):
        loads.append(name)
        if name != "invert":
            raise models_error(name)
        return Invert()

    monkeypatch.setattr(models, "load_pretrained", fake_load, raising=False)
    api.clear_cache()
    yield loads
    api.clear_cache()


def models_error(name):
    from deblurkit.errors import ConfigError

    return ConfigError(f"model: unknown name {name!r}")


def _rgb8(path, rng, size=(20, 30)):
    a = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(a).save(path)
    return a


def _tree(tmp_path, rng):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    a = _rgb8(src / "a.png", rng)
    b16 = rng.integers(0, 65536, (12, 9, 3), dtype=np.uint16)
    write_image(src / "sub" / "b.png", b16 / 65535.0, bit_depth=16)
    rgba = rng.integers(0, 256, (10, 14, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(src / "c.png")
    write_image(src / "sub" / "d.tif", b16[:5, :7] / 65535.0, bit_depth=16)
    (src / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (src / "notes.txt").write_text("not an image, skipped")
    (src / ".hidden.png").write_bytes(b"skipped too")
    return src, a, b16, rgba


def test_folder_with_corrupt_file(tmp_path, rng, capsys):
    src, a, b16, rgba = _tree(tmp_path, rng)
    out = tmp_path / "out"
    rc = main(["deblur", str(src), "-o", str(out), "--model", "invert"])
    err = capsys.readouterr().err
    assert rc == 2
    assert str(src / "bad.jpg") in err and "failed" in err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == \
        ["a.png", "c.png", "sub", "sub/b.png", "sub/d.tif"]  # nothing for bad.jpg, no temp files
    got = np.asarray(Image.open(out / "a.png"))
    assert np.array_equal(got, 255 - a)
    b_out = read_image(out / "sub" / "b.png")
    assert b_out.bit_depth == 16
    q = np.rint(b_out.pixels * 65535).astype(np.int64)
    assert np.abs(q - (65535 - b16.astype(np.int64))).max() <= 1  # 16 bits kept, not 8
    d_out = read_image(out / "sub" / "d.tif")
    assert d_out.bit_depth == 16 and d_out.pixels.shape == (5, 7, 3)
    q = np.rint(d_out.pixels * 65535).astype(np.int64)
    assert np.abs(q - (65535 - b16[:5, :7].astype(np.int64))).max() <= 1
    c_out = np.asarray(Image.open(out / "c.png"))
    assert c_out.shape == rgba.shape
    assert np.array_equal(c_out[..., 3], rgba[..., 3])  # alpha kept
    assert np.array_equal(c_out[..., :3], 255 - rgba[..., :3])


def test_inputs_are_never_overwritten(tmp_path, rng, capsys):
    src = tmp_path / "in"
    src.mkdir()
    a = _rgb8(src / "a.png", rng)
    before = (src / "a.png").read_bytes()
    rc = main(["deblur", str(src), "-o", str(src), "--model", "invert"])
    assert rc == 2
    assert "refusing to overwrite input" in capsys.readouterr().err
    assert (src / "a.png").read_bytes() == before and [p.name for p in src.iterdir()] == ["a.png"]
    # a file argument whose output path is itself
    rc = main(["deblur", str(src / "a.png"), "-o", str(src), "--model", "invert"])
    assert rc == 2 and (src / "a.png").read_bytes() == before
    # with a suffix the output is a new file beside it
    rc = main(["deblur", str(src / "a.png"), "-o", str(src), "--model", "invert", "--suffix", "_x"])
    assert rc == 0 and (src / "a.png").read_bytes() == before
    assert np.array_equal(np.asarray(Image.open(src / "a_x.png")), 255 - a)


def test_output_inside_input_folder_is_not_rescanned(tmp_path, rng):
    src = tmp_path / "in"
    src.mkdir()
    _rgb8(src / "a.png", rng)
    for _ in range(2):  # the second run must not pick up in/out/a.png as an input
        assert main(["deblur", str(src), "-o", str(src / "out"), "--model", "invert"]) == 0
    assert sorted(p.relative_to(src).as_posix() for p in src.rglob("*.png")) == ["a.png", "out/a.png"]


def test_format_suffix_and_collisions(tmp_path, rng, capsys):
    src = tmp_path / "in"
    src.mkdir()
    _rgb8(src / "a.png", rng)
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(src / "b.tif")
    out = tmp_path / "out"
    assert main(["deblur", str(src), "-o", str(out), "--model", "invert", "--format", "jpg",
                 "--suffix", "_sharp"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a_sharp.jpg", "b_sharp.jpg"]
    assert Image.open(out / "a_sharp.jpg").format == "JPEG"
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(src / "a.jpg")
    rc = main(["deblur", str(src), "-o", str(tmp_path / "o2"), "--model", "invert", "--format", "png"])
    assert rc == 2 and "would be written from both" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()


def test_exif_orientation_applied(tmp_path, rng):
    a = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(a).save(tmp_path / "r.jpg", exif=exif, quality=95)
    assert main(["deblur", str(tmp_path / "r.jpg"), "-o", str(tmp_path / "o"), "--model",
                 "invert", "--format", "png"]) == 0
    assert np.asarray(Image.open(tmp_path / "o" / "r.png")).shape == (40, 30, 3)


def test_missing_input_reported_others_processed(tmp_path, rng, capsys):
    _rgb8(tmp_path / "a.png", rng)
    rc = main(["deblur", str(tmp_path / "nope.png"), str(tmp_path / "a.png"), "-o",
               str(tmp_path / "o"), "--model", "invert"])
    err = capsys.readouterr().err
    assert rc == 2 and f"{tmp_path / 'nope.png'}: no such file or folder" in err
    assert (tmp_path / "o" / "a.png").is_file()


def test_tiles_and_ensemble_options(tmp_path, rng):
    a = _rgb8(tmp_path / "a.png", rng, size=(70, 90))
    assert main(["deblur", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--model", "invert",
                 "--tile", "32", "--overlap", "8", "--ensemble"]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o" / "a.png")), 255 - a)


def test_onnxruntime_backend(tmp_path, rng, monkeypatch):
    monkeypatch.setenv("DEBLURKIT_CACHE", str(tmp_path / "cache"))
    a = _rgb8(tmp_path / "a.png", rng)
    assert main(["deblur", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--model", "invert",
                 "--backend", "onnxruntime"]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o" / "a.png")), 255 - a)
    assert len(list((tmp_path / "cache").glob("invert-*.onnx"))) == 1


@pytest.mark.parametrize("argv,match", [
    (["--device", "cuda"], "CUDA is not available"),
    (["--tile", "16", "--overlap", "8"], "tile: side 16"),
    (["--overlap", "8"], "needs --tile"),
    (["--model", "nonexistent"], "unknown name 'nonexistent'"),
    (["--model", "classical", "--tile", "256"], "tile: --model classical is a kernel estimator"),
])
def test_bad_options_are_one_line_errors(tmp_path, rng, capsys, argv, match):
    if "cuda" in argv and torch.cuda.is_available():
        pytest.skip("checks the no-CUDA refusal")
    _rgb8(tmp_path / "a.png", rng)
    argv = ["deblur", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--model", "invert"] + argv
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0]
    assert not (tmp_path / "o").exists()


def test_safetensors_model_with_arch(tmp_path, rng):
    from safetensors.torch import save_file

    net = models.create("nafnet", width=8, enc_blocks=[1], middle_blocks=1, dec_blocks=[1], identity_init=False)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(("beta", "gamma")):
                p.normal_(0, 0.1)
    weights = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(weights),
              metadata={"options": '{"width": 8, "enc_blocks": [1], "middle_blocks": 1, '
                                   '"dec_blocks": [1]}'})
    a = _rgb8(tmp_path / "a.png", rng)
    assert main(["deblur", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--model",
                 str(weights), "--arch", "nafnet"]) == 0
    got = np.asarray(Image.open(tmp_path / "o" / "a.png"))
    with torch.no_grad():
        ref = net.eval()(torch.from_numpy(a / 255.0).float().permute(2, 0, 1)[None])[0]
    ref = np.rint(ref.clamp(0, 1).permute(1, 2, 0).numpy() * 255)
    assert np.abs(got - ref).max() <= 1 and np.abs(got.astype(int) - a).mean() > 1
    # without --arch and without 'arch' metadata: a clear error
    assert main(["deblur", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--model",
                 str(weights)]) == 2
