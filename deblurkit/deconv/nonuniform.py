"""Non-blind deconvolution of non-uniform (spatially varying) blur by conjugate gradients.

A spatially varying blur such as the per-pixel motion field of Gong et al. 2017 (survey eq. 13-16,
Sahu, Lenka, Sa, arXiv 1907.10128; :func:`deblurkit.blur.nonuniform.blur_motion_field`) is linear
in the image but not a convolution, so the Fourier-domain solutions of survey eq. 4 do not apply.
The same quadratic objective with a gradient prior::

    min_x  ||A x - b||^2 + weight (||dx x||^2 + ||dy x||^2)

is solved instead by conjugate gradients on its normal equations::

    (A^T A + weight D^T D) x = A^T b

with ``D`` the forward differences with a zero-flux (Neumann) border. ``A^T`` is an explicit
adjoint when given (:func:`deblurkit.blur.nonuniform.blur_motion_field_adjoint`), otherwise the
vector-Jacobian product of ``A`` from torch autograd (exact, since ``A`` is linear). Each
``(sample, channel)`` plane is an independent system with its own CG step sizes.
:func:`deconv_motion_field` builds ``A`` and ``A^T`` once
(:class:`deblurkit.blur.nonuniform.MotionFieldOperator`: a sparse matrix for fields with few
distinct motion vectors), since CG applies each of them once per iteration.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..errors import ConfigError, ImageError
from ._boundary import as_image, count, positive
from .wiener import L2_GRADIENT_WEIGHT

__all__ = ["deconv_linear", "deconv_motion_field"]

Operator = Callable[[torch.Tensor], torch.Tensor]


def _dx(x: torch.Tensor) -> torch.Tensor:
    """Forward difference along width, 0 in the last column (Neumann border)."""
    return torch.nn.functional.pad(x[..., 1:] - x[..., :-1], (0, 1))


def _dy(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))


def _dx_t(g: torch.Tensor) -> torch.Tensor:
    """Adjoint of :func:`_dx`."""
    g = g[..., :-1]
    return torch.nn.functional.pad(g, (1, 0)) - torch.nn.functional.pad(g, (0, 1))


def _dy_t(g: torch.Tensor) -> torch.Tensor:
    g = g[..., :-1, :]
    return torch.nn.functional.pad(g, (0, 0, 1, 0)) - torch.nn.functional.pad(g, (0, 0, 0, 1))


def _autograd_adjoint(forward: Operator, like: torch.Tensor) -> Operator:
    """``A^T`` of a linear ``forward`` as its vector-Jacobian product (at zero; ``A`` is linear)."""

    def adjoint(y: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            z = torch.zeros_like(like, requires_grad=True)
            out = forward(z)
            (g,) = torch.autograd.grad(out, z, grad_outputs=y)
        return g

    return adjoint


def _plane_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Inner product per ``(sample, channel)`` plane, shape ``(B, C, 1, 1)``, in float64."""
    return (a.double() * b.double()).sum(dim=(-2, -1), keepdim=True)


