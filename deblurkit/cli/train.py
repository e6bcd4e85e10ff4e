"""``deblurkit train CONFIG.yaml [--resume]``: train a model with the one engine."""

from __future__ import annotations

import argparse

HELP = "train a model from a YAML config"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML training config (see configs/)")
    parser.add_argument("--resume", action="store_true", help="continue from the run's latest checkpoint")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="stop this call after this step (the schedule still spans the config's steps)")
    parser.add_argument("--out-dir", default=None, help="run folder (default: runs/<name>)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from ..train.config import load_config
    from ..train.engine import train

    cfg = load_config(args.config)
    if args.out_dir:
        cfg = dataclasses.replace(cfg, out_dir=args.out_dir)
    result = train(cfg, resume=args.resume, max_steps=args.max_steps, progress=not args.no_progress)
    figures = ", ".join(f"{k}={v:.3f}" for k, v in result.val.items())
    print(f"{result.run_dir}: step {result.step}" + (f", {figures}" if figures else ""))
    return 0
