"""Width and depth of the NAFNet default at a fixed CPU inference time (issue 8, recipe study).

For a few NAFNet shapes chosen to cost about what the shipped default costs, prints parameters,
MACs of one 1280 x 720 forward pass, and the median seconds of ``deblurkit.infer.deblur`` on a
1280 x 720 RGB photo with deblur's CPU default (fp32, channels-last), against the default in the
same run (a ratio). Random weights: speed does not depend on them. Which shape *learns* best at a
given budget is a training question (docs/training.md); this table says which shapes are eligible.

    python benchmarks/model_shapes.py [--threads 2] [--repeats 5] [--shapes NAME ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deblurkit.errors import ConfigError  # noqa: E402
from deblurkit.infer import deblur  # noqa: E402
from deblurkit.infer.backends import TorchRunner  # noqa: E402
from deblurkit.infer.profile import count_macs  # noqa: E402
from deblurkit.models import count_parameters, create  # noqa: E402

H, W = 720, 1280
# name -> nafnet options over the registry's defaults (width 16, enc [0,1,2,6], middle 2,
# dec [1,1,1,1], pixel_unshuffle 2)
SHAPES: dict[str, dict] = {
    "default (w16, enc 0/1/2/6, mid 2)": {},
    "wider, shallower (w24, enc 0/1/1/3, mid 1)": {"width": 24, "enc_blocks": [0, 1, 1, 3], "middle_blocks": 1},
    "narrower, deeper (w12, enc 0/1/3/10, mid 4)": {"width": 12, "enc_blocks": [0, 1, 3, 10], "middle_blocks": 4},
    "deeper bottom only (w16, enc 0/1/2/12, mid 4)": {"enc_blocks": [0, 1, 2, 12], "middle_blocks": 4},
    "more decoder (w16, enc 0/1/2/4, dec 1/1/2/2)": {"enc_blocks": [0, 1, 2, 4], "dec_blocks": [1, 1, 2, 2]},
    "stride-4 stem (w32, pixel_unshuffle 4, enc 1/2/6)": {"width": 32, "pixel_unshuffle": 4,
                                                          "enc_blocks": [1, 2, 6], "dec_blocks": [1, 1, 1]},
}


def interleaved_medians(runners: list, repeats: int) -> list[float]:
    """Median seconds of ``deblur`` on a fixed random 1280 x 720 photo for each runner, timed in
    rounds (one call of each runner per round, after one warm-up call each), so that load changes
    on the machine hit every shape alike."""
    image = np.random.default_rng(0).random((H, W, 3), dtype=np.float32)
    for runner in runners:
        deblur(image, runner)
    times: list[list[float]] = [[] for _ in runners]
    for _ in range(repeats):
        for i, runner in enumerate(runners):
            start = time.perf_counter()
            deblur(image, runner)
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--shapes", nargs="+", default=None,
                    help="substrings of the shape names to run (the default always runs)")
    args = ap.parse_args(argv)
    if args.threads < 1 or args.repeats < 1:
        raise ConfigError(f"--threads and --repeats must be >= 1, got {args.threads} and {args.repeats}")
    torch.set_num_threads(args.threads)
    names = list(SHAPES)
    if args.shapes:
        unknown = [s for s in args.shapes if not any(s in n for n in names)]
        if unknown:
            raise ConfigError(f"--shapes {unknown}: no such shape; choose from: {'; '.join(names)}")
        names = [names[0]] + [n for n in names[1:] if any(s in n for s in args.shapes)]
    models = [create("nafnet", **SHAPES[name]).eval() for name in names]
    seconds = interleaved_medians([TorchRunner(m, channels_last=True) for m in models], args.repeats)
    rows = [(name, count_parameters(m), count_macs(m, (1, 3, H, W)), s)
            for name, m, s in zip(names, models, seconds)]
    ref = rows[0][3]
    print(f"| NAFNet shape ({args.threads} threads, median of {args.repeats}, interleaved) | parameters | GMACs / 1280x720 "
          "| s / 1280x720 | x default time |")
    print("|---|---|---|---|---|")
    for name, params, macs, seconds in rows:
        print(f"| {name} | {params / 1e6:.2f} M | {macs / 1e9:.1f} | {seconds:.3f} | {seconds / ref:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
