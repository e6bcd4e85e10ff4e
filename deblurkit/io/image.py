"""Read and write photos as float32 ``H x W x C`` arrays in [0, 1], exactly, with one-line errors.

Formats: PNG, JPEG, TIFF, BMP and WebP, 8 and 16 bits per sample. Decoding is Pillow's, except
where Pillow loses bits:

* 16-bit PNG (any colour type) goes through :mod:`deblurkit.io.png16`, a small exact codec, since
  Pillow reads 16-bit colour PNG as 8-bit and cannot write it;
* 16-bit TIFF with more than one sample per pixel (RGB, RGBA, grey+alpha), and TIFF layouts Pillow
  cannot open, are read with ``tifffile`` for the same reason; every 16-bit TIFF is written with
  ``tifffile``; 16-bit grey TIFF is read by Pillow.

Every file is decoded completely before anything is returned (Pillow's ``LOAD_TRUNCATED_IMAGES``
is held False while decoding), so a truncated or corrupt file raises :class:`ImageError` instead of
yielding grey padding. The image size is checked against ``max_pixels`` from the header, before
any pixel is decoded. EXIF orientation is applied, so ``pixels`` is upright as a viewer shows it.

Quantisation is ``round(value * (2**bits - 1))`` on write and ``q / (2**bits - 1)`` on read, so
``read -> write`` reproduces an 8- or 16-bit lossless file bit for bit.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
from PIL import Image, ImageFile, features

from ..errors import ImageError
from . import png16
from .atomic import atomic_path

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: file extension (lower case) -> format name, for writing and for finding images in folders
IMAGE_EXTENSIONS: dict[str, str] = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF",
    ".bmp": "BMP", ".webp": "WEBP",
}
#: formats that can store 16 bits per sample / an alpha channel / an ICC profile
_HOLDS_16BIT = {"PNG", "TIFF"}
_HOLDS_ALPHA = {"PNG", "TIFF", "WEBP"}
_HOLDS_ICC = {"PNG", "JPEG", "TIFF", "WEBP"}
# Pillow plugin names allowed to open a file (restricting them also keeps Pillow away from
# formats such as EPS that would start external programs). A multi-picture JPEG opens as MPO.
_PIL_FORMATS = ["PNG", "JPEG", "TIFF", "BMP", "WEBP"]
_FORMAT_NAME = {"MPO": "JPEG"}
_TINY = 1e-6  # float error tolerated (and clipped) outside [0, 1] on write

_PIL_LOCK = threading.Lock()


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image.

    ``pixels``: float32 ``(H, W, C)`` in [0, 1], C = 1 (grey), 3 (RGB) or 4 (RGBA, alpha straight,
    not premultiplied), upright (EXIF orientation applied). ``bit_depth``: 8 or 16, the bits per
    sample stored in the file. ``path``: the file read. ``format``: ``"PNG"``, ``"JPEG"``,
    ``"TIFF"``, ``"BMP"`` or ``"WEBP"``. ``icc_profile``: the embedded ICC profile bytes, or None.
    """

    pixels: np.ndarray
    bit_depth: int
    path: Path
    format: str
    icc_profile: bytes | None


# --------------------------------------------------------------------------------------------
# reading


