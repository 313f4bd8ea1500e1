"""Benchmarks: ``python -m fmnist_core bench {train,fast,predict,evaluate,app,tta} [--json]``.

Every target measures the project's way against the naive Keras way in the same invocation and
prints a table (``--json``: one JSON object on the last line). Results and method:
docs/PERFORMANCE.md.

- ``train``: images/s of the report's CNN. Naive = augmentation layers inside the model and
  ``model.fit`` on float arrays (batch 32, float32). Project = the tf.data pipeline of
  ``fmnist_core.pipeline`` (augmentation in a parallel map, prefetch) exactly as ``train.py`` uses
  it. Each variant runs in its own fresh process (same data, same model, same number of images);
  the headline compares the *same batch size* (32, the paper preset); ``best`` adds what the
  project's fastest setting does (bigger batches in bfloat16, as the ``fast`` preset trains).
- ``fast``: wall seconds from process start until the ``fast`` preset reaches 91% test accuracy.
- ``predict``: one photo through preprocessing and the model, vs ``model.predict``.
- ``evaluate``: test-set images/s with ``evaluate.predict_proba`` vs ``model.predict``.
- ``app``: ``streamlit run`` -> Home page rendered in headless Chromium -> first prediction.
- ``tta``: time to accuracy. For each preset, wall seconds from process start (data loading
  included) to 90 ... 95% test accuracy, scored at each epoch end outside the training clock, and
  the same figures as fractions of the faithful ``paper`` recipe's 20 epochs timed on a slice of
  this machine in the same invocation.
"""

from __future__ import annotations

import argparse
import importlib

# One module per benchmark, in the order ``bench --help`` lists them; each exposes
# ``register(sub)`` (adds its parser, ``set_defaults(func=run)``) and ``run(args) -> int``.
BENCHMARKS = ("train", "fast", "predict", "evaluate", "app", "tta", "inside", "teach")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bench`` and one sub-command per benchmark to the CLI's subparsers."""
    b = sub.add_parser("bench", help="measure speed against the naive Keras way (see docs/PERFORMANCE.md)")
    targets = b.add_subparsers(dest="target", required=True, metavar="{" + ",".join(BENCHMARKS) + "}")
    for name in BENCHMARKS:
        importlib.import_module(f"{__name__}.{name}").register(targets)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark chosen on the command line."""
    return importlib.import_module(f"{__name__}.{args.target}").run(args)
