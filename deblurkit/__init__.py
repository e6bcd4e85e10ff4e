"""deblurkit: blind image deblurring after Sahu, Lenka, Sa, "Deep Learning based Blind Deblurring:
A Survey" (arXiv 1907.10128).

Sub-packages, one per concern: ``io`` (images and kernels on disk), ``blur`` (blur synthesis, survey
eq. 1 and 13-16), ``deconv`` (non-blind deconvolution, eq. 4), ``metrics`` (PSNR/SSIM, eq. 30-32, and
the Levin / Köhler protocols), ``data`` (datasets), ``models``, ``estimation``, ``train``, ``infer``.

Importing ``deblurkit`` is cheap: sub-packages are imported explicitly by the caller.
"""

__version__ = "0.1.0"

from .errors import DeblurkitError  # noqa: E402,F401


def __getattr__(name: str):
    """Lazy top-level API: ``deblurkit.deblur`` imports torch only when first used."""
    if name == "deblur":
        from .infer.api import deblur

        return deblur
    raise AttributeError(f"module 'deblurkit' has no attribute {name!r}")