def read_image(path: str | os.PathLike, *, max_pixels: int = 200_000_000) -> LoadedImage:
    """Decode an image file completely into float32 ``(H, W, C)`` in [0, 1].

    Grey (and 1-bit) images give C = 1; palette images give RGB, or RGBA when they have
    transparency; grey+alpha gives RGBA (grey repeated); CMYK/YCbCr/LAB give RGB (Pillow's
    conversion, ICC not applied). Only the first frame of a multi-frame file is read.
    ``max_pixels``: refuse images with more than this many pixels (width x height), checked from
    the header before decoding (decompression-bomb guard).

    Raises :class:`ImageError` (one line starting with the path) for a missing file, a directory,
    an empty file, a file that is not a PNG/JPEG/TIFF/BMP/WebP image, truncated or corrupt data,
    an image larger than ``max_pixels``, or an unsupported pixel type (float or 32-bit samples).
    """
    if not _is_int(max_pixels) or max_pixels < 1:
        raise ImageError(f"max_pixels: {max_pixels!r}; expected a positive integer")
    path = Path(path)
    data = _read_bytes(path)

    with _pillow_guard(max_pixels), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            im = Image.open(io.BytesIO(data), formats=_PIL_FORMATS)
        except Image.DecompressionBombError as exc:
            raise ImageError(f"{path}: too many pixels ({exc}); refused as a possible "
                             f"decompression bomb (max_pixels={max_pixels})") from None
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - any decoder failure becomes one line
            sniffed = _sniff(data)
            if sniffed is None:
                raise ImageError(f"{path}: not a PNG, JPEG, TIFF, BMP or WebP image "
                                 f"({len(data)} bytes starting {data[:8]!r})") from None
            if sniffed == "TIFF":  # a layout Pillow cannot open, e.g. 16-bit grey+alpha
                im = None
            else:
                unidentified = isinstance(exc, Image.UnidentifiedImageError)
                detail = "header or directory unreadable" if unidentified else _one_line(exc)
                raise ImageError(f"{path}: truncated or corrupt {sniffed} file ({detail})"
                                 ) from None
        if im is None:
            samples, bits, icc, orientation = _read_tiff_tifffile(data, path, max_pixels)
            fmt = "TIFF"
        else:
            fmt = _FORMAT_NAME.get(im.format, im.format)
            samples, bits, icc, orientation = _decode_pillow(im, fmt, data, path, max_pixels,
                                                             caught)
        others = [w for w in caught if not _is_bomb_warning(w)]
    for w in others:  # re-emit harmless decoder warnings (e.g. odd EXIF) outside the guard
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    samples = _apply_orientation(samples, orientation)
    pixels = np.divide(samples, np.float32(2 ** bits - 1), dtype=np.float32)
    return LoadedImage(pixels=np.ascontiguousarray(pixels), bit_depth=bits, path=path, format=fmt,
                       icc_profile=icc or None)


def _check_size(path: Path, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageError(f"{path}: {width}x{height} = {width * height} pixels exceeds "
                         f"max_pixels={max_pixels}; refused as a possible decompression bomb")
    if width == 0 or height == 0:
        raise ImageError(f"{path}: image has zero size {width}x{height}")


def _decode_pillow(im: Image.Image, fmt: str, data: bytes, path: Path, max_pixels: int,
                   caught: list[warnings.WarningMessage]
                   ) -> tuple[np.ndarray, int, bytes | None, int]:
    """Size check from the header, then a full decode; Pillow's failures become ImageError."""
    _check_size(path, *im.size, max_pixels)
    try:
        result = _decode(im, fmt, data, path, max_pixels)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: {_one_line(exc)}; refused as a possible decompression "
                         f"bomb (max_pixels={max_pixels})") from None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure becomes one line
        raise ImageError(f"{path}: truncated or corrupt {fmt} data ({_one_line(exc)})"
                         ) from None
    if _bomb(caught):
        raise ImageError(f"{path}: refused as a possible decompression bomb "
                         f"(max_pixels={max_pixels})")
    truncated = [w for w in caught if "truncat" in str(w.message).lower()]
    if truncated:
        raise ImageError(f"{path}: truncated or corrupt {fmt} data "
                         f"({_one_line(truncated[0].message)})")
    return result


def read_array(path: str | os.PathLike, *, max_pixels: int = 200_000_000) -> np.ndarray:
    """Shortcut for ``read_image(path).pixels``: float32 ``(H, W, C)`` in [0, 1]."""
    return read_image(path, max_pixels=max_pixels).pixels


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _one_line(exc: object) -> str:
    text = " ".join(str(exc).split())
    return text if text else type(exc).__name__


def _sniff(data: bytes) -> str | None:
    """The format a file's magic bytes announce (for messages about files Pillow cannot open)."""
    if data.startswith(png16.SIGNATURE):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if data.startswith(b"BM") and len(data) >= 14:
        return "BMP"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _is_bomb_warning(w: warnings.WarningMessage) -> bool:
    return issubclass(w.category, Image.DecompressionBombWarning)


def _bomb(caught: list[warnings.WarningMessage]) -> bool:
    return any(_is_bomb_warning(w) for w in caught)


