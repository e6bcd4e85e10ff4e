"""The estimator registry: explicit registration, lookup, options and errors."""

from __future__ import annotations

import numpy as np
import pytest

from deblurkit import estimation
from deblurkit.errors import ConfigError, WeightsError
from deblurkit.estimation import (
    ESTIMATORS,
    L0Blind,
    create_estimator,
    is_estimator,
    list_estimators,
    register,
)
from deblurkit.estimation.base import KernelEstimator, MotionFieldEstimator


@pytest.fixture
def registry(monkeypatch):
    """A scratch copy of the registry, restored after the test."""
    monkeypatch.setattr(estimation, "ESTIMATORS", dict(ESTIMATORS))
    return estimation.ESTIMATORS


def test_classical_is_registered():
    assert "classical" in list_estimators()
    assert list_estimators() == sorted(ESTIMATORS)
    assert is_estimator("classical") and not is_estimator("nafnet") and not is_estimator(3)
    est = create_estimator("classical", kernel_size=21, iterations=2)
    assert isinstance(est, L0Blind) and est.kernel_size == 21 and est.iterations == 2


def test_unknown_name_and_bad_options_are_refused():
    with pytest.raises(ConfigError, match="estimator 'nope': unknown; choose one of: .*classical"):
        create_estimator("nope")
    with pytest.raises(ConfigError, match="estimator 'classical': .*'kernel_sise'"):
        create_estimator("classical", kernel_sise=21)
    with pytest.raises(ConfigError, match="kernel_size: must be odd, got 20"):
        create_estimator("classical", kernel_size=20)


def test_register_refuses_duplicates_and_non_callables(registry):
    made = []

    def factory(scale: float = 1.0):
        made.append(scale)
        return L0Blind()

    assert register("scratch", factory) is factory
    assert "scratch" in estimation.list_estimators()
    estimation.create_estimator("scratch", scale=2.0)
    assert made == [2.0]
    with pytest.raises(ConfigError, match="estimator name 'scratch': already registered"):
        register("scratch", factory)
    with pytest.raises(ConfigError, match="estimator name 'classical': already registered"):
        register("classical", L0Blind)
    with pytest.raises(ConfigError, match="factory must be callable, got int"):
        register("other", 3)
    with pytest.raises(ConfigError, match="estimator name: must be a non-empty string"):
        register("", factory)


def test_every_registered_estimator_follows_the_interface():
    """Each estimator builds (or reports missing weights as a WeightsError) and implements the
    interface of its kind."""
    for name in list_estimators():
        try:
            est = create_estimator(name)
        except WeightsError:
            continue                        # learned method whose weights are not shipped
        assert est.kind in ("uniform", "nonuniform"), name
        protocol = KernelEstimator if est.kind == "uniform" else MotionFieldEstimator
        assert isinstance(est, protocol), name


def test_registered_estimator_runs_end_to_end(camera):
    est = create_estimator("classical", kernel_size=9, iterations=1)
    image = np.ascontiguousarray(camera[100:164, 100:164])
    kernel = est.estimate_kernel(image)
    assert kernel.shape == (9, 9) and abs(float(kernel.sum()) - 1) < 1e-5
    assert est.deblur(image).shape == image.shape
