"""A small exact codec for 16-bit PNG (grey, grey+alpha, RGB, RGBA), which Pillow cannot do.

Pillow (up to at least 13) decodes a 16-bit colour PNG into 8-bit ``RGB``/``RGBA`` by dropping the
low byte of every sample, and cannot write one at all. This module implements just enough of the
PNG specification (ISO/IEC 15948, W3C "Portable Network Graphics (PNG) Specification") to read and
write 16-bit images losslessly:

* chunks: ``IHDR``, ``IDAT``, ``IEND``, ``tRNS`` (a transparent colour becomes an alpha channel),
  ``iCCP`` (ICC profile) and ``eXIf`` (raw EXIF, for the orientation tag); others are skipped
  after their CRC is checked;
* the five scan-line filters (None, Sub, Up, Average, Paeth; spec section 9) and Adam7 interlacing
  on decode; adaptive per-row filter choice (minimum sum of absolute differences) on encode.

Every CRC is checked, and the zlib stream must decompress to exactly the expected number of bytes,
so a truncated or corrupt file raises :class:`PngError` rather than yielding partial pixels.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"

# colour type -> samples per pixel
_SAMPLES = {0: 1, 2: 3, 4: 2, 6: 4}
# samples per pixel -> colour type (for writing)
_COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}
# Adam7 passes: (x0, y0, dx, dy)
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2))


class PngError(ValueError):
    """A PNG stream that is truncated, corrupt, or outside what this codec handles."""


@dataclass(frozen=True)
class Png16:
    """A decoded 16-bit PNG.

    ``samples``: uint16 ``(H, W, C)`` with C = 1 (grey), 2 (grey, alpha), 3 (RGB) or 4 (RGBA),
    native byte order; a ``tRNS`` colour is already turned into an alpha channel (C grows by 1).
    ``icc_profile``: the decompressed ``iCCP`` profile or None; ``exif``: the ``eXIf`` payload or
    None.
    """

    samples: np.ndarray
    icc_profile: bytes | None
    exif: bytes | None


def png_header(data: bytes) -> tuple[int, int, int, int, int] | None:
    """``(width, height, bit_depth, colour_type, interlace)`` from a PNG's IHDR, or None."""
    if len(data) < 33 or not data.startswith(SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height, depth, ctype, _comp, _filt, interlace = struct.unpack(">IIBBBBB", data[16:29])
    return width, height, depth, ctype, interlace


def _chunks(data: bytes):
    """Yield ``(type, payload)`` for each chunk, checking lengths and CRCs."""
    if not data.startswith(SIGNATURE):
        raise PngError("not a PNG stream (bad signature)")
    pos = len(SIGNATURE)
    while pos < len(data):
        if pos + 8 > len(data):
            raise PngError(f"truncated chunk header at byte {pos}")
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        ctype = data[pos + 4:pos + 8]
        end = pos + 8 + length + 4
        if end > len(data):
            raise PngError(f"truncated {ctype.decode('latin-1')!r} chunk at byte {pos}")
        payload = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[end - 4:end])
        if zlib.crc32(ctype + payload) & 0xFFFFFFFF != crc:
            raise PngError(f"CRC mismatch in {ctype.decode('latin-1')!r} chunk at byte {pos}")
        yield ctype, payload
        if ctype == b"IEND":
            return
        pos = end


