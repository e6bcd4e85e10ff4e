"""Ship a trained model: copy its (EMA) weights into deblurkit/weights/ and write its registry entry.

    python tools/ship_weights.py NAME --weights W.safetensors --arch nafnet --config CONFIG.yaml \
        --figures dev.json --recipe "one paragraph" [--default] [--options '{"size": ...}']

``dev.json`` is the ``--json`` output of ``benchmarks/dev_quality.py`` for these weights: the entry
keeps each set's mean input/output PSNR and SSIM, mean gain, worst pair and pairs made worse, so
the figures shipped are the figures measured. The weights are re-saved through
``deblurkit.models.weights.save_weights`` (metadata: arch and options), loaded back into a fresh
model with the sha256 check, and only then is ``registry.json`` rewritten (atomically).
``--default`` moves the ``"default": true`` mark to this entry.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deblurkit.errors import DeblurkitError  # noqa: E402
from deblurkit.io.atomic import atomic_path  # noqa: E402
from deblurkit.models import create  # noqa: E402
from deblurkit.models.weights import load_weights, save_weights  # noqa: E402
from deblurkit.paths import weights_dir  # noqa: E402


def summarise(report: dict) -> dict:
    """dev_quality's per-pair rows -> per-set means, worst pair and pairs made worse."""
    out = {}
    for name, rows in report.items():
        if not rows:
            continue
        mean = lambda k: round(float(np.mean([r[k] for r in rows])), 4)  # noqa: E731
        out[name] = {"pairs": len(rows), "psnr_in": mean("psnr_in"), "psnr": mean("psnr"), "gain": mean("gain"),
                     "ssim_in": mean("ssim_in"), "ssim": mean("ssim"),
                     "worst_gain": round(min(r["gain"] for r in rows), 4),
                     "pairs_worse": int(sum(r["gain"] < 0 for r in rows))}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name")
    p.add_argument("--weights", type=Path, required=True)
    p.add_argument("--arch", required=True)
    p.add_argument("--options", default="{}", help="model options as JSON (default: the registry's)")
    p.add_argument("--config", type=Path, required=True, help="the training config (recorded in the recipe)")
    p.add_argument("--figures", type=Path, required=True, help="benchmarks/dev_quality.py --json output")
    p.add_argument("--recipe", required=True, help="how it was trained, in words")
    p.add_argument("--default", action="store_true")
    a = p.parse_args(argv)
    try:
        options = json.loads(a.options)
        model = create(a.arch, **options)
        load_weights(model, a.weights)
        figures = summarise(json.loads(a.figures.read_text()))
        dst = weights_dir() / f"{a.name}.safetensors"
        sha = save_weights(model, dst, metadata={"arch": a.arch, "options": options})
        load_weights(create(a.arch, **options), dst, sha256=sha)  # what ships loads back
        reg_path = weights_dir() / "registry.json"
        reg = json.loads(reg_path.read_text()) if reg_path.exists() else {}
        if a.default:
            for entry in reg.values():
                entry.pop("default", None)
        reg[a.name] = {"model": a.arch, "file": dst.name, "sha256": sha, "options": options,
                       **({"default": True} if a.default else {}),
                       "recipe": {"summary": a.recipe, "config": a.config.read_text()},
                       "figures": {"protocol": "benchmarks/dev_quality.py, plain PSNR, SSIM 'skimage'",
                                   **figures}}
        with atomic_path(reg_path) as tmp:
            tmp.write_text(json.dumps(reg, indent=1) + "\n")
    except (DeblurkitError, OSError, ValueError) as exc:
        print(f"ship_weights: {exc}", file=sys.stderr)
        return 2
    print(f"shipped {a.name}: {dst} sha256 {sha}")
    for k, v in figures.items():
        print(f"  {k}: gain {v['gain']:+.2f} dB (worst {v['worst_gain']:+.2f}, {v['pairs_worse']}/{v['pairs']} worse)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
