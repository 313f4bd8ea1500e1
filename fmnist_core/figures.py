"""Static figures for the docs (training curves, confusion matrix) from a run.json.

The app draws interactive Plotly charts; these PNGs are for docs/REPRODUCTION.md and are made
by ``python -m fmnist_core figures MODEL_JSON... --out docs/figures``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in CI
    import matplotlib.pyplot as plt

    return plt


def curves_png(result: dict[str, Any], path: Path, title: str) -> Path:
    """Training vs validation accuracy and loss per epoch, side by side (like the report's Fig. 1-2)."""
    plt = _plt()
    hist = result["history"]
    ep = [h["epoch"] for h in hist]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=110)
    a1.plot(ep, [h["accuracy"] for h in hist], "o-", label="training")
    a1.plot(ep, [h["val_accuracy"] for h in hist], "s-", label="validation")
    a1.axhline(result["test_accuracy"], color="grey", ls="--", lw=1, label=f"test {result['test_accuracy']:.2%}")
    a1.set(xlabel="epoch", ylabel="accuracy", title="Model accuracy")
    a2.plot(ep, [h["loss"] for h in hist], "o-", label="training")
    a2.plot(ep, [h["val_loss"] for h in hist], "s-", label="validation")
    a2.set(xlabel="epoch", ylabel="loss", title="Model loss")
    best = result.get("best_epoch")
    from matplotlib.ticker import MaxNLocator

    for ax in (a1, a2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if best:
            ax.axvline(best, color="green", ls=":", lw=1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def confusion_png(result: dict[str, Any], path: Path, title: str) -> Path:
    """The confusion matrix with counts, class names on both axes."""
    plt = _plt()
    cm = np.array(result["confusion_matrix"])
    names = result["class_names"]
    fig, ax = plt.subplots(figsize=(7.5, 6.5), dpi=110)
    im = ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    thresh = cm.max() / 2
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(
                j,
                i,
                str(cm[i, j]),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if cm[i, j] > thresh else "black",
            )
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
