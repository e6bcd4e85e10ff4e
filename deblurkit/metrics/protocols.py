"""Evaluation protocols of the deblurring literature (survey §III-A): plain, Levin, Köhler.

A blind method may return its estimate shifted by a few pixels (the kernel is only known up to a
translation) and, on real recordings, with a different exposure; the Levin and Köhler protocols
compensate for this before measuring.

``plain`` (GoPro, Nah et al. 2017; synthetic pairs)
    :func:`~deblurkit.metrics.psnr.psnr` and :func:`~deblurkit.metrics.ssim.ssim` directly.
``levin`` (Levin, Weiss, Durand, Freeman, "Understanding and evaluating blind deconvolution
algorithms", CVPR 2009)
    The estimate is aligned to the ground truth by the translation minimising the sum of squared
    differences (SSD) on the ground truth with ``border`` pixels cropped from each side; PSNR,
    SSIM and SSD are measured on that crop, and the *error ratio* is
    ``SSD(estimate) / SSD(reference)`` where the reference is the deconvolution with the true
    kernel (aligned the same way). Levin's script ``comp_upto_shift.m`` (as redistributed with
    later papers' code) crops 15 px from each side of the ground truth and tries shifts of
    -5..5 px in 0.25 px steps with bilinear ``interp2``; here the search is over all integer shifts
    within ``+-max_shift`` (default 10, a wider search), and ``subpixel=True`` adds a parabolic
    sub-pixel refinement with bilinear interpolation (below).
``kohler`` (Köhler, Hirsch, Mohler, Schölkopf, Harmeling, "Recording and playback of camera
shake: benchmarking blind deconvolution with a real-world database", ECCV 2012)
    Each blurry image comes with the sharp frames recorded along the camera trajectory; the
    estimate is compared with every frame after compensating translation and exposure, and the
    best score over the frames is reported (PSNR and SSIM maximised separately, as
    ``get_best_metric_value2.m`` of the official code does). The official evaluation
    (``eval_image.m``, Hirsch & Köhler 2012) scales the estimate by the least-squares gain
    ``sum(x z) / sum(z z)`` over the whole image, registers it with ``dftregistration`` (integer
    pixel peak of the circular cross-correlation of the channel means, unbounded), shifts it with
    zero filling, masks the ground truth the same way and computes PSNR over the full frame with
    the zero-filled pixels included (peak 255). Here, instead, shift and gain are chosen *jointly*
    as the least-squares optimum: for every integer shift within ``+-max_shift`` the gain
    (``fit="gain"``, the default, as the official code; ``fit="affine"`` adds an offset;
    ``fit="none"`` neither) is solved in closed form on a fixed interior crop (``border`` px from
    each side), and the shift with the smallest residual SSD wins; PSNR/SSIM are measured on that
    crop, so every shift is judged on the same number of pixels and no zero-filled pixel enters
    the score. The gain-corrected estimate is not clipped.

Alignment engine: for all shifts at once, the cross term ``sum(P_s T)`` is an FFT
cross-correlation and the window sums ``sum(P_s)``, ``sum(P_s^2)`` come from integral images (all
float64), so the search costs a few FFTs of the image whatever ``max_shift``; the chosen window's
SSD, PSNR and SSIM are then recomputed directly. A shift ``(dy, dx)`` means the estimate's pixel
``(y + dy, x + dx)`` is compared with the ground truth's ``(y, x)`` (an estimate equal to
``np.roll(gt, (3, -4), axis=(0, 1))`` is aligned by ``(3, -4)``). Sub-pixel refinement: a
parabola through the SSD at the best integer shift and its two neighbours along each axis gives
a fractional offset in [-0.5, 0.5]; the estimate is resampled there by bilinear interpolation, the
gain refitted, and the refined window is kept only if its SSD is smaller than the integer one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ImageError
from .psnr import as_batch, check_data_range, check_finite, check_pair, crop, rgb_to_y
from .psnr import psnr as _psnr
from .ssim import SSIM_CONVENTIONS, ssim_unchecked

__all__ = [
    "FITS",
    "KohlerScore",
    "LevinScore",
    "PlainScore",
    "align",
    "kohler_score",
    "levin_score",
    "plain_score",
]

#: Intensity corrections accepted by :func:`align` / :func:`kohler_score`.
FITS = ("none", "gain", "affine")


@dataclass(frozen=True)
class PlainScore:
    """Scores of the plain protocol: ``psnr`` (dB) and ``ssim``, each ``(B,)``."""

    psnr: torch.Tensor
    ssim: torch.Tensor


@dataclass(frozen=True)
class LevinScore:
    """Scores of the Levin et al. 2009 protocol, each field ``(B,)`` unless said otherwise.

    ``psnr`` (dB, +inf for a perfect match) and ``ssim`` on the aligned crop; ``ssd``: sum of
    squared differences there (over channels and pixels); ``shift``: ``(B, 2)`` float64
    ``(dy, dx)`` of the estimate; ``error_ratio``: ``ssd / reference_ssd`` (``None`` without a
    reference; 1.0 when both are 0, +inf when only the reference's is 0).
    """

    psnr: torch.Tensor
    ssim: torch.Tensor
    ssd: torch.Tensor
    shift: torch.Tensor
    error_ratio: torch.Tensor | None = None
    reference_ssd: torch.Tensor | None = None


@dataclass(frozen=True)
class KohlerScore:
    """Scores of the Köhler et al. 2012 protocol for one estimate against N sharp frames.

    ``psnr`` / ``ssim``: the best over the frames (maximised separately, as the official code);
    ``psnr_frame`` / ``ssim_frame``: which frame gave each. Per frame, ``(N,)`` float64 tensors:
    ``frame_psnr``, ``frame_ssim``, ``gain``, ``offset``; ``shift``: ``(N, 2)`` ``(dy, dx)``.
    """

    psnr: float
    ssim: float
    psnr_frame: int
    ssim_frame: int
    frame_psnr: torch.Tensor
    frame_ssim: torch.Tensor
    shift: torch.Tensor
    gain: torch.Tensor
    offset: torch.Tensor


@dataclass(frozen=True)
class Alignment:
    """Result of :func:`align`: the aligned, intensity-corrected estimate and the ground-truth crop.

    ``pred`` and ``target``: ``(B, C, h, w)`` float64 with ``h = H - 2 * border``; ``shift``
    ``(B, 2)``; ``gain``, ``offset``, ``ssd``: ``(B,)``.
    """

    pred: torch.Tensor
    target: torch.Tensor
    shift: torch.Tensor
    gain: torch.Tensor
    offset: torch.Tensor
    ssd: torch.Tensor


def _check_convention(convention: str) -> None:
    if convention not in SSIM_CONVENTIONS:
        raise ImageError(f"ssim_convention: {convention!r}; choose one of "
                         f"{', '.join(repr(c) for c in SSIM_CONVENTIONS)}")


def _ssim_of(p: torch.Tensor, t: torch.Tensor, convention: str, data_range: float
             ) -> torch.Tensor:
    if convention == "y":
        if p.shape[1] != 3:
            raise ImageError(f"pred: {p.shape[1]} channel(s); SSIM convention 'y' needs RGB "
                             f"images (3 channels)")
        p, t = rgb_to_y(p, data_range), rgb_to_y(t, data_range)
    return ssim_unchecked(p, t, convention=convention, data_range=data_range)


def plain_score(pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray, *,
                ssim_convention: str = "skimage", data_range: float = 1.0,
                crop_border: int = 0) -> PlainScore:
    """The plain protocol (GoPro): PSNR and SSIM of ``(B, C, H, W)`` pairs, ``crop_border`` px
    dropped from each side first. Returns :class:`PlainScore` of ``(B,)`` tensors."""
    _check_convention(ssim_convention)
    p, t = check_pair(pred, target)
    m = check_data_range(data_range)
    p, t = crop(p, crop_border), crop(t, crop_border)
    return PlainScore(psnr=_psnr(p, t, data_range=m),
                      ssim=_ssim_of(p, t, ssim_convention, m))


def _check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ImageError(f"{name}: {value!r}; expected an integer >= {minimum}")
    return int(value)


def _check_geometry(shape: torch.Size, max_shift: int, border: int) -> tuple[int, int]:
    h, w = shape[-2:]
    if border < max_shift:
        raise ImageError(f"border: {border} < max_shift {max_shift}; the shifted estimate must "
                         f"stay inside the image (use border >= max_shift)")
    if 2 * border >= min(h, w):
        raise ImageError(f"border: {border} leaves nothing of a {h}x{w} image "
                         f"(needs 2 * border < {min(h, w)})")
    return h - 2 * border, w - 2 * border


def _box(integral: torch.Tensor, h: int, w: int, n: int) -> torch.Tensor:
    """Window sums of size ``h x w`` at the ``n x n`` top-left offsets, from an integral image
    ``(B, Hr + 1, Wr + 1)`` with a zero first row and column."""
    return (integral[:, h:h + n, w:w + n] - integral[:, 0:n, w:w + n]
            - integral[:, h:h + n, 0:n] + integral[:, 0:n, 0:n])


def _integral(x: torch.Tensor) -> torch.Tensor:
    out = x.cumsum(-2).cumsum(-1)
    return torch.nn.functional.pad(out, (1, 0, 1, 0))


def _solve_fit(spp: torch.Tensor, sp: torch.Tensor, spt: torch.Tensor, stt: torch.Tensor,
               st: torch.Tensor, n: int, fit: str
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Least-squares ``a * P + c ~ T`` from the sums; returns ``(ssd, a, c)`` (broadcast shapes)."""
    if fit == "none":
        a = torch.ones_like(spt)
        c = torch.zeros_like(spt)
        ssd = spp - 2 * spt + stt
    elif fit == "gain":
        safe = spp > 0
        a = torch.where(safe, spt / torch.where(safe, spp, torch.ones_like(spp)),
                        torch.zeros_like(spt))
        c = torch.zeros_like(spt)
        ssd = stt - a * spt
    else:  # affine
        var_p = spp - sp * sp / n
        cov = spt - sp * st / n
        safe = var_p > 1e-12 * torch.clamp(spp, min=1e-300)
        a = torch.where(safe, cov / torch.where(safe, var_p, torch.ones_like(var_p)),
                        torch.zeros_like(cov))
        c = (st - a * sp) / n
        ssd = (stt - st * st / n) - a * cov
    return torch.clamp(ssd, min=0.0), a, c


def _direct_fit(p: torch.Tensor, t: torch.Tensor, fit: str
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Closed-form fit and exact SSD of ``a * p + c`` against ``t``, both ``(B, C, h, w)``."""
    n = p[0].numel()
    dims = (1, 2, 3)
    _, a, c = _solve_fit((p * p).sum(dims), p.sum(dims), (p * t).sum(dims), (t * t).sum(dims),
                         t.sum(dims), n, fit)
    corrected = p * a.view(-1, 1, 1, 1) + c.view(-1, 1, 1, 1)
    ssd = (corrected - t).square().sum(dims)
    return ssd, a, c


def _window(p: torch.Tensor, top: float, left: float, h: int, w: int) -> torch.Tensor:
    """``p[:, top:top + h, left:left + w]`` of a ``(C, H, W)`` image at a real offset (bilinear)."""
    y0, x0 = math.floor(top), math.floor(left)
    ty, tx = top - y0, left - x0
    out = None
    for dy, wy in ((0, 1.0 - ty), (1, ty)):
        for dx, wx in ((0, 1.0 - tx), (1, tx)):
            wgt = wy * wx
            if wgt == 0.0:
                continue
            term = p[:, y0 + dy:y0 + dy + h, x0 + dx:x0 + dx + w] * wgt
            out = term if out is None else out + term
    return out


def _parabola(s_minus: float, s0: float, s_plus: float) -> float:
    den = s_minus - 2.0 * s0 + s_plus
    if not den > 0:
        return 0.0
    return float(min(0.5, max(-0.5, 0.5 * (s_minus - s_plus) / den)))


def align(pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray, *,
          max_shift: int = 10, border: int = 15, fit: str = "none", subpixel: bool = False
          ) -> Alignment:
    """Align each estimate to its ground truth by the least-squares shift (and intensity fit).

    ``pred``, ``target``: ``(B, C, H, W)`` (numpy ``(H, W, C)`` accepted). For every integer shift
    ``(dy, dx)`` with ``|dy|, |dx| <= max_shift`` the estimate's window
    ``pred[..., border + dy : H - border + dy, border + dx : W - border + dx]`` is compared with the
    ground-truth crop ``target[..., border:H - border, border:W - border]`` after the closed-form
    least-squares intensity ``fit`` (``"none"``, ``"gain"``: ``a * P``, ``"affine"``:
    ``a * P + c``; one ``a, c`` per image over all channels); the shift with the smallest SSD wins
    (see the module docstring for the FFT search and the optional sub-pixel refinement).
    Requires ``border >= max_shift``. Returns an :class:`Alignment` (float64).
    """
    p, t = check_pair(pred, target)
    m = _check_int(max_shift, "max_shift", 0)
    b = _check_int(border, "border", 0)
    if fit not in FITS:
        raise ImageError(f"fit: {fit!r}; choose one of {', '.join(repr(f) for f in FITS)}")
    h, w = _check_geometry(p.shape, m, b)
    return _align(p.to(torch.float64), t.to(torch.float64), m, b, h, w, fit, bool(subpixel))


def _align(p: torch.Tensor, t: torch.Tensor, m: int, b: int, h: int, w: int, fit: str,
           subpixel: bool) -> Alignment:
    nb, c = p.shape[:2]
    n_shift = 2 * m + 1
    n = c * h * w
    tc = t[..., b:b + h, b:b + w]
    region = p[..., b - m:b + h + m, b - m:b + w + m]          # (B, C, h + 2m, w + 2m)
    if nb > 1 and p.stride(0) == 0:
        region = region[:1]     # one estimate against several frames (Köhler): its sums once
    size = region.shape[-2:]
    spectrum = torch.fft.rfft2(region) * torch.fft.rfft2(tc, s=size).conj()
    cross = torch.fft.irfft2(spectrum.sum(1), s=size)          # summed over channels
    spt = cross[:, :n_shift, :n_shift]                         # (B, S, S)
    spp = _box(_integral(region.square().sum(1)), h, w, n_shift)
    sp = _box(_integral(region.sum(1)), h, w, n_shift)
    dims = (1, 2, 3)
    stt = tc.square().sum(dims).view(-1, 1, 1)
    st = tc.sum(dims).view(-1, 1, 1)
    surface, _, _ = _solve_fit(spp, sp, spt, stt, st, n, fit)  # (B, S, S)
    best = surface.flatten(1).argmin(1)
    preds, shifts, gains, offsets, ssds = [], [], [], [], []
    for i in range(nb):
        u, v = divmod(int(best[i]), n_shift)
        win = p[i, :, b + u - m:b + u - m + h, b + v - m:b + v - m + w]
        ssd, a, off = _direct_fit(win[None], tc[i:i + 1], fit)
        shift = (float(u - m), float(v - m))
        if subpixel:
            s = surface[i]
            fy = _parabola(float(s[u - 1, v]), float(s[u, v]), float(s[u + 1, v])) \
                if 0 < u < n_shift - 1 else 0.0
            fx = _parabola(float(s[u, v - 1]), float(s[u, v]), float(s[u, v + 1])) \
                if 0 < v < n_shift - 1 else 0.0
            if fy != 0.0 or fx != 0.0:
                win2 = _window(p[i], b + u - m + fy, b + v - m + fx, h, w)
                ssd2, a2, off2 = _direct_fit(win2[None], tc[i:i + 1], fit)
                if float(ssd2[0]) < float(ssd[0]):
                    win, ssd, a, off = win2, ssd2, a2, off2
                    shift = (shift[0] + fy, shift[1] + fx)
        preds.append(win * a + off)
        shifts.append(shift)
        gains.append(a)
        offsets.append(off)
        ssds.append(ssd)
    return Alignment(
        pred=torch.stack(preds), target=tc,
        shift=torch.tensor(shifts, dtype=torch.float64, device=p.device).view(nb, 2),
        gain=torch.cat(gains), offset=torch.cat(offsets), ssd=torch.cat(ssds))


def _psnr_from_ssd(ssd: torch.Tensor, n: int, data_range: float) -> torch.Tensor:
    return 10.0 * torch.log10((data_range * data_range) / (ssd / n))


def levin_score(pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray, *,
                reference: torch.Tensor | np.ndarray | None = None, max_shift: int = 10,
                border: int = 15, subpixel: bool = False, ssim_convention: str = "skimage",
                data_range: float = 1.0) -> LevinScore:
    """Levin et al. (CVPR 2009) protocol: align by the SSD-minimising shift, score on the crop.

    Parameters
    ----------
    pred, target : ``(B, C, H, W)`` floating tensors (numpy ``(H, W, C)`` accepted), the estimate
        and the sharp ground truth, values in ``[0, data_range]``.
    reference : optional ``(B, C, H, W)``: the non-blind deconvolution of the same blurry input
        with the *true* kernel (computed by the caller); it is aligned by the same search and
        gives ``error_ratio = SSD(pred) / SSD(reference)`` (Levin et al.'s measure; about 1 means
        "as good as knowing the kernel").
    max_shift : integer shifts searched, ``|dy|, |dx| <= max_shift``.
    border : pixels cropped from each side of the ground truth (Levin's script: 15).
    subpixel : refine the shift below a pixel (bilinear; see the module docstring).
    ssim_convention : convention of :func:`deblurkit.metrics.ssim.ssim`.

    Returns :class:`LevinScore` (float64 tensors; the alignment, SSD and PSNR are computed in
    float64, the SSIM in the inputs' precision). No intensity correction is applied.
    """
    _check_convention(ssim_convention)
    p, t = check_pair(pred, target)
    dr = check_data_range(data_range)
    m = _check_int(max_shift, "max_shift", 0)
    b = _check_int(border, "border", 0)
    h, w = _check_geometry(p.shape, m, b)
    p64, t64 = p.to(torch.float64), t.to(torch.float64)
    al = _align(p64, t64, m, b, h, w, "none", bool(subpixel))
    n = al.pred[0].numel()
    ratio = ref_ssd = None
    if reference is not None:
        r, _ = check_pair(reference, target, ("reference", "target"))
        ref = _align(r.to(torch.float64), t64, m, b, h, w, "none", bool(subpixel))
        ref_ssd = ref.ssd
        ratio = torch.where(ref_ssd > 0, al.ssd / torch.where(ref_ssd > 0, ref_ssd, 1.0),
                            torch.where(al.ssd > 0, torch.full_like(al.ssd, math.inf),
                                        torch.ones_like(al.ssd)))
    return LevinScore(psnr=_psnr_from_ssd(al.ssd, n, dr),
                      ssim=_ssim_of(al.pred.to(p.dtype), al.target.to(p.dtype), ssim_convention,
                                    dr).to(torch.float64),
                      ssd=al.ssd, shift=al.shift, error_ratio=ratio, reference_ssd=ref_ssd)


def kohler_score(pred: torch.Tensor | np.ndarray, targets: torch.Tensor | np.ndarray, *,
                 max_shift: int = 20, border: int | None = None, fit: str = "gain",
                 subpixel: bool = False, ssim_convention: str = "skimage",
                 data_range: float = 1.0, chunk: int = 8) -> KohlerScore:
    """Köhler et al. (ECCV 2012) protocol: best score over the sharp frames of the trajectory.

    Parameters
    ----------
    pred : one estimate, ``(1, C, H, W)`` or ``(C, H, W)`` tensor (numpy ``(H, W, C)`` accepted).
    targets : the N sharp frames recorded along the camera trajectory, ``(N, C, H, W)`` tensor
        (numpy ``(N, H, W, C)`` accepted), same C, H, W as ``pred``.
    max_shift : integer shifts searched per frame, ``|dy|, |dx| <= max_shift``.
    border : pixels cropped from each side for the comparison (default ``max_shift``).
    fit : intensity correction solved jointly with the shift: ``"gain"`` (default, the official
        code's scaling), ``"affine"`` (gain and offset) or ``"none"``.
    subpixel : refine the shift below a pixel (bilinear; see the module docstring).
    ssim_convention : convention of :func:`deblurkit.metrics.ssim.ssim`.
    chunk : frames processed at once (memory bound).

    Returns :class:`KohlerScore`; see the module docstring for how this differs from the
    official MATLAB evaluation.
    """
    _check_convention(ssim_convention)
    if isinstance(pred, torch.Tensor) and pred.ndim == 3:
        pred = pred[None]
    p = as_batch(pred, "pred")
    if p.shape[0] != 1:
        raise ImageError(f"pred: batch of {p.shape[0]} images; kohler_score takes one estimate "
                         f"(1, C, H, W) and its frames (N, C, H, W)")
    t = as_batch(targets, "targets")
    if t.shape[1:] != p.shape[1:]:
        raise ImageError(f"targets: frames of shape {tuple(t.shape[1:])} != pred shape "
                         f"{tuple(p.shape[1:])}; the frames must have the estimate's size")
    if p.device != t.device:
        raise ImageError(f"pred is on {p.device} but targets are on {t.device}")
    check_finite(p, "pred")
    check_finite(t, "targets")
    dr = check_data_range(data_range)
    m = _check_int(max_shift, "max_shift", 0)
    b = m if border is None else _check_int(border, "border", 0)
    if fit not in FITS:
        raise ImageError(f"fit: {fit!r}; choose one of {', '.join(repr(f) for f in FITS)}")
    step = _check_int(chunk, "chunk", 1)
    h, w = _check_geometry(p.shape, m, b)
    p64 = p.to(torch.float64)
    frame_psnr, frame_ssim, shifts, gains, offsets = [], [], [], [], []
    for start in range(0, t.shape[0], step):
        frames = t[start:start + step].to(torch.float64)
        al = _align(p64.expand(frames.shape[0], -1, -1, -1), frames, m, b, h, w, fit,
                    bool(subpixel))
        frame_psnr.append(_psnr_from_ssd(al.ssd, al.pred[0].numel(), dr))
        dtype = torch.promote_types(p.dtype, t.dtype)   # SSIM in the inputs' precision
        frame_ssim.append(_ssim_of(al.pred.to(dtype), al.target.to(dtype), ssim_convention,
                                   dr).to(torch.float64))
        shifts.append(al.shift)
        gains.append(al.gain)
        offsets.append(al.offset)
    fp, fs = torch.cat(frame_psnr), torch.cat(frame_ssim)
    ip, is_ = int(fp.argmax()), int(fs.argmax())
    return KohlerScore(psnr=float(fp[ip]), ssim=float(fs[is_]), psnr_frame=ip, ssim_frame=is_,
                       frame_psnr=fp, frame_ssim=fs, shift=torch.cat(shifts),
                       gain=torch.cat(gains), offset=torch.cat(offsets))
