"""Two models side by side: accuracy, per-class deltas and where their confusion matrices differ.

Works on the dictionaries ``evaluate.report`` returns (or the same keys in ``run.json``), so it
needs no model and no TensorFlow.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def compare_reports(a: dict[str, Any], b: dict[str, Any], k: int = 5) -> dict[str, Any]:
    """What changes from model A to model B.

    Returns ``accuracy_a``, ``accuracy_b``, ``accuracy_delta`` (B - A), ``loss_delta``,
    ``per_class`` (one row per class: precision/recall/f1 of A and B and the f1/recall deltas),
    ``confusion_diff`` (B's counts minus A's; positive off the diagonal = B makes that mistake
    more often) and ``biggest_changes``: the ``k`` off-diagonal cells with the largest absolute
    change as (true, predicted, change).
    """
    names = list(a["per_class"])
    if names != list(b["per_class"]):
        raise ValueError("the two models do not have the same classes")
    rows = []
    for n in names:
        pa, pb = a["per_class"][n], b["per_class"][n]
        rows.append(
            {
                "class": n,
                "f1_a": pa["f1"],
                "f1_b": pb["f1"],
                "f1_delta": pb["f1"] - pa["f1"],
                "recall_a": pa["recall"],
                "recall_b": pb["recall"],
                "recall_delta": pb["recall"] - pa["recall"],
                "precision_delta": pb["precision"] - pa["precision"],
            }
        )
    diff = np.array(b["confusion_matrix"], dtype=int) - np.array(a["confusion_matrix"], dtype=int)
    off = np.abs(diff)
    np.fill_diagonal(off, -1)
    order = np.argsort(-off, axis=None, kind="stable")[:k]
    n = diff.shape[1]
    changes = [(int(i // n), int(i % n), int(diff.flat[i])) for i in order if off.flat[i] > 0]
    return {
        "accuracy_a": float(a["test_accuracy"]),
        "accuracy_b": float(b["test_accuracy"]),
        "accuracy_delta": float(b["test_accuracy"] - a["test_accuracy"]),
        "loss_delta": float(b["test_loss"] - a["test_loss"]),
        "per_class": rows,
        "confusion_diff": diff,
        "biggest_changes": changes,
    }
