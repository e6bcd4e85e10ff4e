"""Image reading/writing: exact round trips, independent decoders, EXIF, bad input, tensors."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image, ImageCms, ImageFile, ImageOps

from deblurkit.errors import DeblurkitError, ImageError
from deblurkit.io import from_tensor, read_array, read_image, to_tensor, write_image
from io_pngref import chunk, naive_png

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture
def photo_q(astronaut, rng) -> dict[int, np.ndarray]:
    """Quantised RGBA test content: {8: uint8 (48, 64, 4), 16: uint16 (48, 64, 4)}."""
    rgb8 = np.rint(astronaut[200:248, 220:284] * 255).astype(np.uint8)
    alpha8 = np.tile(np.linspace(0, 255, 64).astype(np.uint8)[None], (48, 1))
    q8 = np.dstack([rgb8, alpha8])
    q16 = q8.astype(np.uint16) * 257 ^ rng.integers(0, 256, q8.shape, dtype=np.uint16)
    return {8: q8, 16: q16}


def _channels(q: np.ndarray, c: int) -> np.ndarray:
    return q[..., :c] if c != 1 else q[..., :1]


def _one_line_from_path(exc: pytest.ExceptionInfo, path: Path) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(str(path)), msg
    assert isinstance(exc.value, DeblurkitError)
    return msg


# ---------------------------------------------------------------------------------------------
# exact round trips, checked with an independent decoder


LOSSLESS = [  # (extension, bit depth, channels)
    *[("png", b, c) for b in (8, 16) for c in (1, 3, 4)],
    *[("tif", b, c) for b in (8, 16) for c in (1, 3, 4)],
    ("bmp", 8, 1), ("bmp", 8, 3), ("webp", 8, 3), ("webp", 8, 4),
]


@pytest.mark.parametrize(("ext", "bits", "channels"), LOSSLESS)
def test_lossless_round_trip_is_exact(tmp_path, photo_q, ext, bits, channels):
    q = _channels(photo_q[bits], channels)
    scale = 2 ** bits - 1
    pixels = q.astype(np.float32) / scale
    path = tmp_path / f"img.{ext}"
    assert write_image(path, pixels, bit_depth=bits, lossless=(ext == "webp")) == path
    got = read_image(path)
    assert got.bit_depth == bits and got.path == path
    assert got.format == {"png": "PNG", "tif": "TIFF", "bmp": "BMP", "webp": "WEBP"}[ext]
    assert got.pixels.dtype == np.float32 and got.pixels.shape == q.shape
    np.testing.assert_array_equal(got.pixels, pixels)
    np.testing.assert_array_equal(np.rint(got.pixels * scale), q)

    # independent decoder: Pillow reads 8-bit and 16-bit grey exactly, 16-bit colour as high byte
    ref = np.asarray(Image.open(path))
    ref = ref[..., None] if ref.ndim == 2 else ref
    expected = q if (bits == 8 or channels == 1) else (q >> 8).astype(np.uint8)
    np.testing.assert_array_equal(ref.astype(np.int64), expected.astype(np.int64))


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_every_16bit_and_8bit_value_survives(tmp_path, ext):
    all16 = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    path = tmp_path / f"all.{ext}"
    write_image(path, all16 / 65535.0, bit_depth=16)
    np.testing.assert_array_equal(np.rint(read_array(path)[..., 0] * 65535), all16)
    all8 = np.arange(256, dtype=np.uint8).reshape(16, 16)
    write_image(path, all8 / 255.0, bit_depth=8)
    np.testing.assert_array_equal(np.rint(read_array(path)[..., 0] * 255), all8)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_reads_pillow_written_8bit_files(tmp_path, photo_q, channels):
    q = _channels(photo_q[8], channels)
    im = Image.fromarray(q[..., 0] if channels == 1 else q)
    for ext in ("png", "tif", "webp") if channels == 4 else ("png", "tif", "bmp"):
        path = tmp_path / f"pil.{ext}"
        im.save(path, lossless=True, exact=True) if ext == "webp" else im.save(path)
        got = read_image(path)
        assert got.bit_depth == 8
        np.testing.assert_array_equal(np.rint(got.pixels * 255).astype(np.uint8), q)


def test_reads_16bit_grey_written_by_pillow(tmp_path, photo_q):
    q = photo_q[16][..., 0]
    for ext in ("png", "tif"):
        path = tmp_path / f"g16.{ext}"
        Image.fromarray(q).save(path)
        got = read_image(path)
        assert got.bit_depth == 16 and got.pixels.shape == (*q.shape, 1)
        np.testing.assert_array_equal(np.rint(got.pixels[..., 0] * 65535), q)


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_reads_16bit_colour_png_from_an_independent_writer(tmp_path, photo_q, channels):
    q = photo_q[16][..., :channels]
    path = tmp_path / "ref16.png"
    path.write_bytes(naive_png(q, filters=(0, 1, 2, 3, 4)))
    got = read_image(path)
    assert got.bit_depth == 16
    expected = np.dstack([q[..., :1]] * 3 + [q[..., 1:]]) if channels == 2 else q  # GA -> RGBA
    np.testing.assert_array_equal(np.rint(got.pixels * 65535), expected)


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("planar", [False, True])
def test_reads_16bit_colour_tiff_written_by_tifffile(tmp_path, photo_q, channels, planar):
    q = photo_q[16][..., :channels]
    path = tmp_path / "t16.tif"
    data = np.moveaxis(q, -1, 0) if planar else q
    tifffile.imwrite(path, data, photometric="rgb", planarconfig="separate" if planar else "contig",
                     extrasamples=["unassalpha"] if channels == 4 else None)
    got = read_image(path)
    assert got.bit_depth == 16 and got.format == "TIFF"
    np.testing.assert_array_equal(np.rint(got.pixels * 65535), q)


def test_tiff_layouts_pillow_cannot_read(tmp_path, photo_q):
    q = photo_q[16]
    # 16-bit grey + alpha: Pillow cannot open it at all -> RGBA, grey repeated
    path = tmp_path / "ga16.tif"
    tags = [(274, "H", 1, 6, True), (34675, "B", 4, b"icc!", True)]  # orientation 6, ICC
    tifffile.imwrite(path, q[..., [0, 3]], photometric="minisblack", extrasamples=["unassalpha"],
                     metadata=None, extratags=tags)
    got = read_image(path)
    assert got.bit_depth == 16 and got.icc_profile == b"icc!"
    expected = np.rot90(np.dstack([q[..., :1]] * 3 + [q[..., 3:]]), -1)  # orientation 6
    np.testing.assert_array_equal(np.rint(got.pixels * 65535), expected)
    # premultiplied (associated) alpha is un-premultiplied, as Pillow does for 8-bit "RGBa"
    alpha = np.full(q.shape[:2], 32768, np.uint16)
    alpha[0, 0] = 0
    premul = np.rint(q[..., :3] * (alpha[..., None] / 65535.0)).astype(np.uint16)
    premul[0, 0] = 0
    tifffile.imwrite(tmp_path / "pm.tif", np.dstack([premul, alpha]), photometric="rgb",
                     extrasamples=["assocalpha"])
    got = np.rint(read_array(tmp_path / "pm.tif") * 65535)
    np.testing.assert_array_equal(got[..., 3], alpha)
    np.testing.assert_allclose(got[1:, 1:, :3], q[1:, 1:, :3], atol=1.01)  # 15-bit alpha precision
    assert (got[0, 0, :3] == 0).all()


def test_corrupt_compressed_16bit_tiff_is_refused(tmp_path, photo_q):
    path = tmp_path / "z.tif"
    tifffile.imwrite(path, photo_q[16][..., :3], photometric="rgb", compression="zlib")
    with tifffile.TiffFile(path) as tif:
        offset = int(tif.pages[0].dataoffsets[0])
    data = bytearray(path.read_bytes())
    data[offset + 2: offset + 40] = bytes(38)  # same length, garbage deflate stream
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError) as exc:
        read_image(path)
    assert "truncated or corrupt TIFF data" in _one_line_from_path(exc, path)


# ---------------------------------------------------------------------------------------------
# lossy formats, modes, determinism


def test_jpeg_matches_pillow_decode_and_is_deterministic(tmp_path, astronaut):
    path = tmp_path / "a.jpg"
    pixels = astronaut[:128, :160]
    write_image(path, pixels, quality=95)
    first, second = read_image(path), read_image(path)
    assert first.format == "JPEG" and first.bit_depth == 8
    np.testing.assert_array_equal(first.pixels, second.pixels)
    ref = np.asarray(Image.open(path).convert("RGB"))
    np.testing.assert_array_equal(np.rint(first.pixels * 255).astype(np.uint8), ref)
    mse = float(np.mean((first.pixels - pixels) ** 2))
    assert 10 * np.log10(1 / mse) > 35  # quality 95, 4:4:4


def test_lossy_webp_is_close(tmp_path, astronaut):
    path = tmp_path / "a.webp"
    write_image(path, astronaut[:128, :160], quality=90)
    mse = float(np.mean((read_array(path) - astronaut[:128, :160]) ** 2))
    assert 10 * np.log10(1 / mse) > 30


def test_grey_webp_reads_back_as_equal_rgb(tmp_path, camera):
    path = tmp_path / "g.webp"
    write_image(path, camera[:64, :64], lossless=True)
    got = read_array(path)
    assert got.shape == (64, 64, 3)
    np.testing.assert_array_equal(got[..., 0], got[..., 2])
    np.testing.assert_allclose(got[..., 0], camera[:64, :64], atol=0.5 / 255)


def test_palette_modes_and_bilevel(tmp_path, rng):
    idx = rng.integers(0, 4, (10, 12)).astype(np.uint8)
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]], np.uint8)
    im = Image.fromarray(idx, mode="P")
    im.putpalette(palette.ravel().tolist())
    im.save(tmp_path / "p.png")
    np.testing.assert_array_equal(np.rint(read_array(tmp_path / "p.png") * 255), palette[idx])
    im.save(tmp_path / "pt.png", transparency=2)
    got = np.rint(read_array(tmp_path / "pt.png") * 255)
    assert got.shape == (10, 12, 4)
    np.testing.assert_array_equal(got[..., :3], palette[idx])
    np.testing.assert_array_equal(got[..., 3], np.where(idx == 2, 0, 255))
    Image.fromarray(idx > 1).save(tmp_path / "b.png")  # mode "1"
    bilevel = read_array(tmp_path / "b.png")[..., 0]
    np.testing.assert_array_equal(bilevel, (idx > 1).astype(np.float32))
    la = np.dstack([idx * 60, 255 - idx * 50]).astype(np.uint8)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    got = np.rint(read_array(tmp_path / "la.png") * 255)
    np.testing.assert_array_equal(got, np.dstack([la[..., :1]] * 3 + [la[..., 1:]]))


def test_cmyk_jpeg_becomes_rgb(tmp_path, astronaut):
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(np.rint(astronaut[:32, :32] * 255).astype(np.uint8)).convert("CMYK").save(path)
    got = read_array(path)
    assert got.shape == (32, 32, 3)
    ref = np.asarray(Image.open(path).convert("RGB"))
    np.testing.assert_array_equal(np.rint(got * 255).astype(np.uint8), ref)


def test_format_comes_from_content_not_extension(tmp_path, astronaut):
    path = tmp_path / "really_a_jpeg.png"
    Image.fromarray(np.rint(astronaut[:16, :16] * 255).astype(np.uint8)).save(path, "JPEG")
    assert read_image(path).format == "JPEG"


# ---------------------------------------------------------------------------------------------
# EXIF orientation, ICC


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow_exif_transpose(tmp_path, photo_q, orientation):
    q = photo_q[8][:, :50, :3]  # non-square
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.png"
    Image.fromarray(q).save(path, exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)))
    np.testing.assert_array_equal(np.rint(read_array(path) * 255).astype(np.uint8), expected)


def test_jpeg_orientation_6_is_rotated_clockwise(tmp_path, astronaut):
    raw = np.rint(astronaut[:40, :64] * 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rot.jpg"
    Image.fromarray(raw).save(path, exif=exif, quality=95)
    stored = np.asarray(Image.open(path))  # as stored, 40 x 64
    got = read_array(path)
    assert got.shape == (64, 40, 3)
    np.testing.assert_array_equal(np.rint(got * 255).astype(np.uint8), np.rot90(stored, -1))
    # the stored top-left corner is now the top-right corner
    np.testing.assert_array_equal(np.rint(got[0, -1] * 255), stored[0, 0])


def test_16bit_png_orientation(tmp_path, photo_q):
    q = photo_q[16][:, :50, :3]
    exif = Image.Exif()
    exif[0x0112] = 8
    path = tmp_path / "o16.png"
    path.write_bytes(naive_png(q, extra=(chunk(b"eXIf", exif.tobytes()),)))
    np.testing.assert_array_equal(np.rint(read_array(path) * 65535), np.rot90(q, 1))


@pytest.mark.parametrize(("ext", "bits"), [("png", 8), ("png", 16), ("jpg", 8), ("tif", 8),
                                           ("tif", 16), ("webp", 8)])
def test_icc_profile_round_trip(tmp_path, astronaut, ext, bits):
    path = tmp_path / f"icc.{ext}"
    write_image(path, astronaut[:16, :16], bit_depth=bits, icc_profile=SRGB)
    assert read_image(path).icc_profile == SRGB
    write_image(path, astronaut[:16, :16], bit_depth=bits)
    assert read_image(path).icc_profile is None


# ---------------------------------------------------------------------------------------------
# bad input files


def test_missing_empty_directory_and_non_image(tmp_path):
    cases = {
        tmp_path / "missing.png": "no such file",
        tmp_path: "is a directory",
    }
    (tmp_path / "empty.png").write_bytes(b"")
    cases[tmp_path / "empty.png"] = "empty file (0 bytes)"
    (tmp_path / "text.png").write_text("hello, this is not an image\n")
    cases[tmp_path / "text.png"] = "not a PNG, JPEG, TIFF, BMP or WebP image"
    Image.new("RGB", (4, 4)).save(tmp_path / "anim.gif")
    cases[tmp_path / "anim.gif"] = "not a PNG, JPEG, TIFF, BMP or WebP image"
    for path, needle in cases.items():
        with pytest.raises(ImageError) as exc:
            read_image(path)
        assert needle in _one_line_from_path(exc, path)


@pytest.mark.parametrize(("ext", "bits", "channels"), [("png", 8, 3), ("jpg", 8, 3), ("tif", 8, 3),
                                                       ("bmp", 8, 3), ("webp", 8, 3),
                                                       ("png", 16, 3), ("tif", 16, 3),
                                                       ("png", 16, 1)])
def test_truncated_files_are_refused(tmp_path, astronaut, ext, bits, channels):
    good = tmp_path / f"good.{ext}"
    write_image(good, astronaut[:96, :128, :channels], bit_depth=bits)
    data = good.read_bytes()
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError) as exc:
        read_image(cut)
    msg = _one_line_from_path(exc, cut)
    assert "truncated" in msg or "corrupt" in msg


def test_truncated_refused_even_if_pillow_is_told_to_allow_it(tmp_path, astronaut, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    path = tmp_path / "cut.jpg"
    buf = io.BytesIO()
    Image.fromarray(np.rint(astronaut[:64, :64] * 255).astype(np.uint8)).save(buf, "JPEG")
    path.write_bytes(buf.getvalue()[:-200])
    with pytest.raises(ImageError, match="truncated"):
        read_image(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the caller's setting is restored


def test_corrupt_png_crc_is_refused(tmp_path, astronaut):
    path = tmp_path / "crc.png"
    write_image(path, astronaut[:32, :32], bit_depth=16)
    data = bytearray(path.read_bytes())
    data[data.index(b"IDAT") + 20] ^= 0x55
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match="corrupt.*CRC"):
        read_image(path)


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    # a 60000 x 60000 PNG header with 30 bytes of pixel data: decoding it would need 3.6 GB
    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 30)) + chunk(b"IEND", b""))
    with pytest.raises(ImageError) as exc:
        read_image(bomb)
    assert "decompression bomb" in _one_line_from_path(exc, bomb)

    small = tmp_path / "small.png"
    Image.new("RGB", (100, 100)).save(small)
    assert read_image(small, max_pixels=10_000).pixels.shape == (100, 100, 3)
    with pytest.raises(ImageError) as exc:
        read_image(small, max_pixels=9_999)
    assert "100x100 = 10000 pixels exceeds max_pixels=9999" in _one_line_from_path(exc, small)
    with pytest.raises(ImageError, match="max_pixels: 0"):
        read_image(small, max_pixels=0)


def test_pillow_bomb_limit_is_restored(tmp_path):
    before = Image.MAX_IMAGE_PIXELS
    path = tmp_path / "s.png"
    Image.new("L", (8, 8)).save(path)
    read_image(path, max_pixels=5_000_000_000)
    assert Image.MAX_IMAGE_PIXELS == before


def test_float_tiff_is_refused(tmp_path):
    path = tmp_path / "f.tif"
    tifffile.imwrite(path, np.full((4, 4), 0.5, np.float32))
    with pytest.raises(ImageError) as exc:
        read_image(path)
    assert "floating-point" in _one_line_from_path(exc, path)


# ---------------------------------------------------------------------------------------------
# write refusals


def test_write_refuses_bad_pixels(tmp_path, astronaut):
    path = tmp_path / "out.png"
    nan = astronaut[:8, :8].copy()
    nan[2, 3, 1] = np.nan
    cases = [
        (nan, "pixels: 1 NaN or infinite values"),
        (np.linspace(0, 1.5, 192).reshape(8, 8, 3), "pixels: values range over [0, 1.5]"),
        (np.linspace(-0.25, 0.75, 64).reshape(8, 8), "pixels: values range over [-0.25, 0.75]"),
        (np.zeros((8, 8, 3), np.uint8), "pixels: dtype uint8"),
        (np.zeros((8, 8, 2), np.float32), "pixels: shape (8, 8, 2)"),
        (np.zeros((0, 8, 3), np.float32), "pixels: shape (0, 8, 3)"),
        ([[0.5]], "pixels: list"),
    ]
    for pixels, needle in cases:
        with pytest.raises(ImageError) as exc:
            write_image(path, pixels)
        assert needle in str(exc.value) and "\n" not in str(exc.value)
    assert list(tmp_path.iterdir()) == []


def test_write_refuses_bad_options(tmp_path, astronaut):
    rgb, rgba = astronaut[:8, :8], np.dstack([astronaut[:8, :8], np.ones((8, 8))])
    cases = [
        (tmp_path / "a.jpg", rgb, {"bit_depth": 16}, "bit_depth=16 cannot be stored in JPEG"),
        (tmp_path / "a.bmp", rgb, {"bit_depth": 16}, "bit_depth=16 cannot be stored in BMP"),
        (tmp_path / "a.webp", rgb, {"bit_depth": 16}, "bit_depth=16 cannot be stored in WEBP"),
        (tmp_path / "a.png", rgb, {"bit_depth": 12}, "bit_depth: 12"),
        (tmp_path / "a.jpg", rgba, {}, "JPEG cannot hold an alpha channel"),
        (tmp_path / "a.bmp", rgba, {}, "BMP cannot hold an alpha channel"),
        (tmp_path / "a.gif", rgb, {}, "unknown image extension '.gif'"),
        (tmp_path / "a", rgb, {}, "unknown image extension ''"),
        (tmp_path / "a.jpg", rgb, {"quality": 0}, "quality: 0"),
        (tmp_path / "a.png", rgb, {"lossless": True}, "lossless=True applies to WebP only"),
        (tmp_path / "a.bmp", rgb, {"icc_profile": SRGB}, "BMP cannot hold an ICC profile"),
        (tmp_path / "a.png", rgb, {"icc_profile": "srgb"}, "icc_profile: str"),
    ]
    for path, pixels, kwargs, needle in cases:
        with pytest.raises(ImageError) as exc:
            write_image(path, pixels, **kwargs)
        assert needle in str(exc.value) and "\n" not in str(exc.value), str(exc.value)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ImageError, match="is a directory"):
        write_image(tmp_path, rgb)


def test_drop_alpha_and_tiny_float_error(tmp_path, photo_q):
    q = photo_q[8]
    pixels = q / 255.0
    path = tmp_path / "a.bmp"
    write_image(path, pixels, drop_alpha=True)
    np.testing.assert_array_equal(np.rint(read_array(path) * 255), q[..., :3])
    nudged = pixels.copy()
    nudged[0, 0, 0], nudged[0, 1, 0] = 1 + 5e-7, -5e-7  # float error: clipped, not refused
    write_image(tmp_path / "n.png", nudged)
    got = np.rint(read_array(tmp_path / "n.png") * 255)
    assert got[0, 0, 0] == 255 and got[0, 1, 0] == 0


# ---------------------------------------------------------------------------------------------
# tensors


def test_tensor_helpers(photo_q):
    pixels = photo_q[8][..., :3] / np.float32(255)
    t = to_tensor(pixels)
    assert t.shape == (1, 3, 48, 64) and t.dtype == torch.float32
    np.testing.assert_array_equal(t[0, 1].numpy(), pixels[..., 1])
    t[0, 0, 0, 0] = 7.0  # a copy, not a view
    assert pixels[0, 0, 0] != 7.0
    back = from_tensor(t)
    assert back.shape == (48, 64, 3) and back.dtype == np.float32 and back.flags.c_contiguous
    np.testing.assert_array_equal(back[1:], pixels[1:])
    np.testing.assert_array_equal(from_tensor(t[0].double()), back)
    grey = pixels[..., 0]
    assert to_tensor(grey).shape == (1, 1, 48, 64)
    assert from_tensor(to_tensor(grey)).shape == (48, 64, 1)


def test_tensor_helpers_refuse_bad_input():
    with pytest.raises(ImageError, match=r"tensor: shape \(2, 3, 4, 4\)"):
        from_tensor(torch.zeros(2, 3, 4, 4))
    with pytest.raises(ImageError, match=r"tensor: shape \(4, 4\)"):
        from_tensor(torch.zeros(4, 4))
    with pytest.raises(ImageError, match="tensor: dtype torch.uint8"):
        from_tensor(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ImageError, match="pixels: uint8"):
        to_tensor(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ImageError, match=r"pixels: shape \(4,\)"):
        to_tensor(np.zeros(4, np.float32))