@contextlib.contextmanager
def _pillow_guard(max_pixels: int) -> Iterator[None]:
    """Hold Pillow's global decode settings at our values while decoding: bomb limit = max_pixels,
    truncated images refused. The settings are process globals, so a lock serialises Pillow decodes
    made through this module and the previous values are restored afterwards."""
    with _PIL_LOCK:
        old = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
        Image.MAX_IMAGE_PIXELS = int(max_pixels)
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = old


def _read_bytes(path: Path) -> bytes:
    if path.is_dir():
        raise ImageError(f"{path}: is a directory, not an image file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror or _one_line(exc)})") from None
    if not data:
        raise ImageError(f"{path}: empty file (0 bytes)")
    return data


def _decode(im: Image.Image, fmt: str, data: bytes, path: Path, max_pixels: int
            ) -> tuple[np.ndarray, int, bytes | None, int]:
    """Return ``(samples uint8/uint16 (H, W, C), bits, icc, exif orientation)``."""
    header = png16.png_header(data) if fmt == "PNG" else None
    if header is not None and header[2] == 16:
        png = png16.decode_png16(data)
        orientation = _orientation_from_exif_bytes(png.exif, path)
        return _grey_alpha_to_rgba(png.samples), 16, png.icc_profile, orientation
    if fmt == "TIFF" and _tiff_needs_tifffile(im):
        return _read_tiff_tifffile(data, path, max_pixels)

    im.load()
    icc = im.info.get("icc_profile")
    mode = im.mode
    if mode.startswith("I;16") and mode not in ("I;16S", "I;16BS"):
        arr = np.asarray(im).astype(np.uint16)
        return arr[..., None], 16, icc, _orientation(im, path)
    if mode in ("I", "F", "I;16S", "I;16BS", "I;32", "I;32B", "F;32"):
        kind = "floating-point" if mode.startswith("F") else "32-bit or signed integer"
        raise ImageError(f"{path}: {fmt} image has {kind} samples (Pillow mode {mode!r}); "
                         f"only 8- and 16-bit unsigned images are supported")
    transparent = mode in ("LA", "La", "PA", "RGBA", "RGBa") or im.has_transparency_data
    if mode in ("1", "L") and not transparent:
        arr = np.asarray(im.convert("L"))[..., None]
    elif mode == "RGB" and not transparent:
        arr = np.asarray(im)
    elif transparent:
        arr = np.asarray(im.convert("RGBA"))
    else:  # P, RGBX, CMYK, YCbCr, LAB, HSV
        arr = np.asarray(im.convert("RGB"))
    return arr, 8, icc, _orientation(im, path)


def _grey_alpha_to_rgba(samples: np.ndarray) -> np.ndarray:
    if samples.shape[2] == 2:
        return np.concatenate([np.repeat(samples[..., :1], 3, axis=2), samples[..., 1:]], axis=2)
    return samples


def _tiff_needs_tifffile(im: Image.Image) -> bool:
    """True for a 16-bit TIFF with several samples per pixel, which Pillow would cut to 8 bits."""
    tags = getattr(im, "tag_v2", {})
    bits = tags.get(258, (1,))
    bits = bits if isinstance(bits, tuple) else (bits,)
    spp = int(tags.get(277, 1))
    return spp > 1 and all(int(b) == 16 for b in bits)


