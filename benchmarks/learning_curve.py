"""Learning curves: dev gain over the blurred input against training time, one line per arm.

    python benchmarks/learning_curve.py \\
        --arm d1 runs/exp/d1/log.csv "runs/gpu-results/nafnet-l1fft-gpu/ema.safetensors=0,runs/exp/d1_ema/*.safetensors" \\
        [--arm NAME LOG.csv CHECKPOINTS ...] [--arch nafnet] [--sets synthetic_camera_motion real_gopro gopro_frameavg] \\
        [--offset NAME HOURS] [--every 2] [--plot docs/learning_curve.png] [--json out.json]

Each arm is a training run: its ``log.csv`` (columns ``step`` and ``seconds``, written by
``deblurkit train``) and a comma-separated list of checkpoint files or globs (safetensors weights of
``--arch``). A checkpoint's step is the last integer in its path (``.../step_0001000/ema.safetensors``
or ``.../4000.safetensors``) unless given as ``FILE=STEP``; its training time is the ``seconds``
column interpolated at that step (step 0 = 0 h: the run's starting weights), plus the arm's
``--offset`` (e.g. the hours of the checkpoint it was fine-tuned from). Every checkpoint is
scored by ``benchmarks/dev_quality.py``'s evaluation (PSNR gain over the blurred input, the
reference in the same run), so a point here equals that script's mean for the same weights.
Prints a Markdown table (mean gain per set, worst ``gopro_frameavg`` pair) and draws the curves.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import re
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark scripts

import dev_quality  # noqa: E402

from deblurkit.errors import ConfigError  # noqa: E402
from deblurkit.paths import shared_data  # noqa: E402

DEFAULT_SETS = ("synthetic_camera_motion", "real_gopro", "gopro_frameavg")


def read_log(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, seconds)`` of a training ``log.csv``, sorted by step; one-line error if unusable."""
    if not path.is_file():
        raise ConfigError(f"{path}: training log not found")
    steps, seconds = [], []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"step", "seconds"} <= set(reader.fieldnames):
            raise ConfigError(f"{path}: expected a CSV with columns 'step' and 'seconds', "
                              f"got {reader.fieldnames}")
        for row in reader:
            try:
                steps.append(int(row["step"]))
                seconds.append(float(row["seconds"]))
            except (TypeError, ValueError):
                raise ConfigError(f"{path}: bad row {row}") from None
    if not steps:
        raise ConfigError(f"{path}: no rows")
    order = np.argsort(steps, kind="stable")
    return np.asarray(steps)[order], np.asarray(seconds)[order]


def hours_at(step: int, steps: np.ndarray, seconds: np.ndarray) -> float:
    """Training hours at ``step``: the log's seconds interpolated linearly (0 at step 0). Past the
    last logged step (a checkpoint written between two log rows) the last rate is extended by at
    most one log interval; further is refused (it would invent a time)."""
    if step < 0:
        raise ConfigError(f"checkpoint step: expected >= 0, got {step}")
    xs, ts = np.concatenate([[0], steps]), np.concatenate([[0.0], seconds])
    if step > xs[-1]:
        interval = xs[-1] - xs[-2]
        if step - xs[-1] > interval:
            raise ConfigError(f"checkpoint step {step}: beyond the log's last step {steps[-1]}")
        return float(ts[-1] + (step - xs[-1]) * (ts[-1] - ts[-2]) / interval) / 3600
    return float(np.interp(step, xs, ts)) / 3600


def checkpoint_list(spec: str) -> list[tuple[int, Path]]:
    """``(step, file)`` for a comma-separated list of files, globs or ``FILE=STEP``, by step."""
    out: dict[int, Path] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        pattern, _, forced = item.partition("=")
        files = sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern]
        if not files or not all(Path(f).is_file() for f in files):
            raise ConfigError(f"checkpoints {item!r}: no such file")
        for f in files:
            if forced:
                try:
                    step = int(forced)
                except ValueError:
                    raise ConfigError(f"checkpoints {item!r}: step {forced!r} is not an integer") from None
            else:
                numbers = re.findall(r"\d+", str(Path(f).with_suffix("")))
                if not numbers:
                    raise ConfigError(f"checkpoint {f}: no step in its path; write it as {f}=STEP")
                step = int(numbers[-1])
            if step in out:
                raise ConfigError(f"checkpoints: step {step} given twice ({out[step]} and {f})")
            out[step] = Path(f)
    return sorted(out.items())


