"""Predictions, confusion matrix, per-class report and the images behind each number.

The selection helpers work on plain arrays (no TensorFlow) so the Evaluate page answers clicks
from cached predictions.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

_TRACED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> traced forward pass
_TRACED_LOCK = threading.Lock()


def inference_fn(model):
    """The model's forward pass traced once as a ``tf.function`` (any batch size).

    Eager calls re-dispatch every layer from Python on each batch; the traced graph runs ~1.8x
    faster here and is shared by every caller of the same model object (thread-safe).
    """
    import tensorflow as tf

    with _TRACED_LOCK:
        fn = _TRACED.get(model)
        if fn is None:
            fn = tf.function(
                lambda x: model(x, training=False),
                input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)],
            )
            _TRACED[model] = fn
    return fn


def predict_proba(model, images_u8: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Softmax probabilities (N, 10) for uint8 images (N, 28, 28[, 1]).

    Runs the traced forward pass on fixed-size float batches: much faster than
    ``model.predict``, which builds a tf.data pipeline and a progress bar on every call.
    """
    x = images_u8.reshape(-1, 28, 28, 1)
    fn = inference_fn(model)
    out = []
    for i in range(0, len(x), batch_size):
        batch = x[i : i + batch_size].astype(np.float32) / 255.0
        out.append(np.asarray(fn(batch), dtype=np.float32))
    return np.concatenate(out) if out else np.zeros((0, 10), np.float32)


def log_loss(y: np.ndarray, probs: np.ndarray) -> float:
    """Mean sparse categorical cross-entropy, with Keras' clipping at 1e-7."""
    p = np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0)
    return float(-np.mean(np.log(p)))


