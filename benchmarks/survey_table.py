"""The survey's end-to-end methods side by side: quality, size and CPU time, at CPU and paper size.

    python benchmarks/survey_table.py --threads 1 \\
        --weights nah2017=runs/gpu-results/nah2017-gpu/ema.safetensors \\
                  tao2018=runs/gpu-results/tao2018-gpu/ema.safetensors ... \\
        [--models NAME ...] [--sets SET ...] [--limit-pairs N] [--repeats 3] [--limit 20]
        [--ssim skimage] [--no-paper] [--json results.json]

For each method of the survey (SPEC §3: ``nah2017``, ``tao2018``, ``noroozi2017``, ``zhang2018``,
``ramakrishnan2017``, ``kupyn2018``) and ``nafnet`` for reference, two Markdown tables:

1. **CPU size** (the registry default, the size every method is trained at here): PSNR / SSIM of the
   output and its PSNR gain over the blurred input (the reference measured in the same run), mean
   over the pairs of each paired dev set (``dev_quality.evaluate_set``: PSNR ``10 log10(1/MSE)`` on
   [0, 1] RGB, SSIM in the named convention); parameters; MACs of one 1280 x 720 forward
   (``deblurkit.infer.count_macs``); median seconds per 1280 x 720 RGB photo with the torch backend
   on this CPU (``inference_speed.time_variant``: a configuration whose time, estimated from a
   320 x 180 probe or measured by the warm-up call, exceeds ``--limit`` s is skipped with that
   estimate). Weights: ``--weights NAME=PATH`` (a ``.safetensors`` file), else the shipped weights
   of the model's registry entry, else the row says ``untrained`` and its quality columns are
   skipped (a random network's PSNR means nothing).
2. **Paper size** (``create(name, size="paper")``; ``nafnet``: the paper's GoPro layout ``w64``):
   parameters beside the figure each paper states (or, marked so, the figure usually quoted when the
   paper states none) with the % difference; MACs at 1280 x 720; CPU seconds (random weights: speed
   does not depend on them; estimated from the probe when over ``--limit``) normalised to
   ``kupyn2018`` = 1, beside the survey's Table III GPU seconds (Kupyn 0.8, Zhang 1.4, Tao 1.6,
   Nah 4.3) normalised the same way.

Timings depend on the load of the machine; every time in one run shares it, so the ratios are the
figures to read. Progress goes to stderr, the tables to stdout.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark scripts

import dev_quality  # noqa: E402
import inference_speed  # noqa: E402

from deblurkit import models  # noqa: E402
from deblurkit.errors import ConfigError, DeblurkitError, WeightsError  # noqa: E402
from deblurkit.infer import count_macs, count_parameters, load_model, make_runner  # noqa: E402
from deblurkit.io.atomic import atomic_path  # noqa: E402
from deblurkit.models import tao2018  # noqa: E402
from deblurkit.paths import shared_data  # noqa: E402

METHODS = ("nah2017", "tao2018", "noroozi2017", "zhang2018", "ramakrishnan2017", "kupyn2018",
           "nafnet")
SETS = ("synthetic_camera_motion", "real_gopro", "gopro_frameavg")
H, W = inference_speed.H, inference_speed.W  # the 1280 x 720 of the MACs and time columns
REFERENCE = "kupyn2018"  # the fastest method of Table III: ratios are relative to it
# Survey (Sahu, Lenka, Sa, arXiv 1907.10128) Table III: GPU seconds per image.
TABLE3_GPU_SECONDS = {"kupyn2018": 0.8, "zhang2018": 1.4, "tao2018": 1.6, "nah2017": 4.3}
# Models without a "paper" preset: the size that is the paper's configuration.
PAPER_SIZE_OF = {"nafnet": "w64"}  # NAFNet's GoPro model (megvii-research/NAFNet, width 64)


@dataclass(frozen=True)
class Figure:
    """A published parameter count: ``params``, where it comes from, whether the paper itself
    states it (``own``), and the option overrides of the paper size it describes."""

    params: float
    source: str
    own: bool
    options: dict[str, Any] = field(default_factory=dict)


# Parameter counts from the sources (see each model's docstring and tests/models/test_<name>.py).
FIGURES: dict[str, Figure] = {
    "tao2018": Figure(3.76e6, "the paper's Table 1 (SR-EDRB3), whose convs are 3x3", True,
                      {"kernel_size": tao2018.TABLE1_SIZE["kernel_size"]}),
    "nah2017": Figure(11.7e6, "usually quoted; the paper states none", False),
    "kupyn2018": Figure(11.38e6, "third-party reports; the paper states none", False),
}
NO_FIGURE = {
    "noroozi2017": "the paper states none",
    "zhang2018": "the paper gives a model size in MB only",
    "ramakrishnan2017": "the paper states none",
    "nafnet": "not stated for this layout",
}


def build(name: str, size: str | None) -> torch.nn.Module:
    """A registered model at ``size`` (``None``: the registry default, the CPU size), random
    weights. One function so that the smoke test can shrink every model."""
    return models.create(name, size=size)


def paper_size(name: str) -> str:
    """The preset that is ``name``'s paper configuration (``"paper"`` or :data:`PAPER_SIZE_OF`)."""
    sizes = models.MODELS[name].sizes if name in models.MODELS else {}
    if "paper" in sizes:
        return "paper"
    if PAPER_SIZE_OF.get(name) in sizes:
        return PAPER_SIZE_OF[name]
    raise ConfigError(f"model {name!r}: no 'paper' size and no paper layout known; sizes: "
                      f"{', '.join(sorted(sizes)) or '(none)'}")


