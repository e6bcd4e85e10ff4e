"""Faster inference at equal quality? Speed and dev-set quality of each way to run one model.

    python benchmarks/inference_variants.py [--model default] [--threads 2] [--repeats 5]
        [--sets synthetic_camera_motion real_gopro gopro_frameavg] [--limit N] [--pool-window 256]
        [--calibration-photos 16] [--json out.json]

For the model (default: the shipped default), each variant is timed on one 1280 x 720 RGB photo
(median of ``--repeats`` full ``deblur`` calls, start-up, export and quantization excluded) and
scored on the paired dev sets (mean PSNR gain over the blurred input, as
``benchmarks/dev_quality.py`` computes it). The reference in the same run is torch fp32: each row
gives its time ratio and its gain difference per set, and says whether the quality is equal (no
set's mean gain lower by more than 0.1 dB, issue 8's bar):

- torch fp32 (reference); torch fp32 channels-last (deblur's CPU default); torch bf16 autocast;
- onnxruntime fp32 at each graph optimisation level (disable, basic, extended, all);
- onnxruntime int8: static QDQ quantization of the convolutions (``deblurkit/infer/quantize.py``),
  calibrated on crops of ``--calibration-photos`` training photos blurred by random camera-shake
  kernels (seeded; never dev photos);
- NAFNet only: test-time local statistics (``pool_window``, Chu et al. 2022) with torch
  channels-last.

Timings depend on the machine's load: rerun on an idle machine before quoting them.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark scripts

import dev_quality  # noqa: E402

from deblurkit.errors import ConfigError  # noqa: E402
from deblurkit.infer import deblur  # noqa: E402
from deblurkit.infer.backends import GRAPH_OPTIMIZATIONS, OnnxRunner, TorchRunner, export_onnx, finest_output  # noqa: E402
from deblurkit.paths import shared_data  # noqa: E402

H, W = 720, 1280
EQUAL_DB = 0.1


def calibration_photos(count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` training photos (every n-th of the sorted list), each blurred by its own seeded
    camera-shake kernel of 9-25 px: inputs like the ones the model deblurs."""
    from deblurkit.blur import blur, camera_shake_kernel
    from deblurkit.io import read_image

    root = shared_data() / "train"
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    if len(files) < count:
        raise ConfigError(f"calibration-photos: {root} holds {len(files)} photos, asked for {count}")
    rng = np.random.default_rng(seed)
    photos = []
    for p in files[:: max(1, len(files) // count)][:count]:
        img = read_image(p).pixels
        img = img[:, :, :3] if img.ndim == 3 else np.repeat(img[:, :, None], 3, axis=2)
        k = camera_shake_kernel(int(rng.choice([9, 13, 17, 21, 25])), rng)
        photos.append(np.clip(blur(img.astype(np.float32), k), 0, 1))
    return photos


def variants(model: torch.nn.Module, pool_window: int | None, calibration: int) -> dict:
    """Label -> zero-argument builder of a runner (built lazily: export and quantization are slow)."""
    from deblurkit.infer.quantize import calibration_inputs, quantize_int8

    net = finest_output(model)
    out = {
        "torch fp32 (reference)": lambda: TorchRunner(net),
        "torch fp32 channels-last (deblur's CPU default)": lambda: TorchRunner(net, channels_last=True),
        "torch bf16 autocast": lambda: TorchRunner(net, autocast_dtype=torch.bfloat16),
    }
    onnx: dict[str, bytes] = {}

    def fp32_onnx() -> bytes:
        if "fp32" not in onnx:
            onnx["fp32"] = export_onnx(model)
        return onnx["fp32"]

    for level in GRAPH_OPTIMIZATIONS:
        out[f"onnxruntime fp32, graph optimisation {level}"] = (
            lambda level=level: OnnxRunner(fp32_onnx(), graph_optimization=level))
    out["onnxruntime int8 (static QDQ convolutions), optimisation all"] = lambda: OnnxRunner(
        quantize_int8(fp32_onnx(), calibration_inputs(calibration_photos(calibration), crop=256)))
    if pool_window is not None and hasattr(model, "set_pool_window"):
        def local() -> TorchRunner:
            m = copy.deepcopy(model)
            m.set_pool_window(pool_window)
            return TorchRunner(m, channels_last=True)
        out[f"torch channels-last + local statistics (pool_window {pool_window})"] = local
    return out


def median_seconds(runner, repeats: int) -> float:
    image = np.random.default_rng(0).random((H, W, 3), dtype=np.float32)
    deblur(image, runner)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        deblur(image, runner)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default", help="registry / weights name (default: the shipped default)")
    ap.add_argument("--sets", nargs="+", default=["synthetic_camera_motion", "real_gopro", "gopro_frameavg"])
    ap.add_argument("--limit", type=int, default=None, help="at most this many pairs per set")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pool-window", type=int, default=256,
                    help="NAFNet local-statistics window in pixels (0: skip that variant)")
    ap.add_argument("--calibration-photos", type=int, default=16)
    ap.add_argument("--only", nargs="*", default=None, help="run only variants whose label contains one of these")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.repeats < 1:
        raise ConfigError(f"--repeats: expected >= 1, got {args.repeats}")
    torch.set_num_threads(args.threads)
    from deblurkit.infer.api import load_model

    model = load_model(args.model)
    table = variants(model, args.pool_window or None, args.calibration_photos)
    if args.only:
        ref_label = next(iter(table))
        table = {k: v for k, v in table.items() if k == ref_label or any(s in k for s in args.only)}
    print(f"model {args.model}; {args.threads} thread(s); load average {os.getloadavg()[0]:.1f}; "
          f"1280x720 medians of {args.repeats}\n")
    rows = []
    for label, build in table.items():
        runner = build()
        seconds = median_seconds(runner, args.repeats)
        gains = {}
        for name in args.sets:
            res = dev_quality.evaluate_set(runner, shared_data() / "dev" / name, "skimage", args.limit)
            gains[name] = float(np.mean([r["gain"] for r in res]))
        rows.append({"variant": label, "seconds": seconds, "gains": gains})
        print(f"  {label}: {seconds:.3f} s, " + ", ".join(f"{k} {v:+.3f}" for k, v in gains.items()), flush=True)
    ref = rows[0]
    head = " | ".join(f"{s} gain (Δ)" for s in args.sets)
    print(f"\n| variant | s / 1280x720 | x torch fp32 | {head} | equal quality (Δ >= -{EQUAL_DB} dB) |")
    print("|---|---|---|" + "---|" * len(args.sets) + "---|")
    for r in rows:
        deltas = {s: r["gains"][s] - ref["gains"][s] for s in args.sets}
        r["deltas"], r["ratio"] = deltas, ref["seconds"] / r["seconds"]
        r["equal_quality"] = all(d >= -EQUAL_DB for d in deltas.values())
        cells = " | ".join(f"{r['gains'][s]:+.3f} ({deltas[s]:+.3f})" for s in args.sets)
        print(f"| {r['variant']} | {r['seconds']:.3f} | {r['ratio']:.2f}x | {cells} | "
              f"{'yes' if r['equal_quality'] else 'NO'} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ConfigError as exc:
        sys.exit(f"inference_variants: {exc}")