def _read_tiff_tifffile(data: bytes, path: Path, max_pixels: int
                        ) -> tuple[np.ndarray, int, bytes | None, int]:
    """First page of a TIFF through ``tifffile``: for 16-bit images with several samples per pixel
    (which Pillow cuts to 8 bits) and layouts Pillow cannot open (e.g. 16-bit grey+alpha).

    Returns ``(samples uint8/uint16 (H, W, C), bits, icc, orientation)``, C = 1, 3 or 4.
    """
    try:
        import tifffile
    except ImportError:  # pragma: no cover - tifffile is a dependency
        raise ImageError(f"{path}: this TIFF needs the 'tifffile' package (pip install tifffile)"
                         ) from None
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[0]
            _check_size(path, int(page.imagewidth), int(page.imagelength), max_pixels)
            photometric, sampleformat = int(page.photometric), int(page.sampleformat)
            bits = int(page.bitspersample)
            if photometric not in (1, 2) or sampleformat != 1 or bits not in (8, 16):
                raise ImageError(f"{path}: TIFF with photometric {photometric}, sample format "
                                 f"{sampleformat} and {bits} bits is not supported (only "
                                 f"unsigned 8/16-bit grey or RGB)")
            ends = [int(o) + int(n) for o, n in zip(page.dataoffsets, page.databytecounts)]
            if not ends or max(ends) > len(data):
                raise ImageError(f"{path}: truncated TIFF data (image data runs to byte "
                                 f"{max(ends) if ends else 0}, file has {len(data)} bytes)")
            try:
                arr = page.asarray()
            except ValueError as exc:
                if "imagecodecs" in str(exc):
                    raise ImageError(f"{path}: this TIFF's compression needs the 'imagecodecs' "
                                     f"package ({_one_line(exc)})") from None
                raise
            axes = page.axes
            extras = tuple(int(e) for e in (page.extrasamples or ()))
            icc_tag, orient_tag = page.tags.get(34675), page.tags.get(274)
            icc = bytes(icc_tag.value) if icc_tag is not None else None
            orientation = _valid_orientation(orient_tag.value if orient_tag is not None else 1)
    except ImageError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure becomes one line
        raise ImageError(f"{path}: truncated or corrupt TIFF data ({_one_line(exc)})") from None
    if axes.startswith("S"):
        arr = np.moveaxis(arr, 0, -1)
    dtype = np.uint8 if bits == 8 else np.uint16
    arr = np.asarray(arr, dtype=dtype)
    arr = arr.reshape(arr.shape[-3:]) if arr.ndim >= 3 else arr[..., None]
    colour = 3 if photometric == 2 else 1
    if arr.shape[2] not in (colour, colour + 1):
        raise ImageError(f"{path}: TIFF has {arr.shape[2]} samples per pixel; expected "
                         f"{colour} colour samples plus at most one alpha")
    if arr.shape[2] == colour + 1 and extras and extras[0] == 1:  # associated (premultiplied) alpha
        top = float(2 ** bits - 1)
        alpha = arr[..., -1:].astype(np.float64)
        colour_part = np.where(alpha > 0, arr[..., :-1] * top / np.maximum(alpha, 1), 0)
        arr = np.concatenate([np.clip(np.rint(colour_part), 0, top), alpha], axis=2).astype(dtype)
    return _grey_alpha_to_rgba(arr), bits, icc, orientation


def _orientation(im: Image.Image, path: Path) -> int:
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception as exc:  # noqa: BLE001 - any EXIF parse failure is reported as one line
        raise ImageError(f"{path}: unreadable EXIF data ({_one_line(exc)})") from None
    return _valid_orientation(value)


def _orientation_from_exif_bytes(exif: bytes | None, path: Path) -> int:
    if not exif:
        return 1
    try:
        parsed = Image.Exif()
        parsed.load(exif)
        value = parsed.get(0x0112, 1)
    except Exception as exc:  # noqa: BLE001
        raise ImageError(f"{path}: unreadable EXIF data ({_one_line(exc)})") from None
    return _valid_orientation(value)


def _valid_orientation(value: object) -> int:
    # as PIL.ImageOps.exif_transpose: values outside 1..8 are ignored
    try:
        value = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 1
    return value if 1 <= value <= 8 else 1


