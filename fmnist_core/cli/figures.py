"""``figures``: PNG curves and confusion matrix from model JSON files (for docs)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import EXIT_ERROR


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``figures`` to the CLI's subparsers."""
    p = sub.add_parser("figures", help="PNG curves and confusion matrix from model JSON files (for docs)")
    p.add_argument("results", nargs="+", help="models/NAME.json, NAME.keras or a run's run.json")
    p.add_argument("--out", default="docs/figures")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the curves and confusion-matrix PNGs of each result file; print their paths."""
    from ..figures import confusion_png, curves_png

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for meta in args.results:
        path = Path(meta)
        if path.suffix == ".keras":
            path = path.with_suffix(".json")
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            print(f"error: cannot read {path}: {exc}", file=sys.stderr)
            return EXIT_ERROR
        stem = path.stem if path.name != "run.json" else path.parent.name
        title = f"{stem}: test accuracy {result['test_accuracy']:.2%}"
        for fig in (
            curves_png(result, out / f"{stem}_curves.png", title),
            confusion_png(result, out / f"{stem}_confusion.png", title),
        ):
            print(fig)
    return 0