def report(y: np.ndarray, probs: np.ndarray, class_names: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Test metrics from true labels and probabilities: accuracy, loss, confusion, per class."""
    from sklearn.metrics import classification_report, confusion_matrix

    y = np.asarray(y).astype(int)
    pred = probs.argmax(1)
    labels = list(range(len(class_names)))
    rep = classification_report(
        y, pred, labels=labels, target_names=list(class_names), output_dict=True, zero_division=0
    )
    per_class = {name: {k.replace("-score", ""): float(v) for k, v in rep[name].items()} for name in class_names}
    wrong = np.flatnonzero(pred != y)
    return {
        "test_accuracy": float(np.mean(pred == y)),
        "test_loss": log_loss(y, probs),
        "n_test": int(len(y)),
        "confusion_matrix": confusion_matrix(y, pred, labels=labels).astype(int).tolist(),
        "per_class": per_class,
        "macro_avg": {k.replace("-score", ""): float(v) for k, v in rep["macro avg"].items()},
        "weighted_avg": {k.replace("-score", ""): float(v) for k, v in rep["weighted avg"].items()},
        "misclassified": {
            "index": wrong.tolist(),
            "true": y[wrong].tolist(),
            "pred": pred[wrong].tolist(),
            "probs": np.round(probs[wrong], 4).tolist(),
        },
    }


def cell_indices(y_true: np.ndarray, probs: np.ndarray, true_class: int, pred_class: int) -> np.ndarray:
    """Indices of the images with that true and predicted class, most confident first."""
    pred = probs.argmax(1)
    idx = np.flatnonzero((np.asarray(y_true) == true_class) & (pred == pred_class))
    return idx[np.argsort(-probs[idx, pred_class], kind="stable")]


def filter_mistakes(
    y_true: np.ndarray,
    probs: np.ndarray,
    true_class: int | None = None,
    pred_class: int | None = None,
    conf_range: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray:
    """Misclassified indices matching the filters, most confident (most wrong) first."""
    pred = probs.argmax(1)
    conf = probs.max(1)
    keep = (pred != y_true) & (conf >= conf_range[0]) & (conf <= conf_range[1])
    if true_class is not None:
        keep &= y_true == true_class
    if pred_class is not None:
        keep &= pred == pred_class
    idx = np.flatnonzero(keep)
    return idx[np.argsort(-conf[idx], kind="stable")]


def most_confused(confusion: np.ndarray | list, k: int = 5) -> list[tuple[int, int, int]]:
    """The ``k`` largest off-diagonal cells as (true, predicted, count), largest first."""
    cm = np.array(confusion, dtype=int)
    off = cm.copy()
    np.fill_diagonal(off, -1)
    order = np.argsort(-off, axis=None, kind="stable")[:k]
    return [(int(i // cm.shape[1]), int(i % cm.shape[1]), int(off.flat[i])) for i in order if off.flat[i] > 0]


def row_normalise(confusion: np.ndarray | list) -> np.ndarray:
    """Confusion matrix as rates per true class (rows sum to 1; empty rows stay 0)."""
    cm = np.array(confusion, dtype=float)
    sums = cm.sum(1, keepdims=True)
    return np.divide(cm, sums, out=np.zeros_like(cm), where=sums > 0)


def file_fingerprint(path: Path) -> str:
    """SHA-256 of a file's bytes: the cache key of its predictions."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def scores_cache_dir() -> Path:
    """Where test-set scores are kept between server starts: ``$FMNIST_CACHE_DIR/scores`` or
    ``~/.cache/fmnist-studio/scores``."""
    base = os.environ.get("FMNIST_CACHE_DIR") or Path.home() / ".cache" / "fmnist-studio"
    return Path(base) / "scores"


def _scores_path(fingerprint: str, dataset: str) -> Path:
    if not all(c in "0123456789abcdef" for c in fingerprint) or not dataset.isalnum():
        raise ValueError("fingerprint must be hex and dataset alphanumeric")
    return scores_cache_dir() / f"{fingerprint}-{dataset}.npy"


def load_scores(fingerprint: str, dataset: str, n: int) -> np.ndarray | None:
    """The saved (n, classes) test probabilities of the model with this SHA-256, or None.

    A file of the wrong shape, or one that cannot be read, counts as absent (it is rewritten)."""
    path = _scores_path(fingerprint, dataset)  # a bad name is the caller's error: raise
    try:
        probs = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    return probs if probs.ndim == 2 and len(probs) == n and probs.dtype == np.float32 else None


def save_scores(fingerprint: str, dataset: str, probs: np.ndarray) -> None:
    """Keep test probabilities for the next server start (atomic; a failure to write is harmless)."""
    path = _scores_path(fingerprint, dataset)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".scores.", suffix=".npy", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            np.save(f, np.asarray(probs, dtype=np.float32), allow_pickle=False)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home only costs the next start a recomputation


def score_in_batches(
    probabilities: Callable[[np.ndarray], np.ndarray],
    images_u8: np.ndarray,
    batch_size: int = 1000,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """``probabilities`` over ``images_u8`` in batches, calling ``progress(done, total)`` after each."""
    out = []
    for i in range(0, len(images_u8), batch_size):
        out.append(np.asarray(probabilities(images_u8[i : i + batch_size]), dtype=np.float32))
        if progress is not None:
            progress(min(i + batch_size, len(images_u8)), len(images_u8))
    return np.concatenate(out) if out else np.zeros((0, 10), np.float32)


def top_k(probs: np.ndarray, class_names: list[str] | tuple[str, ...], k: int = 3) -> list[tuple[str, float]]:
    """The ``k`` most probable classes of one image as (name, probability), highest first."""
    order = np.argsort(-np.asarray(probs), kind="stable")[:k]
    return [(class_names[i], float(probs[i])) for i in order]


def caption(true_class: int, probs: np.ndarray, class_names: list[str] | tuple[str, ...]) -> str:
    """The gallery caption of one test image: ``true: X / pred: Y (p%)``."""
    pred = int(np.argmax(probs))
    return f"true: {class_names[true_class]} / pred: {class_names[pred]} ({probs[pred]:.0%})"


def cell_from_point(point: dict[str, Any], n_classes: int = 10) -> tuple[int, int] | None:
    """The (true, predicted) cell of one point of a Plotly click on the confusion matrix.

    The page draws the matrix with rows = true class on y and columns = predicted class on x,
    both as integer positions, plus one invisible scatter point per cell in row-major order.
    A selection point carries ``x``/``y`` (preferred) or only ``point_index``; anything else,
    or a position outside the matrix, gives None.
    """
    x, y = point.get("x"), point.get("y")
    if isinstance(x, int | float) and isinstance(y, int | float):
        r, c = int(round(y)), int(round(x))
    elif isinstance(point.get("point_index"), int):
        r, c = divmod(point["point_index"], n_classes)
    else:
        return None
    return (r, c) if 0 <= r < n_classes and 0 <= c < n_classes else None


def worst_classes(per_class: dict[str, dict[str, float]], k: int = 3, metric: str = "f1") -> list[str]:
    """Names of the ``k`` classes with the lowest ``metric`` (ties keep class order)."""
    names = list(per_class)
    return sorted(names, key=lambda n: (per_class[n][metric], names.index(n)))[:k]


def page_of(indices: np.ndarray, page: int, per_page: int) -> tuple[np.ndarray, int]:
    """The ``page``-th slice (0-based, clamped to the last page) and the number of pages."""
    pages = max(1, -(-len(indices) // per_page))
    page = min(max(page, 0), pages - 1)
    return indices[page * per_page : (page + 1) * per_page], pages


def enlarge(image_u8: np.ndarray, size: int = 112):
    """A 28x28 uint8 image as a ``size`` x ``size`` PIL image with sharp pixels (no blur)."""
    from PIL import Image

    return Image.fromarray(np.asarray(image_u8, dtype=np.uint8).reshape(28, 28), mode="L").resize(
        (size, size), Image.Resampling.NEAREST
    )