def evaluate(weights: Path, arch: str, sets: list[str]) -> dict[str, dict[str, float]]:
    from deblurkit.infer.api import load_model

    model = load_model(str(weights), arch=arch)
    result = {}
    for name in sets:
        rows = dev_quality.evaluate_set(model, shared_data() / "dev" / name, "skimage", None)
        gains = [r["gain"] for r in rows]
        result[name] = {"mean": float(np.mean(gains)), "worst": float(min(gains)),
                        "worse": int(sum(g < 0 for g in gains)), "pairs": len(gains)}
    return result


def plot(points: list[dict], sets: list[str], path: Path,
         xlabel: str = "CPU training hours (after the GPU stage)") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(sets), figsize=(4.2 * len(sets), 3.4), squeeze=False)
    for ax, name in zip(axes[0], sets):
        for arm in dict.fromkeys(p["arm"] for p in points):
            pts = [p for p in points if p["arm"] == arm]
            ax.plot([p["hours"] for p in pts], [p["gain"][name]["mean"] for p in pts], "o-", ms=3, label=arm)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("mean gain over blurred input (dB)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arm", nargs=3, action="append", metavar=("NAME", "LOG", "CHECKPOINTS"), required=True)
    ap.add_argument("--offset", nargs=2, action="append", default=[], metavar=("NAME", "HOURS"),
                    help="shift arm NAME right by HOURS (an arm fine-tuned from another's checkpoint)")
    ap.add_argument("--arch", default="nafnet")
    ap.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS))
    ap.add_argument("--every", type=int, default=1, help="score every n-th checkpoint (the last always)")
    ap.add_argument("--plot", type=Path, default=None)
    ap.add_argument("--xlabel", default="CPU training hours (after the GPU stage)", help="the plot's x-axis label")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if args.every < 1:
        raise ConfigError(f"--every: expected >= 1, got {args.every}")
    torch.set_num_threads(args.threads)
    names = [a[0] for a in args.arm]
    offsets: dict[str, float] = {}
    for name, hours in args.offset:
        if name not in names:
            raise ConfigError(f"--offset {name}: no --arm of that name (arms: {', '.join(names)})")
        try:
            offsets[name] = float(hours)
        except ValueError:
            raise ConfigError(f"--offset {name}: hours {hours!r} is not a number") from None
    plan = []
    for name, log, spec in args.arm:
        steps, seconds = read_log(Path(log))
        found = checkpoint_list(spec)
        keep = [c for i, c in enumerate(found) if i % args.every == 0 or i == len(found) - 1]
        plan += [(name, step, f, offsets.get(name, 0.0) + hours_at(step, steps, seconds)) for step, f in keep]
    points = []
    header = " | ".join(f"{s} mean" for s in args.sets)
    print(f"| arm | step | hours | {header} | gopro_frameavg worst |")
    print("|---|---|---|" + "---|" * len(args.sets) + "---|")
    for name, step, f, hours in plan:
        gain = evaluate(f, args.arch, args.sets)
        points.append({"arm": name, "step": step, "hours": hours, "weights": str(f), "gain": gain})
        worst = f"{gain['gopro_frameavg']['worst']:+.2f}" if "gopro_frameavg" in gain else "—"
        cells = " | ".join(f"{gain[s]['mean']:+.3f}" for s in args.sets)
        print(f"| {name} | {step} | {hours:.2f} | {cells} | {worst} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(points, indent=1))
    if args.plot:
        plot(points, args.sets, args.plot, args.xlabel)
        print(f"\nplot: {args.plot}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ConfigError as exc:
        sys.exit(f"learning_curve: {exc}")
