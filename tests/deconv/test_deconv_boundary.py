"""Transfer functions, edgetaper, canvas extension, border ringing and argument checks shared by the
FFT deconvolution solvers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from deblurkit.blur.convolve import blur
from deblurkit.blur.kernels import camera_shake_kernel
from deblurkit.deconv import hyper_laplacian, l2_gradient, richardson_lucy, wiener
from deblurkit.deconv._boundary import (
    edgetaper,
    extend,
    gradient_otfs,
    grad_x,
    grad_x_t,
    grad_y,
    grad_y_t,
    otf,
)
from deblurkit.errors import ConfigError, ImageError, KernelError


def _psnr(err: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean(err ** 2)))


@pytest.mark.parametrize("shape", [(5, 5), (4, 6), (7, 2), (1, 1)])
def test_otf_is_circular_convolution_like_ndimage_wrap(rng, shape):
    image = rng.random((23, 30))
    kernel = rng.random(shape)
    kernel /= kernel.sum()
    x = torch.from_numpy(image)[None, None]
    k_otf = otf(torch.from_numpy(kernel)[None], (23, 30))
    ours = torch.fft.irfft2(torch.fft.rfft2(x) * k_otf, s=(23, 30))[0, 0].numpy()
    # ndimage.convolve puts the centre at (kh // 2, kw // 2), like docs/CONVENTIONS.md
    reference = ndi.convolve(image, kernel, mode="wrap")
    np.testing.assert_allclose(ours, reference, atol=1e-12)


def test_gradient_otfs_match_spatial_differences(rng):
    x = torch.from_numpy(rng.random((2, 3, 12, 17)))
    dx, dy = gradient_otfs((12, 17), torch.float64, x.device)
    spectrum = torch.fft.rfft2(x)
    np.testing.assert_allclose(torch.fft.irfft2(spectrum * dx, s=(12, 17)), grad_x(x), atol=1e-12)
    np.testing.assert_allclose(torch.fft.irfft2(spectrum * dy, s=(12, 17)), grad_y(x), atol=1e-12)
    # the transposes are adjoints: <Dx, g> == <x, D^T g>
    g = torch.from_numpy(rng.random((2, 3, 12, 17)))
    assert torch.allclose((grad_x(x) * g).sum(), (x * grad_x_t(g)).sum())
    assert torch.allclose((grad_y(x) * g).sum(), (x * grad_y_t(g)).sum())


def test_edgetaper_blends_towards_the_circular_blur_at_the_edges(rng):
    image = torch.from_numpy(rng.random((1, 2, 40, 50)))
    kernel = torch.from_numpy(camera_shake_kernel(9, 3).astype(np.float64))[None]
    out = edgetaper(image, kernel)
    circ = blur(image, kernel[0], boundary="circular")
    # on the canvas corner the weight is exactly 0: the pixel is the circular blur
    assert torch.allclose(out[..., 0, 0], circ[..., 0, 0], atol=1e-12)
    # more than a kernel size from every edge, the image is untouched
    assert torch.allclose(out[..., 9:-9, 9:-9], image[..., 9:-9, 9:-9], atol=1e-12)
    # elsewhere a convex combination of the two
    lo = torch.minimum(image, circ) - 1e-12
    hi = torch.maximum(image, circ) + 1e-12
    assert bool(((out >= lo) & (out <= hi)).all())
    # and it does change the border rows
    assert float((out[..., 1, :] - image[..., 1, :]).abs().max()) > 1e-3


@pytest.mark.parametrize("boundary", ["taper", "reflect"])
def test_extension_keeps_the_image_and_uses_fast_fft_sizes(rng, boundary):
    image = torch.from_numpy(rng.random((2, 3, 37, 41)))
    kernel = torch.from_numpy(camera_shake_kernel(7, 1).astype(np.float64))
    ext = extend(image, kernel[None], boundary)
    hp, wp = ext.shape
    assert hp >= 37 + 14 and wp >= 41 + 14
    for n in (hp, wp):
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        assert m == 1, f"canvas side {n} is not 5-smooth"
    # the taper only touches the padding: the original region comes back unchanged
    assert torch.allclose(ext.crop(ext.image), image, atol=1e-12)
    assert ext.otf.shape == (1, 1, hp, wp // 2 + 1)


def test_circular_extension_is_the_image_itself(rng):
    image = torch.from_numpy(rng.random((1, 1, 16, 16)))
    ext = extend(image, torch.ones(1, 3, 3, dtype=torch.float64) / 9, "circular")
    assert ext.image is image and ext.shape == (16, 16)


# --------------------------------------------------------------------------------------------
# border ringing (issue "Foundation", item 4)
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def border_case(astronaut):
    """A natural grey image blurred with reflect boundary (so the borders are not periodic) and a
    little noise; returns (sharp, blurred, kernel, frame mask)."""
    sharp = astronaut[:192, 160:352].mean(axis=2).astype(np.float64)
    kernel = camera_shake_kernel(21, 0).astype(np.float64)
    kernel /= kernel.sum()
    blurred = blur(sharp, kernel, boundary="reflect")
    blurred = blurred + 0.005 * np.random.default_rng(0).standard_normal(blurred.shape)
    frame = np.ones(sharp.shape, bool)
    frame[15:-15, 15:-15] = False
    return sharp, blurred, kernel, frame


@pytest.mark.parametrize("method", ["wiener", "l2_gradient", "hyper_laplacian", "richardson_lucy"])
def test_no_ringing_at_the_borders(border_case, method):
    sharp, blurred, kernel, frame = border_case
    fn = {"wiener": wiener, "l2_gradient": l2_gradient, "hyper_laplacian": hyper_laplacian,
          "richardson_lucy": richardson_lucy}[method]
    data = np.clip(blurred, 0, 1) if method == "richardson_lucy" else blurred
    err = fn(data, kernel) - sharp
    border, interior = _psnr(err[frame]), _psnr(err[~frame])
    naive = wiener(blurred, kernel, boundary="circular") - sharp
    assert border >= interior - 4.0, (border, interior)
    assert border >= _psnr(naive[frame]) + 8.0, (border, _psnr(naive[frame]))
    # and the deconvolution helps on the border as well as inside
    assert border > _psnr((blurred - sharp)[frame]) + 1.0


# --------------------------------------------------------------------------------------------
# bad inputs
# --------------------------------------------------------------------------------------------

GOOD_KERNEL = np.full((3, 3), 1 / 9, np.float32)


@pytest.mark.parametrize("fn", [wiener, l2_gradient, richardson_lucy, hyper_laplacian])
@pytest.mark.parametrize("kernel, message", [
    (np.array([[0.5, np.nan], [0.25, 0.25]], np.float32), "non-finite"),
    (np.array([[0.6, -0.1], [0.25, 0.25]], np.float32), "negative"),
    (np.zeros((0, 3), np.float32), "empty"),
    (np.full((3, 3), 0.2, np.float32), "sums to"),
    (np.ones((1, 3, 3), np.float32) / 9, "2-D"),
    (np.ones((41, 3), np.float32) / 123, "larger than"),
    (torch.ones(3, 3, 3) / 9, "kernels for a batch of 2"),
    ([[1.0]], "numpy array"),
])
def test_bad_kernels_are_refused(fn, kernel, message):
    image = torch.rand(2, 1, 32, 32)
    with pytest.raises(KernelError, match=message) as info:
        fn(image, kernel)
    assert "kernel" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("fn", [wiener, l2_gradient, richardson_lucy, hyper_laplacian])
@pytest.mark.parametrize("image, message", [
    (torch.rand(3, 16, 16), r"\(B, C, H, W\)"),
    (torch.randint(0, 255, (1, 1, 16, 16)), "float32 or float64"),
    (torch.full((1, 1, 16, 16), float("nan")), "non-finite"),
    (np.zeros((16, 16, 3), np.uint8), "float32 or float64"),
    (np.zeros((2, 16, 16, 3), np.float32), r"\(H, W\) or \(H, W, C\)"),
    ([[0.5]], "torch tensor"),
])
def test_bad_images_are_refused(fn, image, message):
    with pytest.raises(ImageError, match=message) as info:
        fn(image, GOOD_KERNEL)
    assert str(info.value).startswith("blurred: ")


@pytest.mark.parametrize("fn", [wiener, l2_gradient, hyper_laplacian])
@pytest.mark.parametrize("weight", [0.0, -1e-3, float("nan"), float("inf"), "1e-2", True])
def test_bad_weights_are_refused(fn, weight):
    with pytest.raises(ConfigError, match="weight"):
        fn(torch.rand(1, 1, 16, 16), GOOD_KERNEL, weight=weight)


@pytest.mark.parametrize("fn", [wiener, l2_gradient, richardson_lucy, hyper_laplacian])
def test_unknown_boundary_is_refused(fn):
    with pytest.raises(ConfigError, match="boundary: must be one of .* got 'zero'"):
        fn(torch.rand(1, 1, 16, 16), GOOD_KERNEL, boundary="zero")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fft_helper_matches_torch_fft_and_keeps_autograd(rng, dtype):
    from deblurkit.deconv import _fft

    x = torch.from_numpy(rng.random((2, 3, 15, 22))).to(dtype)
    ref = torch.fft.rfft2(x, s=(16, 24))
    ours = _fft.rfft2(x, s=(16, 24))
    assert ours.dtype == ref.dtype
    torch.testing.assert_close(ours, ref)
    back = _fft.irfft2(ours.clone(), s=(16, 24), overwrite=True)
    torch.testing.assert_close(back, torch.fft.irfft2(ref, s=(16, 24)))
    torch.testing.assert_close(_fft.irfft2(torch.conj(ref), s=(16, 24)),
                               torch.fft.irfft2(torch.conj(ref), s=(16, 24)))
    leaf = x.clone().requires_grad_(True)
    assert _fft.rfft2(leaf).grad_fn is not None


@pytest.mark.parametrize("method", ["wiener", "l2_gradient", "hyper_laplacian", "richardson_lucy"])
def test_torch_fft_path_gives_the_same_result(rng, monkeypatch, method):
    """GPUs (and autograd) use torch.fft instead of scipy.fft; force that path on the CPU."""
    from deblurkit.deconv import _fft

    fn = {"wiener": wiener, "l2_gradient": l2_gradient, "hyper_laplacian": hyper_laplacian,
          "richardson_lucy": richardson_lucy}[method]
    images = torch.from_numpy(rng.random((2, 3, 40, 44)))
    kernel = torch.from_numpy(camera_shake_kernel(9, 1).astype(np.float64))
    kernel = kernel / kernel.sum()
    scipy_path = fn(images, kernel)
    monkeypatch.setattr(_fft, "_scipy_ok", lambda x: False)
    torch.testing.assert_close(fn(images, kernel), scipy_path, atol=1e-9, rtol=0)
