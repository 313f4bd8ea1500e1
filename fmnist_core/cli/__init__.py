"""Command line: ``python -m fmnist_core COMMAND ... [--json]``, one module per command.

Commands: data, train, estimate, evaluate, features, predict, photos, runs, sweep, figures,
inside, teach, export, bench (``python -m fmnist_core --help`` lists them with one line each). Presets for train,
estimate and sweep: paper, fast, best, photo.

Each ``fmnist_core.cli.<name>`` module exposes ``register(sub)`` (adds its parser and
``set_defaults(func=run)``) and ``run(args) -> int``; ``COMMANDS`` lists them in the order
``--help`` shows. Errors the user can fix print one line to stderr and exit non-zero, never a
traceback; TensorFlow's start-up lines are kept off stderr for every command (common.py).
"""

from __future__ import annotations

import argparse
import importlib

from .common import quiet_tensorflow_imports

COMMANDS = (
    "data",
    "train",
    "estimate",
    "evaluate",
    "features",
    "predict",
    "photos",
    "runs",
    "sweep",
    "figures",
    "inside",
    "teach",
    "export",
    "bench",
)


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m fmnist_core`` parser with every command of ``COMMANDS``."""
    p = argparse.ArgumentParser(prog="python -m fmnist_core", description="Fashion-MNIST CNN Studio command line")
    sub = p.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: the process's arguments), run the command, return its exit code."""
    args = build_parser().parse_args(argv)
    quiet_tensorflow_imports()  # before any command can import TensorFlow
    return args.func(args)
