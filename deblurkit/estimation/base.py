"""The one interface of the kernel-estimation methods (survey §II-A).

Each method estimates something about the blur, then deconvolves (once the kernel is known the
problem is non-blind, survey §I):

- uniform methods (``kind = "uniform"``) implement ``estimate_kernel(image) -> kernel``: a true
  convolution kernel (``scipy.signal.convolve`` orientation), float32 ``(k, k)``, non-negative,
  summing to 1 (checked with :func:`deblurkit.blur.kernels.validate_kernel`);
- non-uniform methods (``kind = "nonuniform"``) implement ``estimate_motion_field(image) -> (u, v)``:
  float32 ``(H, W)`` arrays in pixels, ``u`` to the right, ``v`` down (docs/CONVENTIONS.md);
- both implement ``deblur(image) -> image``: the estimate followed by non-blind deconvolution.

``image`` is a float32 numpy ``H x W x C`` (C = 1 or 3) or ``H x W`` array in [0, 1]; ``deblur``
returns the same shape, float32, clipped to [0, 1] as its documented last step.

:class:`EstimatorModule` wraps an estimator as an ``nn.Module`` mapping ``(B, C, H, W)`` to
``(B, C, H, W)`` so that ``deblurkit deblur --model NAME`` runs it like an end-to-end model.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn


@runtime_checkable
class KernelEstimator(Protocol):
    kind: str  # "uniform"

    def estimate_kernel(self, image: np.ndarray) -> np.ndarray: ...

    def deblur(self, image: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class MotionFieldEstimator(Protocol):
    kind: str  # "nonuniform"

    def estimate_motion_field(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def deblur(self, image: np.ndarray) -> np.ndarray: ...


class EstimatorModule(nn.Module):
    """Thin ``nn.Module`` wrapper: ``forward(x (B, C, H, W)) -> (B, C, H, W)`` calls
    ``estimator.deblur`` on each image of the batch (no gradients; not exportable to ONNX).
    Learned parts of the estimator, if any, are registered as sub-modules so ``.to(device)`` and
    ``.eval()`` reach them."""

    def __init__(self, estimator):
        super().__init__()
        self.estimator = estimator
        for name, value in vars(estimator).items():
            if isinstance(value, nn.Module):
                self.add_module(name, value)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for img in x:
            arr = img.permute(1, 2, 0).detach().cpu().numpy().astype(np.float32)
            res = self.estimator.deblur(np.clip(arr, 0.0, 1.0))
            res = res if res.ndim == 3 else res[:, :, None]
            outs.append(torch.from_numpy(np.ascontiguousarray(res)).permute(2, 0, 1))
        return torch.stack(outs).to(x.device, x.dtype)