def parse_weights(items: list[str], methods: list[str]) -> dict[str, Path]:
    """``["NAME=PATH", ...]`` -> ``{NAME: Path}``; a malformed item, a name not among ``methods``,
    a name given twice or a missing file raises naming the item."""
    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise ConfigError(f"--weights {item!r}: expected NAME=PATH (e.g. "
                              "nah2017=runs/gpu-results/nah2017-gpu/ema.safetensors)")
        if name not in methods:
            raise ConfigError(f"--weights {item!r}: {name!r} is not one of the methods in this run "
                              f"({', '.join(methods)})")
        if name in out:
            raise ConfigError(f"--weights {item!r}: weights for {name!r} given twice")
        if not Path(path).is_file():
            raise WeightsError(f"--weights {item!r}: file {path} not found")
        out[name] = Path(path)
    return out


def trained_model(name: str, weights: Path | None) -> tuple[torch.nn.Module | None, str]:
    """``(model in eval mode, label)`` from ``weights``, else from the model's shipped weights, else
    ``(None, "untrained")``. A weights file whose recorded architecture is another model raises."""
    if weights is not None:
        from safetensors import safe_open

        with safe_open(str(weights), framework="pt") as handle:
            recorded = (handle.metadata() or {}).get("arch")
        if recorded is not None and recorded != name:
            raise ConfigError(f"--weights {name}={weights}: the file records arch {recorded!r}, "
                              f"not {name!r}")
        return load_model(weights, arch=name), str(weights)
    try:
        key, entry = models.resolve_weights_entry(name)
    except DeblurkitError:
        return None, "untrained"
    if entry.get("model") != name:
        return None, "untrained"
    return models.load_pretrained(key), f"shipped: {key}"


def macs_at(name: str, size: str | None, options: dict | None = None) -> tuple[int, int]:
    """``(parameters, MACs of one 1 x 3 x 720 x 1280 forward)`` from shapes alone (meta device)."""
    with torch.device("meta"):
        net = build(name, size) if not options else models.create(name, size=size, **options)
    return count_parameters(net), count_macs(net.eval(), (1, 3, H, W))


_EST = re.compile(r"est\. ([0-9.]+) s|warm-up took ([0-9.]+) s")


def time_model(model: torch.nn.Module, image: np.ndarray, repeats: int,
               limit: float) -> dict[str, Any]:
    """Median seconds of ``deblur(image)`` with the torch backend (eager fp32) on a copy of
    ``model`` via ``inference_speed.time_variant``; over ``limit``: ``seconds`` is ``None`` and
    ``estimate`` the figure time_variant reports (from the probe, or the warm-up call)."""
    runner = make_runner(copy.deepcopy(model), "cpu", "torch")  # finest output of multi-scale nets
    seconds, note = inference_speed.time_variant(runner, image, repeats, limit)
    estimate = None
    if seconds is None:
        m = _EST.search(note)
        estimate = float(m.group(1) or m.group(2)) if m else None
    return {"seconds": seconds, "estimate": estimate, "note": note}


def best_time(t: dict[str, Any]) -> float | None:
    """Measured seconds, else the estimate."""
    return t["seconds"] if t["seconds"] is not None else t["estimate"]


def normalise(values: dict[str, float | None], reference: str) -> dict[str, float | None]:
    """``values[k] / values[reference]``; ``None`` where either is missing or the reference is 0."""
    ref = values.get(reference)
    return {k: (v / ref if v is not None and ref else None) for k, v in values.items()}


def summarise(rows: list[dict]) -> dict[str, float]:
    """Means over the pairs of ``dev_quality.evaluate_set`` rows."""
    keys = ("psnr_in", "psnr", "gain", "ssim_in", "ssim")
    out = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    out["pairs"] = len(rows)
    out["worst_gain"] = float(min(r["gain"] for r in rows))
    return out


