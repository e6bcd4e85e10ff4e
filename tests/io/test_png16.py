"""The 16-bit PNG codec against Pillow's decoder and a naive independent writer."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from deblurkit.io.png16 import PngError, decode_png16, encode_png16
from io_pngref import chunk, naive_png


def _filter_types(png: bytes, row_bytes: int, height: int) -> set[int]:
    pos, idat = 8, b""
    while pos < len(png):
        (n,) = struct.unpack(">I", png[pos:pos + 4])
        if png[pos + 4:pos + 8] == b"IDAT":
            idat += png[pos + 8:pos + 8 + n]
        pos += 12 + n
    raw = zlib.decompress(idat)
    return {raw[r * (row_bytes + 1)] for r in range(height)}


def _retype_ihdr(png: bytes, depth: int, colour: int) -> bytes:
    """Same IDAT, new bit depth / colour type in IHDR (with a fresh CRC)."""
    w, h, _, _, comp, filt, inter = struct.unpack(">IIBBBBB", png[16:29])
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, comp, filt, inter))
    return png[:8] + ihdr + png[33:]


@pytest.fixture
def smooth16(astronaut, rng) -> np.ndarray:
    """A photo-like uint16 (H, W, 3) image whose low bytes are not zero."""
    q = np.rint(astronaut[100:160, 180:250] * 65535).astype(np.uint16)
    return q ^ rng.integers(0, 64, q.shape, dtype=np.uint16)


def test_decodes_pillow_grey16_with_adaptive_filters(astronaut):
    # Pillow writes I;16 PNG with its own filter choice; its own decoder is the reference.
    q = np.rint(astronaut[..., 1][:80, :90] * 65535).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(q).save(buf, "PNG")
    png = buf.getvalue()
    assert len(_filter_types(png, 2 * 90, 80)) >= 2, "Pillow used one filter: test is weak"
    out = decode_png16(png).samples
    assert out.shape == (80, 90, 1)
    np.testing.assert_array_equal(out[..., 0], np.asarray(Image.open(io.BytesIO(png))))


def test_pillow_rgba8_reinterpreted_as_grey_alpha16(astronaut):
    # An 8-bit RGBA row (4 bytes/pixel) has exactly the byte layout and filter stride of a 16-bit
    # grey+alpha row, so Pillow's encoder (adaptive filters) yields a valid 16-bit test file whose
    # expected samples are known: L = R << 8 | G, A = B << 8 | A.
    rgba = np.dstack([np.rint(astronaut[:96, :128] * 255).astype(np.uint8),
                      np.tile(np.arange(128, dtype=np.uint8)[None], (96, 1))])
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, "PNG")
    png = _retype_ihdr(buf.getvalue(), depth=16, colour=4)
    assert len(_filter_types(png, 4 * 128, 96)) >= 3, "few filters exercised: test is weak"
    got = decode_png16(png).samples
    r, g, b, a = (rgba[..., i].astype(np.uint16) for i in range(4))
    np.testing.assert_array_equal(got[..., 0], (r << 8) | g)
    np.testing.assert_array_equal(got[..., 1], (b << 8) | a)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("interlace", [False, True])
def test_decodes_naive_reference_with_every_filter(rng, channels, interlace):
    # odd sizes give partial Adam7 passes; rows cycle through None, Sub, Up, Average, Paeth
    # (Pillow's encoder never picks Average, so this spec-transcribed writer is the reference)
    q = rng.integers(0, 65536, (13, 21, channels), dtype=np.uint16)
    q[5:9, 4:15] = 65535 - np.arange(11, dtype=np.uint16)[None, :, None]  # vary a, b, c relations
    png = naive_png(q, interlace=interlace, filters=(0, 1, 2, 3, 4, 3, 4))
    np.testing.assert_array_equal(decode_png16(png).samples, q)


def test_interlaced_high_bytes_match_pillow(smooth16):
    # Pillow de-interlaces too (keeping only the high byte): an independent check of Adam7.
    png = naive_png(smooth16, interlace=True)
    high = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    np.testing.assert_array_equal(decode_png16(png).samples >> 8, high)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_encoder_round_trip_and_pillow(smooth16, channels):
    q = smooth16[..., :channels] if channels != 4 else np.dstack([smooth16, smooth16[..., :1]])
    png = encode_png16(q)
    np.testing.assert_array_equal(decode_png16(png).samples, q)
    ref = np.asarray(Image.open(io.BytesIO(png)))
    if channels == 1:  # Pillow reads 16-bit grey exactly
        np.testing.assert_array_equal(ref, q[..., 0])
    else:  # and colour as the high byte
        np.testing.assert_array_equal(ref, (q >> 8).astype(np.uint8))


def test_encoder_uses_several_filters_and_compresses(smooth16):
    png = encode_png16(smooth16)
    assert len(_filter_types(png, 6 * smooth16.shape[1], smooth16.shape[0])) >= 2
    assert len(png) < smooth16.nbytes


def test_trns_becomes_alpha(rng):
    q = rng.integers(0, 4, (6, 7, 3), dtype=np.uint16) * 1000
    key = np.array([1000, 2000, 3000], dtype=np.uint16)
    q[2, 3] = key
    got = decode_png16(naive_png(q, extra=(chunk(b"tRNS", key.astype(">u2").tobytes()),))).samples
    assert got.shape == (6, 7, 4)
    np.testing.assert_array_equal(got[..., :3], q)
    np.testing.assert_array_equal(got[..., 3] == 0, np.all(q == key, axis=-1))
    assert got[2, 3, 3] == 0 and np.all(got[..., 3][np.any(q != key, axis=-1)] == 65535)


def test_iccp_and_exif_are_returned(rng):
    q = rng.integers(0, 65536, (4, 5, 3), dtype=np.uint16)
    profile = bytes(range(256)) * 3
    assert decode_png16(encode_png16(q, profile)).icc_profile == profile
    exif = Image.Exif()
    exif[0x0112] = 6
    png = naive_png(q, extra=(chunk(b"eXIf", exif.tobytes()),))
    parsed = Image.Exif()
    parsed.load(decode_png16(png).exif)
    assert parsed[0x0112] == 6


def test_corrupt_streams_are_refused(rng):
    q = rng.integers(0, 65536, (8, 9, 3), dtype=np.uint16)
    png = encode_png16(q)
    idat = png.index(b"IDAT")
    flipped = bytearray(png)
    flipped[idat + 10] ^= 0xFF
    with pytest.raises(PngError, match="CRC mismatch in 'IDAT'"):
        decode_png16(bytes(flipped))
    with pytest.raises(PngError, match="truncated"):
        decode_png16(png[: len(png) // 2])
    # valid chunks, zlib stream cut short
    raw = zlib.compress(b"".join(b"\x00" + r.astype(">u2").tobytes() for r in q))
    short = png[:idat - 4] + chunk(b"IDAT", raw[:-20]) + chunk(b"IEND", b"")
    with pytest.raises(PngError, match="truncated"):
        decode_png16(short)
    # too much data and an invalid filter type
    longer = png[:idat - 4] + chunk(b"IDAT", zlib.compress(zlib.decompress(raw) + b"\0" * 9))
    with pytest.raises(PngError, match="longer"):
        decode_png16(longer + chunk(b"IEND", b""))
    bad_filter = bytearray(zlib.decompress(raw))
    bad_filter[0] = 7
    with pytest.raises(PngError, match="filter type 7"):
        decode_png16(png[:idat - 4] + chunk(b"IDAT", zlib.compress(bytes(bad_filter))))
    with pytest.raises(PngError, match="bit depth 8"):
        decode_png16(_retype_ihdr(png, depth=8, colour=2))
