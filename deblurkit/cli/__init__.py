"""The ``deblurkit`` command line.

Each sub-command lives in its own module of this package exposing ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. The table below is explicit: a module is
imported only when its command runs, so ``deblurkit --help`` starts without importing torch.
Every :class:`deblurkit.errors.DeblurkitError` is printed as one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from ..errors import DeblurkitError

# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "deblur": ("deblurkit.cli.deblur", "deblur photos (files or folders) with a trained model"),
    "synth": ("deblurkit.cli.synth", "make a paired blurred/sharp dataset from sharp photos"),
    "deconv": ("deblurkit.cli.deconv", "non-blind deconvolution with a known kernel"),
    "metrics": ("deblurkit.cli.metrics", "PSNR / SSIM of predictions against ground truth"),
    "train": ("deblurkit.cli.train", "train a model from a YAML config"),
    "export": ("deblurkit.cli.export", "export a model to ONNX"),
    "kernel": ("deblurkit.cli.kernel", "estimate the blur kernel or motion field of a photo"),
}


def _available() -> dict[str, tuple[str, str]]:
    return {
        name: spec for name, spec in COMMANDS.items()
        if importlib.util.find_spec(spec[0]) is not None
    }


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = _available()
    top = argparse.ArgumentParser(
        prog="deblurkit",
        description="Blind image deblurring toolkit.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n" + "\n".join(f"  {n:<9} {h}" for n, (_, h) in commands.items()),
    )
    top.add_argument("--version", action="version", version=_version())
    top.add_argument("command", choices=sorted(commands), metavar="COMMAND",
                     help="one of: " + ", ".join(commands))
    if not argv or argv[0] in ("-h", "--help", "--version"):
        top.parse_args(argv)
        return 0
    if argv[0] not in commands:
        top.error(f"unknown command {argv[0]!r}; choose one of: {', '.join(commands)}")
    name = argv[0]
    module = importlib.import_module(commands[name][0])
    parser = argparse.ArgumentParser(prog=f"deblurkit {name}", description=commands[name][1])
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except DeblurkitError as exc:
        print(f"deblurkit {name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"deblurkit {name}: interrupted", file=sys.stderr)
        return 130


def _version() -> str:
    from .. import __version__

    return f"deblurkit {__version__}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