def _unfilter(raw: np.ndarray, height: int, width: int, bpp: int) -> np.ndarray:
    """Undo PNG scan-line filters (spec section 9.2) of one (sub-)image.

    ``raw``: uint8 ``(height, 1 + width * bpp)``, each row starting with its filter-type byte.
    Returns uint8 ``(height, width, bpp)``.

    Sub/Average/Paeth depend on the reconstructed pixel to the left and Up/Average/Paeth on the one
    above, so pixel ``(y, x)`` depends only on pixels with a smaller ``x + y``. The loop therefore
    runs over anti-diagonals ``d = x + y`` (H + W - 1 steps), each step vectorised over its pixels
    and byte lanes, and every row may use a different filter.
    """
    ftype = raw[:, 0]
    if ftype.size and int(ftype.max()) > 4:
        bad = int(np.argmax(ftype > 4))
        raise PngError(f"row {bad} has invalid filter type {int(ftype[bad])}")
    filt = raw[:, 1:].reshape(height, width, bpp).astype(np.int16)
    if not np.any(ftype):  # all rows unfiltered
        return filt.astype(np.uint8)
    # padded: recon[y + 1, x + 1] is pixel (y, x); row 0 and column 0 are the zero border
    recon = np.zeros((height + 1, width + 1, bpp), dtype=np.int16)
    rows = np.arange(height)
    for d in range(height + width - 1):
        ys = rows[max(0, d - width + 1):min(height, d + 1)]
        xs = d - ys
        a = recon[ys + 1, xs]       # left
        b = recon[ys, xs + 1]       # above
        c = recon[ys, xs]           # above-left
        t = ftype[ys][:, None]
        pa = np.abs(b - c)
        pb = np.abs(a - c)
        pc = np.abs(a + b - 2 * c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        pred = np.select([t == 1, t == 2, t == 3, t == 4], [a, b, (a + b) >> 1, paeth], 0)
        recon[ys + 1, xs + 1] = (filt[ys, xs] + pred) & 0xFF
    return recon[1:, 1:].astype(np.uint8)


def decode_png16(data: bytes) -> Png16:
    """Decode a complete 16-bit PNG byte string exactly.

    Returns a :class:`Png16` with uint16 samples ``(H, W, C)``. Raises :class:`PngError` for a bit
    depth other than 16, a bad CRC, a truncated or over-long zlib stream, or an invalid filter.
    """
    ihdr = None
    idat: list[bytes] = []
    trns = icc = exif = None
    seen_iend = False
    for ctype, payload in _chunks(data):
        if ctype == b"IHDR":
            if len(payload) != 13:
                raise PngError(f"IHDR has {len(payload)} bytes, expected 13")
            ihdr = struct.unpack(">IIBBBBB", payload)
        elif ctype == b"IDAT":
            idat.append(payload)
        elif ctype == b"tRNS":
            trns = payload
        elif ctype == b"iCCP":
            name_end = payload.find(b"\x00")
            if name_end < 0 or name_end + 2 > len(payload):
                raise PngError("malformed iCCP chunk")
            try:
                icc = zlib.decompress(payload[name_end + 2:])
            except zlib.error as exc:
                raise PngError(f"corrupt iCCP profile ({exc})") from None
        elif ctype == b"eXIf":
            exif = payload
        elif ctype == b"IEND":
            seen_iend = True
    if ihdr is None:
        raise PngError("no IHDR chunk")
    width, height, depth, colour, comp, filt_method, interlace = ihdr
    if depth != 16 or colour not in _SAMPLES:
        raise PngError(f"bit depth {depth}, colour type {colour}: only 16-bit grey, grey+alpha, "
                       f"RGB and RGBA are handled")
    if comp != 0 or filt_method != 0 or interlace not in (0, 1):
        raise PngError(f"unknown compression/filter/interlace method "
                       f"{comp}/{filt_method}/{interlace}")
    if width == 0 or height == 0:
        raise PngError(f"zero image size {width}x{height}")
    channels = _SAMPLES[colour]
    bpp = 2 * channels
    if interlace:
        passes = []
        for x0, y0, dx, dy in _ADAM7:
            pw, ph = -(-(width - x0) // dx), -(-(height - y0) // dy)
            if pw > 0 and ph > 0:
                passes.append((x0, y0, dx, dy, pw, ph))
    else:
        passes = [(0, 0, 1, 1, width, height)]
    expected = sum(ph * (1 + pw * bpp) for *_, pw, ph in passes)

    dec = zlib.decompressobj()
    try:
        stream = dec.decompress(b"".join(idat), expected + 1)
    except zlib.error as exc:
        raise PngError(f"corrupt image data ({exc})") from None
    if len(stream) > expected:
        raise PngError(f"image data longer than the {expected} bytes of a {width}x{height} image")
    if len(stream) < expected:
        raise PngError(f"truncated image data: {len(stream)} of {expected} bytes"
                       + ("" if seen_iend else ", no IEND chunk"))
    if not dec.eof:
        raise PngError("truncated image data: the zlib stream ends before its checksum")

    buf = np.frombuffer(stream, dtype=np.uint8)
    out = np.empty((height, width, bpp), dtype=np.uint8)
    pos = 0
    for x0, y0, dx, dy, pw, ph in passes:
        n = ph * (1 + pw * bpp)
        sub = _unfilter(buf[pos:pos + n].reshape(ph, 1 + pw * bpp), ph, pw, bpp)
        out[y0::dy, x0::dx] = sub
        pos += n
    samples = out.reshape(height, width * channels * 2).view(">u2")
    samples = samples.reshape(height, width, channels).astype(np.uint16)

    if trns is not None:
        if colour in (0, 2):
            need = 2 * channels
            if len(trns) != need:
                raise PngError(f"tRNS chunk has {len(trns)} bytes, expected {need}")
            key = np.frombuffer(trns, dtype=">u2").astype(np.uint16)
            alpha = np.where(np.all(samples == key, axis=-1), 0, 65535).astype(np.uint16)
            samples = np.concatenate([samples, alpha[..., None]], axis=-1)
        else:
            raise PngError(f"tRNS chunk not allowed with colour type {colour}")
    return Png16(samples=samples, icc_profile=icc, exif=exif)


def _chunk(ctype: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + ctype + payload
            + struct.pack(">I", zlib.crc32(ctype + payload) & 0xFFFFFFFF))


def _filter_rows(img: np.ndarray, bpp: int) -> np.ndarray:
    """Filter each row with the type (0-4) minimising the sum of |signed bytes| (libpng heuristic).

    ``img``: uint8 ``(H, W * bpp)``. Returns uint8 ``(H, 1 + W * bpp)``. All candidates are computed
    from raw bytes, so this is fully vectorised.
    """
    x = img.astype(np.int16)
    a = np.zeros_like(x)
    a[:, bpp:] = x[:, :-bpp]
    b = np.zeros_like(x)
    b[1:] = x[:-1]
    c = np.zeros_like(x)
    c[1:, bpp:] = x[:-1, :-bpp]
    pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    cands = np.stack([x, x - a, x - b, x - ((a + b) >> 1), x - paeth]) & 0xFF  # (5, H, S)
    signed = np.where(cands > 127, 256 - cands, cands)
    best = np.argmin(signed.sum(axis=2, dtype=np.int64), axis=0)  # (H,)
    rows = np.take_along_axis(cands, best[None, :, None], axis=0)[0]
    return np.concatenate([best[:, None], rows], axis=1).astype(np.uint8)


def encode_png16(samples: np.ndarray, icc_profile: bytes | None = None, level: int = 6) -> bytes:
    """Encode uint16 ``(H, W, C)`` samples (C = 1, 2, 3 or 4) as a non-interlaced 16-bit PNG.

    ``icc_profile`` is stored in an ``iCCP`` chunk. The result decodes bit-exactly with
    :func:`decode_png16` and with any conforming PNG decoder.
    """
    if samples.dtype != np.uint16 or samples.ndim != 3 or samples.shape[2] not in _COLOUR_TYPE:
        raise PngError(f"samples must be uint16 (H, W, C) with C in 1..4, got {samples.dtype} "
                       f"{samples.shape}")
    height, width, channels = samples.shape
    if height == 0 or width == 0:
        raise PngError(f"zero image size {width}x{height}")
    bpp = 2 * channels
    rows = np.ascontiguousarray(samples.astype(">u2")).view(np.uint8).reshape(height, width * bpp)
    filtered = _filter_rows(rows, bpp)
    out = [SIGNATURE, _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16,
                                                   _COLOUR_TYPE[channels], 0, 0, 0))]
    if icc_profile:
        out.append(_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc_profile)))
    out.append(_chunk(b"IDAT", zlib.compress(filtered.tobytes(), level)))
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)
