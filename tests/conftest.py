"""Shared fixtures. Tests use constructed data or scikit-image's bundled images, never ../shared."""

from __future__ import annotations

import numpy as np
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut, 512x512x3 float32 in [0, 1]."""
    from skimage import data

    return (data.astronaut().astype(np.float32) / 255.0)


@pytest.fixture(scope="session")
def camera() -> np.ndarray:
    """scikit-image's cameraman, 512x512 float32 in [0, 1]."""
    from skimage import data

    return (data.camera().astype(np.float32) / 255.0)
