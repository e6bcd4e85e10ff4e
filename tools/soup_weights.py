"""Average trained weights of one architecture into one file (a uniform "model soup").

    python tools/soup_weights.py OUT.safetensors IN1.safetensors IN2.safetensors [...] --arch nafnet \
        [--options '{"width": 16}']

Each input is loaded into a fresh ``--arch`` model first (keys and shapes checked by
``deblurkit.models.weights.load_weights``), the state dicts are averaged with equal weights
(``average_state_dicts``), and the result is saved atomically with its inputs in the metadata.
Soups are compared like any other weights: ``python benchmarks/dev_quality.py --weights OUT
--arch nafnet`` (docs/training.md, "Soups"). Equal weights only, on purpose: weights tuned on the
dev sets would be fitted to them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deblurkit.errors import DeblurkitError  # noqa: E402
from deblurkit.models import create  # noqa: E402
from deblurkit.models.weights import (  # noqa: E402
    average_state_dicts, load_weights, save_weights, state_dict_tensors,
)


def soup(out: Path, inputs: list[Path], arch: str, options: dict) -> str:
    """Write the uniform average of ``inputs`` (weights of ``create(arch, **options)``) to ``out``;
    return its sha256."""
    if out.resolve() in {p.resolve() for p in inputs}:
        raise DeblurkitError(f"soup: output {out} is one of the inputs; choose another path")
    model = create(arch, **options)
    states = []
    for p in inputs:  # each loaded into the model: its keys and shapes are checked there
        load_weights(model, p)
        states.append(state_dict_tensors(model))
    model.load_state_dict(average_state_dicts(states, names=[str(p) for p in inputs]))
    return save_weights(model, out, metadata={"arch": arch, "options": options,
                                              "soup": [str(p) for p in inputs]})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("inputs", type=Path, nargs="+")
    ap.add_argument("--arch", required=True)
    ap.add_argument("--options", default="{}", help="model options as JSON")
    args = ap.parse_args(argv)
    try:
        options = json.loads(args.options)
        if not isinstance(options, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        print(f"soup_weights: --options {args.options!r}: not a JSON object ({exc})", file=sys.stderr)
        return 2
    try:
        digest = soup(args.out, args.inputs, args.arch, options)
    except DeblurkitError as exc:
        print(f"soup_weights: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: average of {len(args.inputs)} weights, sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