def _fmt_time(t: dict[str, Any]) -> str:
    if t["seconds"] is not None:
        return f"{t['seconds']:.2f}"
    return f"≈{t['estimate']:.0f} (est.)" if t["estimate"] is not None else t["note"]


def _fmt(v: float | None, spec: str) -> str:
    return "—" if v is None else format(v, spec)


def cpu_table(results: dict[str, dict], sets: list[str], convention: str, repeats: int) -> str:
    lines = [f"### CPU size (registry default): quality on the dev sets, size, time\n",
             f"Quality: mean over the pairs of each set, `PSNR / SSIM / gain` (gain = PSNR(output) "
             f"- PSNR(blurred input), dB; SSIM convention '{convention}'). Time: median of "
             f"{repeats} `deblur` calls on one {W}x{H} RGB uint8 photo, torch eager fp32, after a "
             f"warm-up; `vs nafnet`: ratio to nafnet's time in this run.\n"]
    head = f"| method | weights | params (M) | GMACs @{W}x{H} | s / photo | vs nafnet |"
    sep = "|---|---|---:|---:|---:|---:|"
    for s in sets:
        n = next((r["quality"][s]["pairs"] for r in results.values() if r.get("quality")), 0)
        head += f" {s} ({n}) |"
        sep += "---|"
    lines += [head, sep]
    ref = next((r for r in results.values() if r.get("quality")), None)
    if ref is not None:
        cells = " | ".join(f"{ref['quality'][s]['psnr_in']:.2f} / {ref['quality'][s]['ssim_in']:.4f}"
                           for s in sets)
        lines.append(f"| *blurred input* | | | | | | {cells} |")
    nafnet_time = best_time(results["nafnet"]["time"]) if "nafnet" in results else None
    for name, r in results.items():
        t = best_time(r["time"])
        ratio = f"{t / nafnet_time:.2f}x" if t is not None and nafnet_time else "—"
        if r.get("quality"):
            cells = " | ".join(f"{q['psnr']:.2f} / {q['ssim']:.4f} / {q['gain']:+.2f}"
                               for q in (r["quality"][s] for s in sets))
        else:
            cells = " | ".join("untrained: skipped" for _ in sets)
        lines.append(f"| {name} | {r['weights']} | {r['params'] / 1e6:.2f} | {r['macs'] / 1e9:.1f} | "
                     f"{_fmt_time(r['time'])} | {ratio} | {cells} |")
    untrained = [n for n, r in results.items() if not r.get("quality")]
    if untrained:
        lines.append(f"\nUntrained (no --weights, no shipped weights): {', '.join(untrained)}; their "
                     "quality columns are skipped.")
    return "\n".join(lines)


