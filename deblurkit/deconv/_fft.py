"""Real 2-D FFTs for the deconvolution solvers: ``torch.fft`` on GPUs and wherever autograd needs
the graph, ``scipy.fft`` (pocketfft) on CPU tensors otherwise.

Why two back-ends: on the CPU, torch 2.13's ``irfft2`` copies its input before transforming
(the transform overwrites it) and its batched transforms are slower than scipy's; measured on the
2-core x86 CPU at 1280 x 720 RGB sizes, scipy's ``irfft2(..., overwrite_x=True)`` costs about half
of torch's and ``rfft2`` about the same or less. FFTs are most of the work of Richardson-Lucy and
of the hyper-Laplacian solver, so the CPU path goes through scipy, with ``workers`` set to torch's
thread count. Results are identical in layout and dtype (float32 -> complex64, float64 ->
complex128) and equal to rounding; tensors share memory with the numpy arrays (no copies).
"""

from __future__ import annotations

import scipy.fft
import torch


def _scipy_ok(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and not (torch.is_grad_enabled() and x.requires_grad)


def rfft2(x: torch.Tensor, s: tuple[int, int] | None = None) -> torch.Tensor:
    """``torch.fft.rfft2(x, s=s)`` over the last two dimensions of a real tensor."""
    if not _scipy_ok(x):
        return torch.fft.rfft2(x, s=s)
    out = scipy.fft.rfft2(x.detach().numpy(), s=s, workers=torch.get_num_threads())
    return torch.from_numpy(out)


def irfft2(spectrum: torch.Tensor, s: tuple[int, int], *, overwrite: bool = False) -> torch.Tensor:
    """``torch.fft.irfft2(spectrum, s=s)``. ``overwrite=True`` lets the CPU path destroy
    ``spectrum`` (pass it only for a temporary the caller no longer needs)."""
    if not _scipy_ok(spectrum):
        return torch.fft.irfft2(spectrum, s=s)
    array = spectrum.detach().resolve_conj().numpy()
    out = scipy.fft.irfft2(array, s=s, workers=torch.get_num_threads(), overwrite_x=overwrite)
    return torch.from_numpy(out)
