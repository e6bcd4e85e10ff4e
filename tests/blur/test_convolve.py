"""Uniform blur against scipy / numpy references for every boundary mode and both methods."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage, signal

from deblurkit.blur.convolve import BOUNDARIES, blur
from deblurkit.errors import ConfigError, ImageError, KernelError

METHODS = ("direct", "fft")
SHAPES = [(5, 7), (3, 9), (4, 6), (2, 5), (1, 1), (6, 6)]  # odd, even, mixed, non-square


def random_kernel(rng, shape, dtype=np.float64):
    k = rng.random(shape)
    return (k / k.sum()).astype(dtype)


def centre_slice(full: np.ndarray, kh: int, kw: int, h: int, w: int) -> np.ndarray:
    """'same' output with the kernel centre at (kh // 2, kw // 2) read off a 'full' convolution."""
    return full[kh // 2:kh // 2 + h, kw // 2:kw // 2 + w]


@pytest.fixture
def image(rng):
    return rng.random((23, 31))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kshape", SHAPES)
def test_constant_boundary_equals_scipy(image, rng, method, kshape):
    k = random_kernel(rng, kshape)
    out = blur(image, k, boundary="constant", method=method)
    assert out.shape == image.shape and out.dtype == image.dtype
    full = signal.convolve(image, k, mode="full")
    np.testing.assert_allclose(out, centre_slice(full, *kshape, *image.shape), atol=1e-12)
    np.testing.assert_allclose(out, ndimage.convolve(image, k, mode="constant"), atol=1e-12)
    if kshape[0] % 2 and kshape[1] % 2:  # odd kernels: identical to scipy.signal's 'same'
        np.testing.assert_allclose(out, signal.convolve(image, k, mode="same"), atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kshape", SHAPES)
def test_reflect_is_numpy_symmetric_and_ndimage_reflect(image, rng, method, kshape):
    k = random_kernel(rng, kshape)
    out = blur(image, k, boundary="reflect", method=method)
    np.testing.assert_allclose(out, ndimage.convolve(image, k, mode="reflect"), atol=1e-12)
    kh, kw = kshape
    padded = np.pad(image, ((kh - 1 - kh // 2, kh // 2), (kw - 1 - kw // 2, kw // 2)),
                    mode="symmetric")
    np.testing.assert_allclose(out, signal.convolve(padded, k, mode="valid"), atol=1e-12)
    if max(kshape) > 2:  # ndimage 'mirror' (numpy 'reflect') is a different rule
        assert not np.allclose(out, ndimage.convolve(image, k, mode="mirror"), atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kshape", SHAPES)
def test_replicate_equals_ndimage_nearest(image, rng, method, kshape):
    k = random_kernel(rng, kshape)
    out = blur(image, k, boundary="replicate", method=method)
    np.testing.assert_allclose(out, ndimage.convolve(image, k, mode="nearest"), atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kshape", SHAPES)
def test_circular_equals_numpy_fft_convolution(image, rng, method, kshape):
    k = random_kernel(rng, kshape)
    out = blur(image, k, boundary="circular", method=method)
    h, w = image.shape
    embedded = np.zeros((h, w))
    embedded[: kshape[0], : kshape[1]] = k
    embedded = np.roll(embedded, (-(kshape[0] // 2), -(kshape[1] // 2)), axis=(0, 1))
    ref = np.real(np.fft.ifft2(np.fft.fft2(image) * np.fft.fft2(embedded)))
    np.testing.assert_allclose(out, ref, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kshape", SHAPES)
def test_valid_equals_scipy_valid(image, rng, method, kshape):
    k = random_kernel(rng, kshape)
    out = blur(image, k, boundary="valid", method=method)
    ref = signal.convolve(image, k, mode="valid")
    h, w = image.shape
    assert out.shape == ref.shape == (h - kshape[0] + 1, w - kshape[1] + 1)
    np.testing.assert_allclose(out, ref, atol=1e-12)


@pytest.mark.parametrize("boundary", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("method", METHODS)
def test_kernel_larger_than_image(rng, boundary, method):
    img = rng.random((5, 4))
    k = random_kernel(rng, (13, 10))
    mode = {"reflect": "symmetric", "replicate": "edge", "circular": "wrap"}[boundary]
    padded = np.pad(img, ((6, 6), (4, 5)), mode=mode)  # numpy repeats the rule past the image
    np.testing.assert_allclose(blur(img, k, boundary=boundary, method=method),
                               signal.convolve(padded, k, mode="valid"), atol=1e-12)


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("kshape", [(5, 5), (4, 6)])
def test_delta_at_the_centre_is_the_identity(image, boundary, kshape):
    k = np.zeros(kshape)
    k[kshape[0] // 2, kshape[1] // 2] = 1.0
    out = blur(image, k, boundary=boundary, method="direct")
    if boundary == "valid":
        top, left = kshape[0] - 1 - kshape[0] // 2, kshape[1] - 1 - kshape[1] // 2
        expected = image[top:top + out.shape[0], left:left + out.shape[1]]
    else:
        expected = image
    np.testing.assert_allclose(out, expected, atol=1e-12)
    np.testing.assert_allclose(blur(image, k, boundary=boundary, method="fft"), expected,
                               atol=1e-12)


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_constant_image_stays_constant(rng, boundary):
    img = np.full((20, 17, 3), 0.37, dtype=np.float32)
    k = random_kernel(rng, (7, 5), np.float32)
    for method in METHODS:
        out = blur(img, k, boundary=boundary, method=method)
        if boundary == "constant":  # zeros outside: only the interior keeps the value
            interior = out[3:-3, 2:-2]
            np.testing.assert_allclose(interior, 0.37, atol=1e-6)
            assert out[0, 0, 0] < 0.37 - 0.01
        else:
            np.testing.assert_allclose(out, 0.37, atol=1e-6)


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("kshape", [(9, 9), (8, 11), (21, 21)])
def test_fft_equals_direct_in_float32(rng, boundary, kshape):
    x = torch.from_numpy(rng.random((2, 3, 40, 37)).astype(np.float32))
    k = torch.from_numpy(random_kernel(rng, kshape, np.float32))
    a = blur(x, k, boundary=boundary, method="direct")
    b = blur(x, k, boundary=boundary, method="fft")
    assert a.dtype == b.dtype == torch.float32
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    torch.testing.assert_close(blur(x, k, boundary=boundary), a, atol=1e-5, rtol=0)  # auto


@pytest.mark.parametrize("method", METHODS)
def test_per_sample_kernels_equal_a_loop(rng, method):
    x = torch.from_numpy(rng.random((3, 2, 19, 24)))
    ks = torch.from_numpy(np.stack([random_kernel(rng, (5, 6)) for _ in range(3)]))
    out = blur(x, ks, boundary="reflect", method=method)
    for i in range(3):
        for c in range(2):
            ref = ndimage.convolve(x[i, c].numpy(), ks[i].numpy(), mode="reflect")
            np.testing.assert_allclose(out[i, c].numpy(), ref, atol=1e-12)
    shared = blur(x, ks[1], method=method)
    torch.testing.assert_close(shared, blur(x, ks[1].expand(3, 5, 6), method=method))


def test_numpy_layouts_and_dtypes(rng):
    k = random_kernel(rng, (5, 5), np.float32)
    rgb = rng.random((16, 12, 3)).astype(np.float32)
    out = blur(rgb, k)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == rgb.shape
    for c in range(3):
        np.testing.assert_allclose(out[..., c], blur(rgb[..., c], k), atol=1e-6)
        np.testing.assert_allclose(out[..., c], ndimage.convolve(rgb[..., c], k, mode="reflect"),
                                   atol=1e-6)
    assert blur(rgb.astype(np.float64), k).dtype == np.float64
    assert blur(rgb.astype(np.float16), k).dtype == np.float16
    # a numpy image with a torch kernel and the reverse
    np.testing.assert_allclose(blur(rgb, torch.from_numpy(k)), out, atol=1e-7)
    t = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    np.testing.assert_allclose(blur(t, k)[0].permute(1, 2, 0).numpy(), out, atol=1e-6)


def test_gradients_flow_to_image_and_kernel(rng):
    for method in METHODS:
        for boundary in ("reflect", "circular", "constant"):
            x = torch.from_numpy(rng.random((1, 2, 7, 6))).requires_grad_()
            k = torch.from_numpy(random_kernel(rng, (3, 4))).requires_grad_()
            assert torch.autograd.gradcheck(
                lambda a, b: blur(a, b, boundary=boundary, method=method, validate=False),
                (x, k), eps=1e-6, atol=1e-6)


def test_bad_arguments_are_refused(rng):
    img = rng.random((10, 10))
    k = random_kernel(rng, (3, 3))
    with pytest.raises(ConfigError, match="boundary: .*got 'mirror'"):
        blur(img, k, boundary="mirror")
    with pytest.raises(ConfigError, match="method: .*got 'fast'"):
        blur(img, k, method="fast")
    with pytest.raises(ImageError, match="image: must be floating point.*uint8"):
        blur((img * 255).astype(np.uint8), k)
    with pytest.raises(ImageError, match=r"image: numpy image must be .*\(1, 10, 10, 1\)"):
        blur(img[None, ..., None], k)
    with pytest.raises(ImageError, match=r"image: torch image must be \(B, C, H, W\)"):
        blur(torch.from_numpy(img), k)
    with pytest.raises(ImageError, match="image: must be a numpy array or torch tensor, got list"):
        blur(img.tolist(), k)
    with pytest.raises(ImageError, match="smaller than the 11x3 kernel"):
        blur(img, random_kernel(rng, (11, 3)), boundary="valid")
    with pytest.raises(KernelError, match="negative"):
        blur(img, k - 0.05)
    with pytest.raises(KernelError, match="sums to 2"):
        blur(img, 2 * k)
    with pytest.raises(KernelError, match="non-finite"):
        blur(img, np.full((2, 2), np.nan), validate=False)
    with pytest.raises(KernelError, match="batch of 2 kernels for a batch of 3 images"):
        blur(torch.rand(3, 1, 8, 8, dtype=torch.float64), torch.from_numpy(np.stack([k, k])))
    # without validation any finite filter is allowed, e.g. a derivative
    d = blur(img, np.array([[1.0, -1.0]]), boundary="valid", validate=False)
    np.testing.assert_allclose(d, img[:, 1:] - img[:, :-1], atol=1e-12)
