"""x8 self-ensemble: the 8 transforms are the dihedral group, invert exactly, and average right."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from deblurkit.errors import ConfigError
from deblurkit.infer.ensemble import N_TRANSFORMS, inverse_transform, self_ensemble, transform


def test_transforms_invert_exactly():
    x = torch.rand(2, 3, 5, 7)
    for t in range(N_TRANSFORMS):
        y = transform(x, t)
        assert y.shape == ((2, 3, 7, 5) if t & 4 else (2, 3, 5, 7))
        assert torch.equal(inverse_transform(y, t), x)


def test_transforms_are_the_dihedral_group():
    # independent reference: numpy's rot90 and fliplr generate the 8 symmetries of the square
    a = np.arange(16.0).reshape(4, 4)
    expected = {np.rot90(a, k).tobytes() for k in range(4)} | \
               {np.rot90(np.fliplr(a), k).tobytes() for k in range(4)}
    got = {transform(torch.from_numpy(a), t).numpy().copy().tobytes() for t in range(N_TRANSFORMS)}
    assert got == expected and len(got) == 8


def test_pointwise_fn_is_unchanged():
    x = torch.rand(1, 3, 9, 14)
    fn = lambda t: torch.tanh(2 * t) * t  # noqa: E731
    assert torch.allclose(self_ensemble(fn, x), fn(x), atol=1e-7)


def test_shift_averages_to_four_neighbour_mean():
    # fn = shift right by one (circular). Conjugated by the 8 symmetries it becomes a shift in each
    # of the 4 directions twice, so the ensemble is the 4-neighbour mean (wrap boundary).
    x = torch.rand(1, 1, 8, 11, dtype=torch.float64)
    out = self_ensemble(lambda t: torch.roll(t, 1, dims=-1), x)
    cross = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]]) / 4.0
    ref = ndimage.correlate(x[0, 0].numpy(), cross, mode="wrap")
    assert out.dtype == torch.float64
    assert np.allclose(out[0, 0].numpy(), ref, atol=1e-12)


def test_bad_index_and_shape_refused():
    with pytest.raises(ConfigError, match="transform index"):
        transform(torch.zeros(1, 1, 2, 2), 8)
    with pytest.raises(ConfigError, match="x: expected"):
        self_ensemble(lambda t: t, torch.zeros(3, 4, 4))
