"""Non-blind deconvolution: recover the sharp image once the blur is known (survey §I, Sahu, Lenka,
Sa, arXiv 1907.10128).

Uniform blur ``B = K * I + N`` (survey eq. 1), batched torch ``(B, C, H, W)`` float32/float64 on
CPU or CUDA (numpy ``(H, W[, C])`` in gives numpy out), kernels ``(kh, kw)`` shared or
``(B, kh, kw)`` one per image:

* :func:`wiener` -- Wiener / Tikhonov in the Fourier domain (survey eq. 4);
* :func:`l2_gradient` -- the same with a quadratic gradient prior;
* :func:`richardson_lucy` -- Richardson-Lucy; ``boundary="skimage"`` reproduces
  ``skimage.restoration.richardson_lucy(..., clip=False)``;
* :func:`hyper_laplacian` -- Krishnan & Fergus 2009, hyper-Laplacian gradient prior.

Non-uniform blur: :func:`deconv_motion_field` (per-pixel motion field, Gong et al. 2017, survey
eq. 13-16) and :func:`deconv_linear` (any linear blur operator), by conjugate gradients.

Borders: the FFT solvers pad and taper the image (``boundary="taper"``, see
:mod:`deblurkit.deconv._boundary`) so that no ringing starts at the image edges. No solver clips
its result: deconvolution overshoots ``[0, 1]`` near edges and in noise, and clipping is left to
whoever stores the image (the ``deblurkit deconv`` command clips as its explicit last step).
"""

from ._boundary import BOUNDARIES, edgetaper
from .hyper_laplacian import HYPER_LAPLACIAN_WEIGHT, hyper_laplacian, shrink, shrink_threshold
from .nonuniform import deconv_linear, deconv_motion_field
from .richardson_lucy import RL_BOUNDARIES, richardson_lucy
from .wiener import L2_GRADIENT_WEIGHT, WIENER_WEIGHT, l2_gradient, wiener

__all__ = [
    "BOUNDARIES",
    "RL_BOUNDARIES",
    "WIENER_WEIGHT",
    "L2_GRADIENT_WEIGHT",
    "HYPER_LAPLACIAN_WEIGHT",
    "wiener",
    "l2_gradient",
    "richardson_lucy",
    "hyper_laplacian",
    "shrink",
    "shrink_threshold",
    "edgetaper",
    "deconv_linear",
    "deconv_motion_field",
]
