"""``python -m fmnist_core export MODEL --format onnx|litert|keras [--quantize [dynamic|int8]] --out PATH``.

Writes one zip (the model file, its JSON card, PREPROCESSING.txt and an example script) and
prints progress lines on stderr; with ``--json`` the card's export section goes to stdout.
A bad model, format, tool or destination is one line on stderr and exit 1, nothing written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..export import FORMATS, QUANTIZE, ExportError, export

EXIT_ERROR = 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    p = sub.add_parser("export", help="export a model as ONNX, LiteRT or Keras, with its preprocessing contract")
    p.add_argument("model", help="shipped name, run id or .keras path")
    # No argparse choices: a wrong value gets the core's one line, not a usage block.
    p.add_argument("--format", required=True, dest="fmt", help=" | ".join(FORMATS))
    p.add_argument(
        "--quantize",
        nargs="?",
        const="dynamic",
        metavar="|".join(QUANTIZE),
        help="LiteRT only: 'dynamic' (int8 weights; the default) or 'int8' (weights and activations)",
    )
    p.add_argument("--out", required=True, type=Path, help="the .zip to write (or a folder to write it into)")
    p.add_argument("--json", action="store_true", help="print the card's export section as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export as asked; progress and errors on stderr, one line each."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # TensorFlow and the converters write C++ logs straight to file descriptor 2: send those to
    # /dev/null and keep our own lines on a copy of the real stderr (FMNIST_DEBUG keeps them all).
    quiet = not os.environ.get("FMNIST_DEBUG")
    sys.stderr.flush()
    saved = os.dup(2)
    err = os.fdopen(os.dup(2), "w", buffering=1)
    if quiet:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    try:
        path, card = export(args.model, args.fmt, args.out, args.quantize, progress=lambda m: print(m, file=err))
    except ExportError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=err)
        err.close()
        return EXIT_ERROR
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    check = card.get("check") or {}
    line = f"wrote {path} ({path.stat().st_size / 2**20:.1f} MB)"
    if check:
        line += (
            f"; {check['same_class']:,} of {check['test_images']:,} test images get the Keras class, "
            f"probabilities within {check['max_probability_difference']:.1e}"
        )
    if "accuracy_change_points" in check:
        line += (
            f"; test accuracy {check['test_accuracy_quantized']:.2%} ({check['accuracy_change_points']:+.2f} points)"
        )
    print(line, file=err)
    err.close()
    if args.json:
        print(json.dumps({"path": str(path), **card}, default=str))
    return 0