def _apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored ``(H, W, C)`` pixels upright for EXIF orientation 1-8.

    Same result as ``PIL.ImageOps.exif_transpose``; returns a view.
    """
    if orientation == 2:
        return a[:, ::-1]
    if orientation == 3:
        return a[::-1, ::-1]
    if orientation == 4:
        return a[::-1]
    if orientation == 5:
        return a.transpose(1, 0, 2)
    if orientation == 6:
        return np.rot90(a, -1)
    if orientation == 7:
        return a[::-1, ::-1].transpose(1, 0, 2)
    if orientation == 8:
        return np.rot90(a, 1)
    return a


# --------------------------------------------------------------------------------------------
# writing


def write_image(path: str | os.PathLike, pixels: np.ndarray, *, bit_depth: int = 8,
                quality: int = 95, icc_profile: bytes | None = None, drop_alpha: bool = False,
                lossless: bool = False) -> Path:
    """Write float ``(H, W, C)`` or ``(H, W)`` pixels in [0, 1] atomically; return the path.

    The format comes from the extension: ``.png``, ``.jpg``/``.jpeg``, ``.tif``/``.tiff``,
    ``.bmp``, ``.webp`` (any case). Samples are stored as ``round(value * (2**bit_depth - 1))``.

    ``pixels``: float (16/32/64-bit) array, C = 1, 3 or 4. Values must lie in [0, 1]; values
    within 1e-6 outside are clipped (float error), anything further or NaN/inf raises.
    ``bit_depth``: 8 or 16; 16 only for PNG and TIFF. ``quality``: 1-100, JPEG and lossy WebP.
    ``icc_profile``: ICC bytes to embed (not possible in BMP). ``drop_alpha``: for JPEG/BMP, which
    cannot hold alpha, discard a 4th channel (colour kept as is, not composited) instead of raising.
    ``lossless``: WebP only, store losslessly (exact round trip; colour under transparent pixels
    kept). JPEG is written with 4:4:4 chroma; WebP cannot store grey, so grey is written as RGB.

    Raises :class:`ImageError` naming the argument and the value for any of the above, and for an
    unknown extension, a directory as target, or an OS error while writing. On any failure no file
    is created and an existing file at ``path`` is left untouched.
    """
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"{path}: is a directory; give a file name to write the image to")
    fmt = IMAGE_EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(f"{path}: unknown image extension {path.suffix!r}; use one of "
                         f"{', '.join(IMAGE_EXTENSIONS)}")
    if bit_depth not in (8, 16) or isinstance(bit_depth, bool):
        raise ImageError(f"bit_depth: {bit_depth!r}; expected 8 or 16")
    if bit_depth == 16 and fmt not in _HOLDS_16BIT:
        raise ImageError(f"{path}: bit_depth=16 cannot be stored in {fmt}; use .png or .tif, "
                         f"or bit_depth=8")
    if not _is_int(quality) or not 1 <= quality <= 100:
        raise ImageError(f"quality: {quality!r}; expected an integer from 1 to 100")
    if lossless and fmt != "WEBP":
        raise ImageError(f"{path}: lossless=True applies to WebP only; {fmt} is "
                         f"{'always lossy' if fmt == 'JPEG' else 'already lossless'}")
    if icc_profile is not None:
        if not isinstance(icc_profile, (bytes, bytearray)):
            raise ImageError(f"icc_profile: {type(icc_profile).__name__}; expected bytes or None")
        if fmt not in _HOLDS_ICC:
            raise ImageError(f"{path}: {fmt} cannot hold an ICC profile; pass icc_profile=None "
                             f"or write PNG/JPEG/TIFF/WebP")
        icc_profile = bytes(icc_profile) or None

    arr = _check_pixels(pixels)
    if arr.shape[2] == 4 and fmt not in _HOLDS_ALPHA:
        if not drop_alpha:
            raise ImageError(f"{path}: {fmt} cannot hold an alpha channel and pixels have 4 "
                             f"channels; pass drop_alpha=True or write PNG/TIFF/WebP")
        arr = arr[..., :3]
    scale = 2 ** bit_depth - 1
    q = np.rint(arr.astype(np.float64) * scale).astype(np.uint8 if bit_depth == 8 else np.uint16)

    try:
        with atomic_path(path) as tmp:
            if bit_depth == 16:
                _write16(tmp, q, fmt, icc_profile, path)
            else:
                _write8(tmp, q, fmt, quality, icc_profile, lossless)
    except ImageError:
        raise
    except OSError as exc:
        raise ImageError(f"{path}: cannot write ({exc.strerror or _one_line(exc)})") from None
    return path


def _check_pixels(pixels: object) -> np.ndarray:
    """Validate pixels for writing; return float ``(H, W, C)`` clipped to [0, 1]."""
    if not isinstance(pixels, np.ndarray):
        raise ImageError(f"pixels: {type(pixels).__name__}; expected a numpy array "
                         f"(use from_tensor for a torch tensor)")
    if not np.issubdtype(pixels.dtype, np.floating):
        raise ImageError(f"pixels: dtype {pixels.dtype}; expected floating point values in [0, 1]")
    arr = pixels[..., None] if pixels.ndim == 2 else pixels
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"pixels: shape {pixels.shape}; expected (H, W) or (H, W, C) with C in "
                         f"1, 3, 4 and H, W > 0")
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int(arr.size - np.count_nonzero(finite))
        raise ImageError(f"pixels: {bad} NaN or infinite values; expected values in [0, 1]")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -_TINY or hi > 1 + _TINY:
        raise ImageError(f"pixels: values range over [{lo:.6g}, {hi:.6g}]; expected [0, 1] "
                         f"(clip or rescale first)")
    return np.clip(arr, 0.0, 1.0) if (lo < 0 or hi > 1) else arr


def _write8(tmp: Path, q: np.ndarray, fmt: str, quality: int, icc: bytes | None,
            lossless: bool) -> None:
    im = Image.fromarray(q[..., 0] if q.shape[2] == 1 else q)
    options: dict[str, object] = {}
    if icc:
        options["icc_profile"] = icc
    if fmt == "JPEG":
        options.update(quality=int(quality), subsampling=0)
    elif fmt == "WEBP":
        if im.mode == "L":
            im = im.convert("RGB")
        options.update(quality=int(quality), lossless=bool(lossless), exact=bool(lossless))
    elif fmt == "TIFF" and features.check("libtiff"):
        options["compression"] = "tiff_adobe_deflate"
    im.save(tmp, format=fmt, **options)


def _write16(tmp: Path, q: np.ndarray, fmt: str, icc: bytes | None, path: Path) -> None:
    if fmt == "PNG":
        tmp.write_bytes(png16.encode_png16(q, icc))
        return
    try:
        import tifffile
    except ImportError:  # pragma: no cover - tifffile is a dependency
        raise ImageError(f"{path}: writing a 16-bit TIFF needs the 'tifffile' package "
                         f"(pip install tifffile)") from None
    channels = q.shape[2]
    tifffile.imwrite(
        tmp, q[..., 0] if channels == 1 else q,
        photometric="minisblack" if channels == 1 else "rgb",
        extrasamples=["unassalpha"] if channels == 4 else None,
        compression="zlib", iccprofile=icc,
    )


# --------------------------------------------------------------------------------------------
# torch


def to_tensor(pixels: np.ndarray) -> "torch.Tensor":
    """Float numpy pixels ``(H, W, C)`` or ``(H, W)`` -> float32 torch ``(1, C, H, W)``, a copy."""
    import torch

    if not isinstance(pixels, np.ndarray) or not np.issubdtype(pixels.dtype, np.floating):
        what = pixels.dtype if isinstance(pixels, np.ndarray) else type(pixels).__name__
        raise ImageError(f"pixels: {what}; expected a floating-point numpy array in [0, 1]")
    arr = pixels[..., None] if pixels.ndim == 2 else pixels
    if arr.ndim != 3:
        raise ImageError(f"pixels: shape {pixels.shape}; expected (H, W) or (H, W, C)")
    chw = np.array(arr.transpose(2, 0, 1), dtype=np.float32, order="C", copy=True)
    return torch.from_numpy(chw)[None]


def from_tensor(t: "torch.Tensor") -> np.ndarray:
    """Torch ``(1, C, H, W)`` or ``(C, H, W)``, any device and float dtype -> float32 numpy
    ``(H, W, C)``, a copy."""
    import torch

    if not isinstance(t, torch.Tensor):
        raise ImageError(f"tensor: {type(t).__name__}; expected a torch.Tensor")
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise ImageError(f"tensor: shape {tuple(t.shape)}; a batch must hold one image "
                             f"(index it first)")
        t = t[0]
    if t.ndim != 3:
        raise ImageError(f"tensor: shape {tuple(t.shape)}; expected (1, C, H, W) or (C, H, W)")
    if not t.is_floating_point():
        raise ImageError(f"tensor: dtype {t.dtype}; expected a floating-point tensor in [0, 1]")
    arr = t.detach().to(device="cpu", dtype=torch.float32).permute(1, 2, 0).numpy()
    return np.array(arr, dtype=np.float32, order="C", copy=True)