@torch.no_grad()
def deconv_linear(blurred, forward: Operator, *, adjoint: Operator | None = None,
                  weight: float = L2_GRADIENT_WEIGHT, iterations: int = 100,
                  tol: float = 1e-4, x0=None):
    """Deconvolve ``blurred = A(x)`` for any linear blur operator ``A`` by conjugate gradients on
    ``(A^T A + weight D^T D) x = A^T b`` (see the module docstring).

    Args:
        blurred: torch ``(B, C, H, W)`` float32/float64, any device (numpy ``(H, W[, C])`` is
            accepted and returned as numpy).
        forward: ``A``, maps a ``(B, C, H, W)`` tensor to one of the same shape, linearly.
        adjoint: ``A^T``; default: autograd's vector-Jacobian product of ``forward``.
        weight: gradient-prior weight ``> 0``.
        iterations: maximum CG iterations ``>= 1``.
        tol: stop when every plane's residual norm is at most ``tol`` times its right-hand side's
            norm (``> 0``).
        x0: starting point, shape of ``blurred``; default ``blurred``.

    Returns:
        the latent image, shape, dtype and device of ``blurred``. Not clipped.

    Raises:
        ImageError, ConfigError: one line naming the bad argument and its value.
    """
    b, restore = as_image(blurred)
    weight = positive(weight, "weight")
    iterations = count(iterations, "iterations")
    tol = positive(tol, "tol")
    if not callable(forward):
        raise ConfigError(f"forward: must be a callable linear operator, got "
                          f"{type(forward).__name__}")
    if adjoint is None:
        adjoint = _autograd_adjoint(forward, b)
    elif not callable(adjoint):
        raise ConfigError(f"adjoint: must be a callable or None, got {type(adjoint).__name__}")
    if x0 is None:
        x = b.clone()
    else:
        x = as_image(x0, "x0")[0].to(device=b.device, dtype=b.dtype)
        if x.shape != b.shape:
            raise ConfigError(f"x0: shape {tuple(x.shape)} differs from blurred "
                              f"{tuple(b.shape)}")
        x = x.clone()

    def normal(p: torch.Tensor) -> torch.Tensor:
        return adjoint(forward(p)) + weight * (_dx_t(_dx(p)) + _dy_t(_dy(p)))

    rhs = adjoint(b)
    r = rhs - normal(x)
    p = r.clone()
    rs = _plane_dot(r, r)
    goal = (tol ** 2) * _plane_dot(rhs, rhs)
    for _ in range(iterations):
        if bool((rs <= goal).all()):
            break
        q = normal(p)
        pq = _plane_dot(p, q)
        step = torch.where(pq > 0, rs / pq.clamp_min(1e-300), torch.zeros_like(pq))
        x = x + step.to(x.dtype) * p
        r = r - step.to(x.dtype) * q
        rs_new = _plane_dot(r, r)
        ratio = torch.where(rs > 0, rs_new / rs.clamp_min(1e-300), torch.zeros_like(rs))
        p = r + ratio.to(x.dtype) * p
        rs = rs_new
    return restore(x)


def deconv_motion_field(blurred, u, v, *, weight: float = L2_GRADIENT_WEIGHT,
                        iterations: int = 100, tol: float = 1e-4, samples: int | None = None,
                        boundary: str = "replicate"):
    """Non-uniform deconvolution given a per-pixel motion field (Gong et al. 2017, survey eq.
    13-16): :func:`deconv_linear` with ``A = blur_motion_field(., u, v, samples, boundary)``
    and its explicit adjoint, both applied through
    :class:`deblurkit.blur.nonuniform.MotionFieldOperator` (a sparse matrix built once when the
    field takes few distinct vectors, e.g. the label fields of Sun et al. 2015 and Gong et al.
    2017; otherwise the gather / splat functions themselves).

    Args:
        blurred: torch ``(B, C, H, W)`` float32/float64 (any device), values nominally in
            ``[0, 1]``.
        u, v: motion field in pixels, torch ``(B, H, W)`` (or ``(1, H, W)`` / ``(H, W)``
            shared), ``u`` along x (right), ``v`` along y (down); the blur of a pixel is the
            segment from ``p - (u, v)/2`` to ``p + (u, v)/2``.
        weight, iterations, tol: as :func:`deconv_linear`.
        samples, boundary: as :func:`deblurkit.blur.nonuniform.blur_motion_field`.

    Returns:
        the latent image ``(B, C, H, W)``, dtype and device of ``blurred``. Not clipped.

    Raises:
        ImageError, KernelError (bad field), ConfigError: one line naming the argument.
    """
    from ..blur import nonuniform

    if not isinstance(blurred, torch.Tensor):
        raise ImageError("blurred: deconv_motion_field takes a torch tensor (B, C, H, W); "
                          f"got {type(blurred).__name__}")
    x, _ = as_image(blurred)
    # cheap checks first (deconv_linear repeats them), then the field, samples and boundary,
    # checked while the operator is built once for all 2 x iterations applications
    positive(weight, "weight")
    count(iterations, "iterations")
    positive(tol, "tol")
    operator = nonuniform.MotionFieldOperator(u, v, x, samples=samples, boundary=boundary)
    return deconv_linear(x, operator.forward, adjoint=operator.adjoint, weight=weight,
                         iterations=iterations, tol=tol)
