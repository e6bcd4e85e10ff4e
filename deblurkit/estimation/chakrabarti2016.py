"""Chakrabarti, "A Neural Approach to Blind Motion Deblurring" (ECCV 2016, arXiv 1603.04771);
survey §II-A, eq. 5-8 (Sahu, Lenka, Sa, arXiv 1907.10128).

Three steps:

1. **Patch network** (survey eq. 5-6). For every overlapping ``65 x 65`` patch ``y_p`` of the
   blurred image the network predicts the complex Fourier coefficients ``G_p`` of a deconvolution
   filter; the restored patch is (eq. 6) ``x_p = F^-1( G_p . F(y_p - mean) ) + mean``, of which the
   central ``33 x 33`` pixels are kept (:func:`apply_filters`). ``G_p`` has 2112 independent complex
   coefficients: the DFT half-plane of a 65 x 65 real patch without DC (the mean is carried over
   unchanged), so that ``x_p`` is real by construction.

   Input (eq. 5): a multi-resolution frequency-band decomposition of ``y_p - 0.5``
   (:func:`band_decomposition`): DFT coefficients with ``max(|f_x|, |f_y|) <= 4`` of the whole
   65 x 65 patch (with DC: 81 numbers), ``4 < max(|f_x|, |f_y|) <= 8`` of the whole patch, of its
   central 33 x 33 and of its central 17 x 17 (208 numbers each) -- higher frequencies are taken
   from smaller windows, i.e. more localised, as in the paper. Each band is whitened (PCA, fitted
   on training patches; :meth:`ChakrabartiNet.fit_whitening`, as the paper's ``dec_tfm``).

   Network (the paper's ``nw_struct``): band-local first layers, each seeing two adjacent bands
   (bands 1+2, 2+3, 3+4), ``h1`` ReLU units each; a second level of two layers (``h2`` units) each
   seeing two adjacent first-level groups; ``n_global`` fully connected ReLU layers of ``hg`` units;
   a linear output of 4224 numbers (2112 complex). Paper size: ``h1 = 1024``, ``h2 = 2048``,
   ``hg = 4096``, ``n_global = 5`` -- 110,755,968 parameters (``SIZES["paper"]``; the same count
   as the weight shapes of the paper's ``nw_wts.m``). The CPU default (``SIZES["small"]``:
   128 / 256 / 512, two global layers) has 2,967,680 (2.7 % of the paper's). deblurkit initialises
   the output layer to the identity filter (bias 1 + 0i, weights scaled by 0.01) so that an
   untrained network returns the blurred patch.

2. **Recombination**: restored centres of patches at stride ``stride`` (the paper: every pixel,
   stride 1) are clipped to [0, 1] and averaged with a 33 x 33 Hann window
   (:func:`image_to_patches`, :func:`patches_to_image`); the image is first padded by 16 pixels
   (reflect) so every pixel is covered. This is the initial estimate ``I_est`` (eq. 7).

3. **Global kernel** (survey eq. 8)::

       k = argmin_k  sum_j || k * (f_j * I_est) - f_j * B ||^2 + lambda ||k||_1
           subject to k >= 0, sum(k) = 1

   with ``f_j`` the paper's 16 derivative filters (first and second Gaussian derivatives, sigma 1,
   8 orientations; :func:`derivative_filters`) and, as in the paper's code, the estimate's
   derivatives kept only at its strongest 2 % (``edge_fraction``). The quadratic is formed
   exactly from Fourier-domain correlations (:func:`kernel_normal_equations`) and minimised by
   FISTA (accelerated projected gradient, Beck & Teboulle 2009) over the feasible set
   (:func:`solve_kernel_qp`). On that set ``||k||_1 = sum(k) = 1``, so the L1 term is a constant
   and the exact minimiser of eq. 8 does not depend on ``lambda`` (``mode="simplex"``, the
   default: Euclidean projection onto the simplex, Duchi et al. 2008). ``mode="nonneg"`` is the
   paper's practice instead (its ``estK.m``: L1-shrinkage with ``k >= 0`` but no sum constraint,
   then normalisation to sum 1), where ``lam`` does act.

The kernel is estimated on the grey image (luma, :mod:`deblurkit.estimation._common`), or its
central ``max_side`` crop, and its centroid moved to its centre (a blind kernel is known up to a
translation; :func:`~deblurkit.estimation._common.center_kernel`).

4. **Non-blind deconvolution** of every channel with the kernel: the paper uses EPLL (Zoran &
   Weiss 2011), which deblurkit does not have; we use :func:`deblurkit.deconv.hyper_laplacian`
   (Krishnan & Fergus 2009), as every other deblurkit estimator.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..blur.kernels import validate_kernel
from ..errors import ConfigError, ImageError, KernelError
from ._common import center_kernel, check_image, to_grey
from .schuler2014 import (
    resolve_network,
    MIN_SIDE,
    _check_common,
    centre_crop,
    deconvolve_image,
    delta_kernel,
    taper_window,
)

__all__ = [
    "MODEL_NAME", "PATCH", "CENTRE", "DEFAULT_OPTIONS", "SIZES", "N_FILTER_COEFFS",
    "band_decomposition", "band_dims", "filter_from_output", "identity_filter", "apply_filters",
    "hann_window", "image_to_patches", "patches_to_image", "ChakrabartiNet", "restore_image",
    "derivative_filters", "kernel_normal_equations", "project_simplex", "solve_kernel_qp",
    "kernel_from_latent", "Chakrabarti2016Estimator",
]

MODEL_NAME = "chakrabarti2016"
PATCH = 65          #: input patch side
CENTRE = 33         #: side of the restored centre kept from each patch
_HALF = PATCH // 2  # 32
_CROP = (PATCH - CENTRE) // 2  # 16

DEFAULT_OPTIONS: dict[str, Any] = {"h1": 128, "h2": 256, "hg": 512, "n_global": 2}
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"h1": 8, "h2": 16, "hg": 16, "n_global": 1},
    "small": {},
    "paper": {"h1": 1024, "h2": 2048, "hg": 4096, "n_global": 5},
}


# --------------------------------------------------------------------------------------------
# frequency bookkeeping
# --------------------------------------------------------------------------------------------

def _signed(n: int) -> np.ndarray:
    """Signed frequency of each row index of an ``n``-point DFT (numpy ``fftfreq * n``)."""
    return np.rint(np.fft.fftfreq(n) * n).astype(int)


def _half_plane(n: int, lo: float, hi: float, dc: bool) -> tuple[np.ndarray, np.ndarray]:
    """Row / column indices (rfft2 layout of an odd ``n x n`` real image) of the independent
    frequencies with ``lo < max(|fy|, |fx|) <= hi``: column 0 with ``fy > 0`` and columns
    ``fx >= 1`` (all rows); DC first when ``dc``."""
    fy = _signed(n)
    rows, cols = [], []
    if dc:
        rows.append(0)
        cols.append(0)
    for c in range(n // 2 + 1):
        for r in range(n):
            if c == 0 and fy[r] <= 0:
                continue
            m = max(abs(int(fy[r])), c)
            if lo < m <= hi:
                rows.append(r)
                cols.append(c)
    return np.array(rows), np.array(cols)


#: (window side, lo, hi, with DC) of the four input bands.
_BANDS = ((PATCH, -1, 4, True), (PATCH, 4, 8, False), (33, 4, 8, False), (17, 4, 8, False))
_BAND_INDEX = [_half_plane(n, lo, hi, dc) for n, lo, hi, dc in _BANDS]
#: rfft2 indices of the 2112 independent non-DC frequencies of a 65 x 65 patch (filter layout).
_FILTER_ROWS, _FILTER_COLS = _half_plane(PATCH, 0, math.inf, False)
N_FILTER_COEFFS = len(_FILTER_ROWS)  # 2112


def band_dims() -> list[int]:
    """Number of real inputs of each band: ``[81, 208, 208, 208]``."""
    dims = []
    for (n, lo, hi, dc), (r, _) in zip(_BANDS, _BAND_INDEX):
        dims.append(2 * len(r) - (1 if dc else 0))
    return dims


def band_decomposition(patches: torch.Tensor) -> list[torch.Tensor]:
    """Survey eq. 5: multi-resolution frequency bands of blurred patches.

    Args:
        patches: ``(N, 65, 65)`` float32/float64 (values ``y - 0.5`` by convention).

    Returns:
        four tensors ``(N, d)`` with ``d = band_dims()``: real and imaginary parts of the DFT
        coefficients (normalised by the window's pixel count) of the band's window (65, 65, 33 or
        17 pixels, centred); band 0 starts with the DC term (its real part only).
    """
    if patches.ndim != 3 or patches.shape[-2:] != (PATCH, PATCH):
        raise ImageError(f"patches: expected (N, {PATCH}, {PATCH}), got {tuple(patches.shape)}")
    out = []
    spectra: dict[int, torch.Tensor] = {}
    for (n, lo, hi, dc), (rows, cols) in zip(_BANDS, _BAND_INDEX):
        if n not in spectra:
            off = (PATCH - n) // 2
            spectra[n] = torch.fft.rfft2(patches[:, off:off + n, off:off + n]) / (n * n)
        coeffs = spectra[n][:, torch.as_tensor(rows), torch.as_tensor(cols)]
        parts = [coeffs.real, coeffs.imag[:, 1:] if dc else coeffs.imag]
        out.append(torch.cat(parts, dim=1))
    return out


def filter_from_output(out: torch.Tensor) -> torch.Tensor:
    """Network output ``(N, 4224)`` (real parts of the 2112 coefficients, then imaginary parts)
    -> filter ``G`` ``(N, 65, 33)`` complex in rfft2 layout: DC 0, column 0 Hermitian-symmetric
    (``G[-fy, 0] = conj(G[fy, 0])``), so that ``irfft2(G . rfft2(y))`` is real."""
    n = out.shape[0]
    coeffs = torch.complex(out[:, :N_FILTER_COEFFS], out[:, N_FILTER_COEFFS:])
    G = coeffs.new_zeros((n, PATCH, PATCH // 2 + 1))
    G[:, _FILTER_ROWS, _FILTER_COLS] = coeffs
    pos = np.arange(1, _HALF + 1)
    G[:, PATCH - pos, 0] = torch.conj(G[:, pos, 0])
    return G


def identity_filter(n: int, dtype=torch.float32) -> torch.Tensor:
    """Network output ``(n, 4224)`` of the identity filter (all coefficients 1 + 0i)."""
    out = torch.zeros((n, 2 * N_FILTER_COEFFS), dtype=dtype)
    out[:, :N_FILTER_COEFFS] = 1
    return out


def apply_filters(patches: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
    """Survey eq. 6: restore patches with their filters and keep the centres.

    ``patches`` ``(N, 65, 65)`` blurred, in [0, 1]; ``G`` ``(N, 65, 33)`` complex (rfft2 layout,
    see :func:`filter_from_output`). Returns ``(N, 33, 33)``:
    ``(irfft2(G . rfft2(y - mean(y))) + mean(y))[16:49, 16:49]``. Differentiable."""
    mean = patches.mean(dim=(-2, -1), keepdim=True)
    spec = torch.fft.rfft2(patches - mean)
    full = torch.fft.irfft2(spec * G, s=(PATCH, PATCH)) + mean
    return full[:, _CROP:_CROP + CENTRE, _CROP:_CROP + CENTRE]


# --------------------------------------------------------------------------------------------
# patches in, image out
# --------------------------------------------------------------------------------------------

def hann_window(n: int = CENTRE, dtype=torch.float32) -> torch.Tensor:
    """MATLAB ``hanning(n) * hanning(n)'``: ``(n, n)``, positive everywhere (no zero endpoints)."""
    t = 0.5 - 0.5 * torch.cos(2 * math.pi * torch.arange(1, n + 1, dtype=torch.float64) / (n + 1))
    return (t[:, None] * t[None, :]).to(dtype)


def _layout(h: int, w: int, stride: int) -> tuple[int, int, int, int]:
    """Top, bottom, left, right padding: 16 px, plus extra at the bottom / right so that the patch
    grid ends exactly on the last row / column (and at least one patch fits)."""
    def extra(n: int) -> int:
        span = n + 2 * _CROP - PATCH
        return -span if span < 0 else (-span) % stride
    return _CROP, _CROP + extra(h), _CROP, _CROP + extra(w)


def image_to_patches(grey: torch.Tensor, stride: int) -> tuple[torch.Tensor, tuple]:
    """All ``65 x 65`` patches of a grey image ``(H, W)`` at ``stride`` after padding it by 16 px
    (reflect; replicate where the image is too small to reflect) so that the patches' centres
    tile every pixel. Returns ``(patches (L, 65, 65), layout)``; ``layout`` is what
    :func:`patches_to_image` needs."""
    if grey.ndim != 2:
        raise ImageError(f"grey: expected (H, W), got {tuple(grey.shape)}")
    stride = int(stride)
    h, w = grey.shape
    top, bottom, left, right = _layout(h, w, stride)
    mode = "reflect" if min(h, w) > max(top, bottom, left, right) else "replicate"
    padded = F.pad(grey[None, None], (left, right, top, bottom), mode=mode)
    cols = F.unfold(padded, PATCH, stride=stride)                       # (1, 65*65, L)
    patches = cols[0].T.reshape(-1, PATCH, PATCH)
    return patches, (h, w, stride, padded.shape[-2], padded.shape[-1])


def patches_to_image(centres: torch.Tensor, layout: tuple, *, clip: bool = True) -> torch.Tensor:
    """Average restored centres ``(L, 33, 33)`` into the image ``(H, W)`` with Hann weights
    (:func:`hann_window`), each clipped to [0, 1] first when ``clip`` (as the paper)."""
    h, w, stride, hp, wp = layout
    if clip:
        centres = centres.clamp(0, 1)
    win = hann_window(CENTRE, centres.dtype).to(centres.device)
    size = (hp - 2 * _CROP, wp - 2 * _CROP)
    cols = (centres * win).reshape(centres.shape[0], -1).T[None]
    num = F.fold(cols, size, CENTRE, stride=stride)
    den = F.fold(win.reshape(-1, 1).expand(-1, centres.shape[0])[None], size, CENTRE, stride=stride)
    return (num / den)[0, 0, :h, :w]


# --------------------------------------------------------------------------------------------
# the network
# --------------------------------------------------------------------------------------------

def _int_option(name: str, value: object, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo:
        raise ConfigError(f"chakrabarti2016 option {name}: expected an integer >= {lo}, got {value!r}")
    return int(value)


class ChakrabartiNet(nn.Module):
    """Patch network: ``(N, 65, 65)`` blurred patches in [0, 1] -> network output ``(N, 4224)``
    (the filter's real then imaginary parts; :func:`filter_from_output`). See the module
    docstring for the structure; ``restore(patches)`` gives the restored ``(N, 33, 33)`` centres.

    Args: ``h1``, ``h2``, ``hg`` units of the first-level, second-level and global layers,
    ``n_global`` global layers (>= 1).
    """

    def __init__(self, h1: int = 128, h2: int = 256, hg: int = 512, n_global: int = 2) -> None:
        super().__init__()
        h1 = _int_option("h1", h1, 1)
        h2 = _int_option("h2", h2, 1)
        hg = _int_option("hg", hg, 1)
        n_global = _int_option("n_global", n_global, 1)
        self.options = {"h1": h1, "h2": h2, "hg": hg, "n_global": n_global}
        d = band_dims()
        for i, di in enumerate(d):
            self.register_buffer(f"band_mean_{i}", torch.zeros(di))
            self.register_buffer(f"band_whiten_{i}", torch.eye(di))
        self.level1 = nn.ModuleList(nn.Linear(d[i] + d[i + 1], h1) for i in range(3))
        self.level2 = nn.ModuleList(nn.Linear(2 * h1, h2) for _ in range(2))
        self.globals_ = nn.ModuleList([nn.Linear(2 * h2, hg)] + [nn.Linear(hg, hg) for _ in range(n_global - 1)])
        self.output = nn.Linear(hg, 2 * N_FILTER_COEFFS)
        with torch.no_grad():
            self.output.weight.mul_(0.01)
            self.output.bias.copy_(identity_filter(1)[0])

    def bands(self, patches: torch.Tensor) -> list[torch.Tensor]:
        """Whitened band inputs of ``(N, 65, 65)`` patches in [0, 1]."""
        raw = band_decomposition(patches - 0.5)
        return [(b - getattr(self, f"band_mean_{i}")) @ getattr(self, f"band_whiten_{i}").T
                for i, b in enumerate(raw)]

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        b = self.bands(patches)
        l1 = [F.relu(layer(torch.cat([b[i], b[i + 1]], dim=1))) for i, layer in enumerate(self.level1)]
        l2 = [F.relu(layer(torch.cat([l1[i], l1[i + 1]], dim=1))) for i, layer in enumerate(self.level2)]
        g = torch.cat(l2, dim=1)
        for layer in self.globals_:
            g = F.relu(layer(g))
        return self.output(g)

    def restore(self, patches: torch.Tensor) -> torch.Tensor:
        """``(N, 65, 65)`` blurred patches -> ``(N, 33, 33)`` restored centres (eq. 6)."""
        return apply_filters(patches, filter_from_output(self(patches)))

    @torch.no_grad()
    def fit_whitening(self, patches: torch.Tensor, eps: float = 1e-6) -> None:
        """Set each band's mean and PCA whitening ``diag(1 / sqrt(ev + eps * max ev)) V^T`` from
        blurred training patches ``(N, 65, 65)`` (the paper's ``dec_tfm``; N well above 208)."""
        raw = band_decomposition(patches.double() - 0.5)
        for i, b in enumerate(raw):
            mean = b.mean(dim=0)
            c = b - mean
            cov = c.T @ c / max(1, b.shape[0] - 1)
            ev, vec = torch.linalg.eigh(cov)
            ev = ev.clamp_min(0) + eps * float(ev.max())
            getattr(self, f"band_mean_{i}").copy_(mean.float())
            getattr(self, f"band_whiten_{i}").copy_((vec / ev.sqrt()).T.float())


@torch.no_grad()
def restore_image(net: ChakrabartiNet, grey: torch.Tensor, *, stride: int = 8,
                  chunk: int = 512) -> torch.Tensor:
    """Initial sharp estimate ``I_est`` (eq. 7) of a grey image ``(H, W)`` in [0, 1]: the network
    on every patch at ``stride``, recombined by :func:`patches_to_image`. Returns ``(H, W)``."""
    patches, layout = image_to_patches(grey, stride)
    centres = torch.cat([net.restore(patches[i:i + chunk]) for i in range(0, patches.shape[0], chunk)])
    return patches_to_image(centres, layout)


# --------------------------------------------------------------------------------------------
# survey eq. 8: the global kernel
# --------------------------------------------------------------------------------------------

def derivative_filters() -> np.ndarray:
    """The paper's 16 derivative filters ``(16, 11, 11)`` float64: first and second derivatives of
    a Gaussian (sigma 1, 11 taps, unit L2 norm per 1-D factor) steered to 8 orientations in
    [0, 180) degrees (Chakrabarti's ``estK.m``)."""
    t = np.arange(-5, 6, dtype=np.float64)
    g = np.exp(-t ** 2 / 2)
    d1 = t * g
    d1 /= np.linalg.norm(d1)
    s1 = g / np.linalg.norm(g)
    d2 = (t ** 2 - 1) * g
    n1, n2 = np.linalg.norm(d2), np.linalg.norm(g)
    d2, s2 = d2 / n1, g / n2
    p = (t[:, None] * t[None, :]) * np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / 2) / n1 / n2
    fy1, fx1 = np.outer(d1, s1), np.outer(s1, d1)
    fy2, fx2 = np.outer(d2, s2), np.outer(s2, d2)
    out = []
    for a in np.deg2rad(np.linspace(0, 180, 9)[:-1]):
        out.append(np.cos(a) * fy1 + np.sin(a) * fx1)
    for a in np.deg2rad(np.linspace(0, 180, 9)[:-1]):
        out.append(np.cos(a) ** 2 * fy2 + np.sin(a) ** 2 * fx2 + 2 * np.cos(a) * np.sin(a) * p)
    return np.stack(out)


def kernel_normal_equations(x: torch.Tensor, y: torch.Tensor, kernel_size: int
                            ) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The quadratic ``1/2 sum_j ||k (*) x_j - y_j||^2 = 1/2 k^T H k - b^T k + c`` over kernels
    ``k`` of ``kernel_size x kernel_size`` (true convolution orientation, flattened row-major),
    for circular convolution ``(*)`` on the canvas of ``x``, ``y`` ``(J, Hc, Wc)`` float64.

    ``H[s, t] = C(s - t)`` with ``C = F^-1(sum_j |F(x_j)|^2)`` (circular autocorrelation) and
    ``b[s] = F^-1(sum_j conj(F(x_j)) F(y_j))(s)`` (cross-correlation), ``s, t`` the kernel
    offsets from its centre. Returns ``(H (n, n), b (n,), c)`` with ``n = kernel_size**2``,
    ``c = 1/2 sum_j ||y_j||^2``.
    """
    hc, wc = x.shape[-2:]
    X = torch.fft.rfft2(x)
    Y = torch.fft.rfft2(y)
    C = torch.fft.irfft2((X.real ** 2 + X.imag ** 2).sum(0), s=(hc, wc))
    R = torch.fft.irfft2((torch.conj(X) * Y).sum(0), s=(hc, wc))
    m = kernel_size // 2
    offs = torch.arange(kernel_size, device=x.device) - m
    oy = offs[:, None].expand(kernel_size, kernel_size).reshape(-1)
    ox = offs[None, :].expand(kernel_size, kernel_size).reshape(-1)
    H = C[(oy[:, None] - oy[None, :]) % hc, (ox[:, None] - ox[None, :]) % wc]
    b = R[oy % hc, ox % wc]
    return H, b, 0.5 * float((y ** 2).sum())


def project_simplex(v: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of ``v`` ``(n,)`` onto ``{k >= 0, sum k = 1}`` (Duchi et al. 2008)."""
    u, _ = torch.sort(v, descending=True)
    css = torch.cumsum(u, 0) - 1
    idx = torch.arange(1, v.numel() + 1, dtype=v.dtype, device=v.device)
    rho = int(torch.nonzero(u - css / idx > 0)[-1])
    theta = css[rho] / (rho + 1)
    return (v - theta).clamp_min(0)


def solve_kernel_qp(H: torch.Tensor, b: torch.Tensor, *, mode: str = "simplex", lam: float = 0.0,
                    iterations: int = 1000, tol: float = 1e-8) -> torch.Tensor:
    """Minimise ``1/2 k^T H k - b^T k + lam ||k||_1`` by FISTA (Beck & Teboulle 2009).

    ``mode="simplex"``: subject to ``k >= 0, sum k = 1`` (on which ``||k||_1 = 1``: ``lam`` only
    adds a constant). ``mode="nonneg"``: subject to ``k >= 0`` (prox ``max(0, v - lam / L)``),
    then normalised to sum 1 (a zero result becomes the delta). ``H`` ``(n, n)`` symmetric positive
    semi-definite, ``b`` ``(n,)`` float64. Step ``1 / L`` with ``L`` the largest eigenvalue
    (power iteration, +1 % margin); momentum is restarted whenever it points uphill (adaptive
    restart, O'Donoghue & Candes 2015), which gives linear convergence on these ill-conditioned
    problems. Stops after ``iterations`` or when an iteration moves ``k`` by less than ``tol``
    (relative). Returns ``k`` ``(n,)``.
    """
    if mode not in ("simplex", "nonneg"):
        raise ConfigError(f"mode: must be 'simplex' or 'nonneg', got {mode!r}")
    if isinstance(lam, bool) or not isinstance(lam, numbers.Real) or lam < 0 or not math.isfinite(lam):
        raise ConfigError(f"lam: must be a finite number >= 0, got {lam!r}")
    if isinstance(iterations, bool) or not isinstance(iterations, numbers.Integral) or iterations < 1:
        raise ConfigError(f"iterations: must be an integer >= 1, got {iterations!r}")
    iterations = int(iterations)
    n = b.numel()
    v = torch.ones(n, dtype=H.dtype, device=H.device) / math.sqrt(n)
    for _ in range(50):
        w = H @ v
        norm = float(w.norm())
        if norm == 0:
            break
        v = w / norm
    L = 1.01 * float(v @ (H @ v)) if norm > 0 else 1.0
    L = max(L, 1e-300)

    def prox(z: torch.Tensor) -> torch.Tensor:
        if mode == "simplex":
            return project_simplex(z)
        return (z - lam / L).clamp_min(0)

    k = prox(torch.full((n,), 1.0 / n, dtype=H.dtype, device=H.device))
    z, t = k.clone(), 1.0
    for _ in range(iterations):
        k_new = prox(z - (H @ z - b) / L)
        step = k_new - k
        if float((z - k_new) @ step) > 0:        # adaptive restart (O'Donoghue & Candes 2015)
            t, z = 1.0, k_new
        else:
            t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
            z = k_new + ((t - 1) / t_new) * step
            t = t_new
        k = k_new
        if float(step.norm()) <= tol * max(float(k.norm()), 1e-30):
            break
    if mode == "nonneg":
        s = float(k.sum())
        if s <= 0:
            k = torch.zeros_like(k)
            k[n // 2] = 1
        else:
            k = k / s
    return k


def kernel_from_latent(blurred: np.ndarray, latent: np.ndarray, kernel_size: int, *,
                       edge_fraction: float | None = 0.02, boundary: str = "taper",
                       mode: str = "simplex", lam: float = 0.0, iterations: int = 1000) -> np.ndarray:
    """Survey eq. 8: the global kernel relating the sharp estimate ``latent`` to ``blurred``.

    Args:
        blurred, latent: ``(H, W)`` float arrays of one size.
        kernel_size: odd side of the kernel.
        edge_fraction: keep the latent's derivatives only where their summed energy is in the top
            ``edge_fraction`` of pixels (the paper: 0.02); ``None`` keeps all.
        boundary: ``"taper"``: filter responses are multiplied by a raised-cosine border taper of
            one kernel width and zero-padded by one kernel width before the circular model;
            ``"circular"``: the images are taken as periodic (exact for circular blur).
        mode, lam, iterations: see :func:`solve_kernel_qp`.

    Returns:
        float32 ``(kernel_size, kernel_size)`` kernel, non-negative, summing to 1.
    """
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, numbers.Integral) \
            or kernel_size < 1 or kernel_size % 2 == 0:
        raise ConfigError(f"kernel_size: must be an odd integer >= 1, got {kernel_size!r}")
    if boundary not in ("taper", "circular"):
        raise ConfigError(f"boundary: must be 'taper' or 'circular', got {boundary!r}")
    if edge_fraction is not None and not (isinstance(edge_fraction, numbers.Real) and 0 < edge_fraction <= 1):
        raise ConfigError(f"edge_fraction: must be None or in (0, 1], got {edge_fraction!r}")
    blurred = np.asarray(blurred, dtype=np.float64)
    latent = np.asarray(latent, dtype=np.float64)
    if blurred.ndim != 2 or blurred.shape != latent.shape:
        raise ImageError(f"blurred, latent: must be (H, W) arrays of one shape, got {blurred.shape} "
                         f"and {latent.shape}")
    filt = torch.from_numpy(derivative_filters())[:, None]              # (16, 1, 11, 11)
    b = torch.from_numpy(blurred)[None, None]
    x = torch.from_numpy(latent)[None, None]
    if boundary == "circular":
        pad = (5, 5, 5, 5)
        yb = F.conv2d(F.pad(b, pad, mode="circular"), filt)[0]
        xl = F.conv2d(F.pad(x, pad, mode="circular"), filt)[0]
    else:
        yb = F.conv2d(b, filt)[0]
        xl = F.conv2d(x, filt)[0]
    if min(yb.shape[-2:]) < kernel_size:
        raise ImageError(f"blurred: {blurred.shape[0]}x{blurred.shape[1]} is too small for a "
                         f"{kernel_size}-px kernel")
    if edge_fraction is not None:
        energy = (xl ** 2).sum(0)
        thr = torch.quantile(energy.flatten(), 1 - float(edge_fraction)) if energy.numel() <= 16_000_000 \
            else energy.flatten().kthvalue(int((1 - edge_fraction) * energy.numel())).values
        xl = xl * (energy > thr)
    if boundary == "taper":
        win = taper_window(xl.shape[-2], xl.shape[-1], kernel_size, dtype=xl.dtype)
        p = (kernel_size, kernel_size, kernel_size, kernel_size)
        xl, yb = F.pad(xl * win, p), F.pad(yb * win, p)
    Hm, bv, _ = kernel_normal_equations(xl, yb, kernel_size)
    scale = float(torch.diagonal(Hm).mean())
    if scale <= 0:
        return delta_kernel(kernel_size)
    k = solve_kernel_qp(Hm / scale, bv / scale, mode=mode, lam=lam, iterations=iterations)
    k = k.reshape(kernel_size, kernel_size).numpy()
    k = np.maximum(k, 0)
    return validate_kernel((k / k.sum()).astype(np.float32), "estimated kernel")


# --------------------------------------------------------------------------------------------
# the estimator
# --------------------------------------------------------------------------------------------

class Chakrabarti2016Estimator:
    """Blind uniform-blur estimator of Chakrabarti 2016 (``kind = "uniform"``; module docstring).

    Args:
        weights: ``"shipped"`` (registry entry ``chakrabarti2016``), a safetensors path written
            by ``train_estimators``, or ``None`` (untrained network: identity filters, so the
            "sharp estimate" is the blurred image and the kernel comes out near a delta).
        net: an existing :class:`ChakrabartiNet` to use instead.
        kernel_size: odd side of the estimated kernel (default 31).
        max_side: the kernel is estimated on the central ``max_side`` crop of the grey image
            (default 320); ``None``: whole image.
        stride: patch stride of the network pass (the paper: 1; default 8).
        edge_fraction, mode, lam: eq. 8 options (:func:`kernel_from_latent`).
        deconv_weight: weight of the final hyper-Laplacian deconvolution.
        options: network options for ``weights=None`` (:data:`DEFAULT_OPTIONS`).
    """

    kind = "uniform"
    name = MODEL_NAME

    def __init__(self, weights: "str | os.PathLike | None" = "shipped", *, net: ChakrabartiNet | None = None,
                 kernel_size: int = 31, max_side: int | None = 320, stride: int = 8,
                 edge_fraction: float | None = 0.02, mode: str = "simplex", lam: float = 0.0,
                 deconv_weight: float | None = None, options: dict | None = None,
                 device: str = "cpu", seed: int = 0) -> None:
        from ..deconv import HYPER_LAPLACIAN_WEIGHT

        self.kernel_size, self.max_side, self.deconv_weight = _check_common(
            kernel_size, max_side, HYPER_LAPLACIAN_WEIGHT if deconv_weight is None else deconv_weight)
        if isinstance(stride, bool) or not isinstance(stride, numbers.Integral) or not 1 <= stride <= 16:
            raise ConfigError(f"stride: must be an integer in 1..16, got {stride!r}")
        if mode not in ("simplex", "nonneg"):
            raise ConfigError(f"mode: must be 'simplex' or 'nonneg', got {mode!r}")
        if edge_fraction is not None and not (isinstance(edge_fraction, numbers.Real) and 0 < edge_fraction <= 1):
            raise ConfigError(f"edge_fraction: must be None or in (0, 1], got {edge_fraction!r}")
        self.stride, self.edge_fraction, self.mode, self.lam = int(stride), edge_fraction, mode, lam
        net = resolve_network(MODEL_NAME, ChakrabartiNet, DEFAULT_OPTIONS, net=net, weights=weights,
                              options=options, seed=seed)
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()

    def sharp_estimate(self, grey: np.ndarray) -> np.ndarray:
        """The network's initial estimate (eq. 7) of a grey ``(H, W)`` float32 image."""
        self.net.eval()
        device = next(self.net.parameters()).device     # follows EstimatorModule(...).to(device)
        x = torch.from_numpy(np.ascontiguousarray(grey, dtype=np.float32)).to(device)
        return restore_image(self.net, x, stride=self.stride).cpu().numpy()

    def estimate_kernel(self, image: np.ndarray) -> np.ndarray:
        """``image`` (``H x W[x C]`` float in [0, 1]) -> kernel ``(kernel_size, kernel_size)``
        float32, non-negative, sum 1, true convolution orientation."""
        img = check_image(image, min_side=MIN_SIDE)
        grey = centre_crop(to_grey(img), self.max_side)
        if min(grey.shape) < 2 * self.kernel_size:
            raise ImageError(f"image: {grey.shape[0]}x{grey.shape[1]} is too small for a "
                             f"{self.kernel_size}-px kernel (need at least {2 * self.kernel_size} per side)")
        latent = self.sharp_estimate(grey)
        k = kernel_from_latent(grey, latent, self.kernel_size, edge_fraction=self.edge_fraction,
                               mode=self.mode, lam=self.lam)
        return validate_kernel(center_kernel(k), "estimated kernel")

    def deblur(self, image: np.ndarray) -> np.ndarray:
        """Estimate the kernel, then deconvolve every channel (hyper-Laplacian); same shape as
        ``image``, float32, clipped to [0, 1]."""
        img = check_image(image, min_side=MIN_SIDE)
        k = self.estimate_kernel(img)
        out = deconvolve_image(img, k, self.deconv_weight)
        return out[:, :, 0] if np.asarray(image).ndim == 2 else out
