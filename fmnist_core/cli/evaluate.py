"""``evaluate``: test accuracy, loss and per-class report of a model."""

from __future__ import annotations

import argparse
import sys
import time

from .common import EXIT_ERROR, add_json_flag, emit, progress


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``evaluate`` to the CLI's subparsers."""
    p = sub.add_parser("evaluate", help="test accuracy, loss and per-class report of a model")
    p.add_argument("model", nargs="?", help="shipped name, run id or .keras path (default: paper model)")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Test accuracy, loss and the per-class report of a model."""
    from ..data import DataError, load_dataset
    from ..evaluate import predict_proba, report
    from ..registry import ModelError, load_model, model_class_names, resolve

    try:
        ref = resolve(args.model)
        names = model_class_names(ref)
        dataset = ref.meta().get("dataset", "fashion")
        model = load_model(ref.path)
        ds = load_dataset(dataset)
    except (ModelError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    t0 = time.time()
    probs = []
    n, step = len(ds.x_test), 1000
    for i in range(0, n, step):
        probs.append(predict_proba(model, ds.x_test[i : i + step]))
        if not args.json:
            progress(min(i + step, n), n, "evaluating")
    import numpy as np

    rep = report(ds.y_test, np.concatenate(probs), names)
    seconds = time.time() - t0
    out = {
        "model": str(ref.path),
        "dataset": dataset,
        "test_accuracy": rep["test_accuracy"],
        "test_loss": rep["test_loss"],
        "n_test": rep["n_test"],
        "per_class": rep["per_class"],
        "macro_avg": rep["macro_avg"],
        "confusion_matrix": rep["confusion_matrix"],
        "seconds": round(seconds, 2),
        "images_per_s": round(n / seconds, 1),
    }
    if args.json:
        emit(out)
        return 0
    print(
        f"{ref.path}: test accuracy {out['test_accuracy']:.2%}, loss {out['test_loss']:.4f} "
        f"({n:,} images, {out['images_per_s']:,.0f} images/s)"
    )
    print(f"  {'class':12s} precision recall    f1 support")
    for name, m in out["per_class"].items():
        print(f"  {name:12s} {m['precision']:9.3f} {m['recall']:6.3f} {m['f1']:5.3f} {int(m['support']):7d}")
    return 0
