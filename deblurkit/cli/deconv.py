"""``deblurkit deconv IMAGE --kernel K -o OUT``: non-blind deconvolution with a known blur kernel.

- ``IMAGE``: PNG/JPEG/TIFF/BMP/WebP, grey, RGB or RGBA, 8 or 16 bits (:mod:`deblurkit.io`).
- ``--kernel``: ``.npy`` (exact, must sum to 1) or a grey image (normalised to sum 1), read and
  validated by :func:`deblurkit.io.read_kernel`. A bad kernel (negative, NaN, empty, not summing
  to 1, larger than the image) is reported on one line before any output is written.
- ``--method``: ``hyperlaplacian`` (default; Krishnan & Fergus 2009), ``wiener`` (survey eq. 4),
  ``l2`` (gradient prior) or ``rl`` (Richardson-Lucy). ``--weight`` is the method's regulariser
  weight (not for ``rl``); ``--iterations`` is Richardson-Lucy's iteration count or the
  hyper-Laplacian solver's inner iterations per penalty step.
- Output: written atomically to ``OUT`` (format from its extension) with the input's bit depth and
  ICC profile; an alpha channel is passed through unchanged (only colour is deconvolved). ``OUT``
  may not be ``IMAGE`` or the kernel file.
- **Clipping, the explicit final step**: deconvolution overshoots ``[0, 1]`` near strong edges and
  in noise (ringing, sharpened noise); the solvers return those values unclipped, and this command
  clips the result to ``[0, 1]`` just before writing, because an image file cannot store them. The
  share of clipped samples is reported on the summary line.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..errors import ConfigError, KernelError

HELP = "non-blind deconvolution with a known kernel"

#: ``--method`` name -> function name in :mod:`deblurkit.deconv`.
METHODS = {
    "hyperlaplacian": "hyper_laplacian",
    "wiener": "wiener",
    "l2": "l2_gradient",
    "rl": "richardson_lucy",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Deconvolve IMAGE with a known blur kernel. The result is clipped to [0, 1] as the "
        "explicit last step before writing (deconvolution overshoots are expected)."
    )
    parser.add_argument("image", type=Path, metavar="IMAGE", help="blurred image file")
    parser.add_argument("--kernel", "-k", required=True, type=Path, metavar="K",
                        help="blur kernel: .npy (sums to 1) or grey image (.png ...)")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="OUT",
                        help="output image file (format from the extension)")
    parser.add_argument("--method", default="hyperlaplacian", choices=sorted(METHODS),
                        help="deconvolution method (default: %(default)s)")
    parser.add_argument("--weight", type=float, default=None, metavar="W",
                        help="regulariser weight > 0 (default: the method's tuned default; "
                             "not for rl)")
    parser.add_argument("--iterations", type=int, default=None, metavar="N",
                        help="rl: iterations (default 30); hyperlaplacian: inner iterations "
                             "per penalty step (default 1)")
    parser.add_argument("--boundary", default="taper", choices=["taper", "reflect", "circular"],
                        help="border handling (default: %(default)s)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="where to compute (default: %(default)s); no fallback")


def _options(args: argparse.Namespace) -> dict:
    method = args.method
    options: dict = {"boundary": args.boundary}
    if args.weight is not None:
        if method == "rl":
            raise ConfigError("--weight: Richardson-Lucy has no weight; use --iterations")
        options["weight"] = args.weight
    if args.iterations is not None:
        if method == "rl":
            options["iterations"] = args.iterations
        elif method == "hyperlaplacian":
            options["inner_iterations"] = args.iterations
        else:
            raise ConfigError(f"--iterations: method {method} is closed-form and has no "
                              f"iterations")
    return options


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from .. import deconv
    from ..io import IMAGE_EXTENSIONS, read_image, read_kernel, write_image

    image_path: Path = args.image
    output: Path = args.output
    if output.suffix.lower() not in IMAGE_EXTENSIONS:
        raise ConfigError(f"-o {output}: unknown image extension {output.suffix!r}; use one of "
                          f"{', '.join(IMAGE_EXTENSIONS)}")
    for name, source in (("IMAGE", image_path), ("--kernel", args.kernel)):
        if output.resolve() == source.resolve():
            raise ConfigError(f"-o {output}: is the same file as {name}; refusing to overwrite "
                              "an input")
    options = _options(args)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available")

    kernel = read_kernel(args.kernel)
    loaded = read_image(image_path)
    pixels = loaded.pixels
    colour = pixels[..., :3] if pixels.shape[2] == 4 else pixels
    kh, kw = kernel.shape
    if kh > colour.shape[0] or kw > colour.shape[1]:
        raise KernelError(f"kernel {args.kernel}: {kh}x{kw} kernel is larger than the "
                          f"{colour.shape[0]}x{colour.shape[1]} image {image_path}")
    fmt = IMAGE_EXTENSIONS[output.suffix.lower()]
    if loaded.bit_depth == 16 and fmt not in ("PNG", "TIFF"):
        raise ConfigError(f"-o {output}: {image_path} is 16-bit and {fmt} holds 8 bits; write "
                          ".png or .tif to keep the bit depth")
    if pixels.shape[2] == 4 and fmt not in ("PNG", "TIFF", "WEBP"):
        raise ConfigError(f"-o {output}: {image_path} has an alpha channel, which {fmt} cannot "
                          "hold; write .png, .tif or .webp")

    device = torch.device(args.device)
    x = torch.from_numpy(np.ascontiguousarray(colour.transpose(2, 0, 1)))[None].to(device)
    k = torch.from_numpy(kernel).to(device)
    start = time.perf_counter()
    result = getattr(deconv, METHODS[args.method])(x, k, **options)
    seconds = time.perf_counter() - start
    result = result[0].permute(1, 2, 0).cpu().numpy()

    # Explicit final step: clip to [0, 1]. Deconvolution overshoots are expected (ringing at strong
    # edges, amplified noise); an image file can only hold [0, 1].
    outside = int(np.count_nonzero((result < 0) | (result > 1)))
    result = np.clip(result, 0.0, 1.0)
    if pixels.shape[2] == 4:
        result = np.concatenate([result, pixels[..., 3:]], axis=2)   # alpha passed through

    write_image(output, result.astype(np.float32), bit_depth=loaded.bit_depth,
                icc_profile=loaded.icc_profile if fmt != "BMP" else None)
    share = 100.0 * outside / max(1, result[..., :colour.shape[2]].size)
    print(f"{output}: {args.method}, {colour.shape[1]}x{colour.shape[0]}, {seconds:.2f} s, "
          f"{share:.2f}% of samples clipped to [0, 1]")
    return 0
