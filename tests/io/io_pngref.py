"""A deliberately naive PNG writer for tests: per-byte Python loops straight from the PNG spec
(section 9.2 filters, section 8.2 Adam7), no vectorisation.

It shares no code with ``deblurkit.io.png16`` so that files it makes are an independent reference.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2))
COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}


def chunk(ctype: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + ctype + payload
            + struct.pack(">I", zlib.crc32(ctype + payload) & 0xFFFFFFFF))


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _filter_row(ftype: int, row: bytes, prev: bytes, bpp: int) -> bytes:
    out = bytearray()
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        pred = (0, a, b, (a + b) // 2, _paeth(a, b, c))[ftype]
        out.append((x - pred) % 256)
    return bytes(out)


def naive_png(samples: np.ndarray, *, interlace: bool = False, extra: tuple[bytes, ...] = (),
              filters: tuple[int, ...] = (0,)) -> bytes:
    """uint16 (H, W, C) -> 16-bit PNG bytes; row ``i`` of each (sub-)image uses filter
    ``filters[i % len(filters)]``; ``extra`` chunks go before IDAT."""
    h, w, c = samples.shape
    big = samples.astype(">u2")
    bpp = 2 * c
    raw = bytearray()
    passes = ADAM7 if interlace else ((0, 0, 1, 1),)
    for x0, y0, dx, dy in passes:
        sub = big[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        prev = bytes(sub.shape[1] * bpp)
        for i, row in enumerate(sub):
            ftype = filters[i % len(filters)]
            raw += bytes([ftype]) + _filter_row(ftype, row.tobytes(), prev, bpp)
            prev = row.tobytes()
    ihdr = struct.pack(">IIBBBBB", w, h, 16, COLOUR_TYPE[c], 0, 0, int(interlace))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + b"".join(extra)
            + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b""))
