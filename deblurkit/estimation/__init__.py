"""deblurkit.estimation: methods that estimate the blur, then deconvolve (survey §II-A).

One interface (:mod:`deblurkit.estimation.base`): uniform methods implement
``estimate_kernel(image) -> kernel`` and non-uniform ones ``estimate_motion_field(image) ->
(u, v)``; both implement ``deblur(image) -> image``.

The registry :data:`ESTIMATORS` is a plain dict ``name -> factory`` filled below by explicit
imports and :func:`register` calls, one block per method file (nothing is discovered by scanning
folders). A factory takes keyword options and returns an estimator; estimators with learned
weights load them inside the factory through :mod:`deblurkit.models.weights` (safetensors,
sha256 checked) from their ``deblurkit/weights/registry.json`` entry and raise
:class:`~deblurkit.errors.WeightsError` when the weights are not shipped.

    >>> from deblurkit import estimation
    >>> est = estimation.create_estimator("classical", kernel_size=25)
    >>> kernel = est.estimate_kernel(blurred)          # (25, 25) float32, sums to 1
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError
from .base import EstimatorModule, KernelEstimator, MotionFieldEstimator
from .classical import L0Blind

__all__ = ["ESTIMATORS", "register", "create_estimator", "list_estimators", "is_estimator",
           "EstimatorModule", "KernelEstimator", "MotionFieldEstimator", "L0Blind"]

#: name -> factory(**options) returning an estimator (``kind`` "uniform" or "nonuniform").
ESTIMATORS: dict[str, Callable[..., Any]] = {}


def register(name: str, factory: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``factory`` to :data:`ESTIMATORS` under ``name``; a name registered twice raises
    :class:`ConfigError`. Returns ``factory``."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"estimator name: must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise ConfigError(f"estimator {name!r}: factory must be callable, got "
                          f"{type(factory).__name__}")
    if name in ESTIMATORS:
        raise ConfigError(f"estimator name {name!r}: already registered")
    ESTIMATORS[name] = factory
    return factory


def list_estimators() -> list[str]:
    """Registered estimator names, sorted."""
    return sorted(ESTIMATORS)


def is_estimator(name: object) -> bool:
    """Whether ``name`` is a registered estimator name."""
    return isinstance(name, str) and name in ESTIMATORS


def create_estimator(name: str, **options: Any) -> Any:
    """Build the estimator registered as ``name`` with keyword ``options``.

    Raises:
        ConfigError: an unknown name (the message lists the choices) or an option the factory
            does not take.
        WeightsError: a learned estimator whose weights are missing or corrupt.
    """
    if not is_estimator(name):
        raise ConfigError(f"estimator {name!r}: unknown; choose one of: "
                          f"{', '.join(list_estimators())}")
    factory = ESTIMATORS[name]
    try:
        inspect.signature(factory).bind(**options)
    except TypeError as exc:
        raise ConfigError(f"estimator {name!r}: {exc}") from None
    return factory(**options)


# --- classical: Pan et al. 2014 / Xu et al. 2013 L0 blind deconvolution ----------------------
register("classical", L0Blind)

# --- schuler2014: Schuler et al., Learning to Deblur (survey eq. 2-4) -------------------------
from .schuler2014 import Schuler2014Estimator  # noqa: E402

register("schuler2014", Schuler2014Estimator)

# --- chakrabarti2016: Chakrabarti, A Neural Approach to Blind Motion Deblurring (eq. 5-8) -----
from .chakrabarti2016 import Chakrabarti2016Estimator  # noqa: E402

register("chakrabarti2016", Chakrabarti2016Estimator)

# --- sun2015: Sun, Cao, Xu, Ponce, CVPR 2015 (survey eq. 9-12) --------------------------------
from . import sun2015 as _sun2015  # noqa: E402

register("sun2015", _sun2015.load)

# --- gong2017: Gong et al., CVPR 2017 (survey eq. 13-17) ---------------------------------------
from . import gong2017 as _gong2017  # noqa: E402

register("gong2017", _gong2017.load)
