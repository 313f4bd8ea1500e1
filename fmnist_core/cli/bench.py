"""``bench``: measure speed against the naive Keras way (the benchmarks live in fmnist_core/bench/)."""

from __future__ import annotations

import argparse

from .. import bench


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bench`` and its one sub-command per benchmark (``bench.BENCHMARKS``) to the CLI's subparsers."""
    bench.register(sub)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark chosen on the command line."""
    return bench.run(args)