def paper_table(results: dict[str, dict]) -> str:
    lines = [f"### Paper size: parameters against the published figures; MACs; CPU time against "
             f"the survey's Table III\n",
             f"Time: one {W}x{H} RGB photo, torch eager fp32, random weights; `est.`: estimated "
             f"by inference_speed.time_variant (16 x a 320x180 run, or the warm-up call) when over "
             f"--limit. Ratios: {REFERENCE} = 1.\n",
             "| method | size | params (M) | published figure (M): source | ours for that config (M) "
             f"| Δ % | GMACs @{W}x{H} | MACs ratio | CPU s | CPU ratio | Table III GPU s | GPU ratio |",
             "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    times = {n: best_time(r["time"]) for n, r in results.items()}
    cpu_ratio = normalise(times, REFERENCE)
    macs_ratio = normalise({n: float(r["macs"]) for n, r in results.items()}, REFERENCE)
    gpu_ratio = normalise({n: TABLE3_GPU_SECONDS.get(n) for n in results}, REFERENCE)
    for name, r in results.items():
        f = r["figure"]
        if f is not None:
            fig = f"{f['params'] / 1e6:.2f}: {f['source']}"
            same = f"{f['ours'] / 1e6:.2f}"
            delta = f"{100 * (f['ours'] / f['params'] - 1):+.1f}"
        else:
            fig, same, delta = f"—: {r['no_figure']}", "—", "—"
        gpu = TABLE3_GPU_SECONDS.get(name)
        lines.append(
            f"| {name} | {r['size']} | {r['params'] / 1e6:.2f} | {fig} | {same} | {delta} | "
            f"{r['macs'] / 1e9:.0f} | {_fmt(macs_ratio[name], '.2f')} | {_fmt_time(r['time'])} | "
            f"{_fmt(cpu_ratio[name], '.2f')} | {_fmt(gpu, '.1f')} | {_fmt(gpu_ratio[name], '.2f')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=list(METHODS),
                        help=f"methods to list (default: {' '.join(METHODS)})")
    parser.add_argument("--weights", nargs="*", default=[], metavar="NAME=PATH",
                        help="trained weights (.safetensors) of a method, e.g. "
                             "nah2017=runs/gpu-results/nah2017-gpu/ema.safetensors")
    parser.add_argument("--sets", nargs="*", default=list(SETS),
                        help=f"paired sets under <data>/dev (default: {' '.join(SETS)})")
    parser.add_argument("--limit-pairs", type=int, default=None,
                        help="at most this many pairs per set (default: all)")
    parser.add_argument("--ssim", default="skimage", help="SSIM convention (deblurkit.metrics.ssim)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per configuration")
    parser.add_argument("--limit", type=float, default=20.0,
                        help="seconds per photo above which a configuration is not run at full "
                             "size and its estimate is reported instead")
    parser.add_argument("--paper", action=argparse.BooleanOptionalAction, default=True,
                        help="also the paper-size table (default: on)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's choice; 1 on a loaded machine)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    for name in args.models:
        if name not in models.MODELS:
            raise ConfigError(f"--models {name!r}: unknown; choose from {', '.join(models.list_models())}")
    if not args.models:
        raise ConfigError("--models: empty; name at least one method")
    for opt, value, lo in (("--repeats", args.repeats, 1), ("--limit-pairs", args.limit_pairs, 1),
                           ("--threads", args.threads, 1)):
        if value is not None and value < lo:
            raise ConfigError(f"{opt} {value}: expected an integer >= {lo}")
    if not args.limit > 0:
        raise ConfigError(f"--limit {args.limit}: expected a positive number of seconds")
    dev = shared_data() / "dev"
    for s in args.sets:
        if not (dev / s).is_dir():
            raise ConfigError(f"--sets {s!r}: no folder {dev / s}")
    weights = parse_weights(args.weights, args.models)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    # Load every model first, so that a bad weights file fails before the long part.
    loaded = {name: trained_model(name, weights.get(name)) for name in args.models}
    image = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    start = time.perf_counter()

    cpu: dict[str, dict] = {}
    for name in args.models:
        model, label = loaded[name]
        timed = model if model is not None else build(name, None).eval()
        params, macs = count_parameters(timed), count_macs(copy.deepcopy(timed).to("meta"), (1, 3, H, W))
        t = time_model(timed, image, args.repeats, args.limit)
        print(f"  cpu   {name:<18} {_fmt_time(t)} s", file=sys.stderr)
        quality = None
        if model is not None:
            quality = {}
            for s in args.sets:
                rows = dev_quality.evaluate_set(model, dev / s, args.ssim, args.limit_pairs)
                quality[s] = summarise(rows)
                quality[s]["rows"] = rows
                print(f"  cpu   {name:<18} {s}: gain {quality[s]['gain']:+.2f} dB "
                      f"({len(rows)} pairs)", file=sys.stderr)
        cpu[name] = {"weights": label, "params": params, "macs": macs, "time": t, "quality": quality}

    paper: dict[str, dict] = {}
    if args.paper:
        for name in args.models:
            size = paper_size(name)
            params, macs = macs_at(name, size)
            figure = None
            if name in FIGURES:
                f = FIGURES[name]
                ours = macs_at(name, size, f.options)[0] if f.options else params
                figure = {"params": f.params, "source": f.source, "own": f.own,
                          "options": f.options, "ours": ours}
            torch.manual_seed(0)
            t = time_model(build(name, size).eval(), image, args.repeats, args.limit)
            print(f"  paper {name:<18} {_fmt_time(t)} s", file=sys.stderr)
            paper[name] = {"size": size, "params": params, "macs": macs, "figure": figure,
                           "no_figure": NO_FIGURE.get(name, "none known"), "time": t}

    print(f"\nSurvey table: {len(args.models)} methods; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} logical CPUs, torch {torch.__version__} with {torch.get_num_threads()} "
          f"thread(s); data {dev}; {time.perf_counter() - start:.0f} s.\n")
    print(cpu_table(cpu, args.sets, args.ssim, args.repeats))
    if paper:
        print()
        print(paper_table(paper))
    if args.json:
        report = {"threads": torch.get_num_threads(), "sets": args.sets, "ssim": args.ssim,
                  "limit_pairs": args.limit_pairs, "repeats": args.repeats, "limit": args.limit,
                  "table3_gpu_seconds": TABLE3_GPU_SECONDS, "reference": REFERENCE,
                  "cpu": cpu, "paper": paper}
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except DeblurkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
