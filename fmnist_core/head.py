"""The photo head: a small classifier on the backbone's ``fc`` features, taught on real photos.

The Fashion-MNIST CNN (the backbone) learns only from product shots; a phone photo of a T-shirt
lying on a bed is a view it never saw. Its penultimate layer (``fc``) still holds what is needed:
a multinomial logistic regression on those features, taught on labelled photos, answers far more
photos right (docs/PHOTOS.md). The head has 11 outputs: the ten classes and index 10, "none of
the ten" (taught by photos of hats, skirts, shorts). Classes without photos (Bag, Sandal, Ankle
boot in clothing-dev) are taught by Fashion-MNIST images mixed in with a small weight, so the
head still answers all ten.

A head is two files: ``NAME.npz`` (standardisation, weights, decision rule) and ``NAME.json``
(its card: what taught it, how many photos, its cross-validated figures, the command). Shipped
heads live in ``models/`` beside their backbone; heads taught by a class in ``heads_dir()``.

A head's features may come from a copy of the backbone fine-tuned on the photos rather than from
the backbone itself: its card then names that copy (``feature_model``, a ``.keras`` file in
``models/feature_models/``), or several copies whose features it reads side by side, while the
backbone's own answer stays the CNN taught on Fashion-MNIST only.
"""

from __future__ import annotations

import json
import os
import tempfile
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import ood
from .classes import class_names
from .registry import MODELS_DIR, NAME_RE
from .runs import PROJECT_ROOT

NONE = 10  # the head's 11th output: none of the ten classes
N_OUTPUTS = 11
NONE_NAME = "None of the ten"
HEAD_FORMAT = 1
HEADS_ENV = "FMNIST_HEADS_DIR"
FEATURE_MODELS = "feature_models"  # models/feature_models/NAME.keras: fine-tuned CNNs that heads read features from
MAX_HEAD_BYTES = 64 * 2**20  # a head is ~20 kB; anything this big is not one of ours


class HeadError(RuntimeError):
    """A head file is missing, damaged or does not fit the backbone; the message says what to do."""


def output_names() -> tuple[str, ...]:
    """The names of the head's 11 outputs: the ten Fashion-MNIST classes and "None of the ten"."""
    return (*class_names("fashion"), NONE_NAME)


# ---------------------------------------------------------------- features

_FEATURE_FNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def head_features(model, x28_u8: np.ndarray, scale: float = 1.0 / 255.0) -> np.ndarray:
    """(n, d) float32 ``fc`` features of prepared 28x28 uint8 inputs (light on dark), as the head sees them.

    The traced feature function is built once per loaded model (building it costs more than a call).
    """
    fns = _FEATURE_FNS.setdefault(model, {})
    if scale not in fns:
        fns[scale] = ood.feature_function(model, scale)
    return fns[scale](np.asarray(x28_u8, np.uint8).reshape(-1, 28, 28))


# ---------------------------------------------------------------- the head


@dataclass(frozen=True)
class PhotoHead:
    """Standardisation + multinomial logistic regression over 11 outputs, and the rule for "none".

    ``none_threshold``: the input is none of the ten when the "none" output has at least this
    probability. ``distance_factor``: also none when a segmented photo lies farther than this
    multiple of the answered garment class's limit from its Fashion-MNIST training images
    (``ood``; the backbone's own rule); None switches that test off.
    """

    mean: np.ndarray  # (d,)
    scale: np.ndarray  # (d,)
    coef: np.ndarray  # (11, d)
    intercept: np.ndarray  # (11,)
    none_threshold: float = 0.5
    distance_factor: float | None = None
    card: dict[str, Any] = field(default_factory=dict)
    # The CNN's own last layer (its ``probs`` weights, (d, 10) and (10,)) and how much its opinion
    # re-weights the head's ten classes (``with_prior``); 0 = the head alone.
    prior_coef: np.ndarray | None = None
    prior_intercept: np.ndarray | None = None
    prior_weight: float = 0.0

    @property
    def n_features(self) -> int:
        return int(self.coef.shape[1])

    def logits(self, features: np.ndarray) -> np.ndarray:
        """(n, 11) scores before the softmax; an output never taught has -inf."""
        z = (np.asarray(features, np.float64) - self.mean) / self.scale
        return z @ self.coef.T + self.intercept

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(n, 11) probabilities: the ten classes, then "none of the ten" at index 10."""
        f = np.asarray(features, np.float64)
        if f.ndim != 2 or f.shape[1] != self.n_features:
            raise HeadError(f"the head expects {self.n_features} features per row, got shape {f.shape}")
        s = self.logits(f)
        s = np.exp(s - s.max(1, keepdims=True))
        p = s / s.sum(1, keepdims=True)
        if self.prior_weight and self.prior_coef is not None:
            p = with_prior(p, log_softmax(f @ self.prior_coef + self.prior_intercept), self.prior_weight)
        return p.astype(np.float32)

    def reason(self, probs11: np.ndarray, distance: float | None = None) -> str | None:
        """Why this answer is "none of the ten", or None if the head names one of the ten classes.

        ``distance``: the photo's feature distance to the answered class as a multiple of its limit
        (``Predictor.distances``), None where the photo was not segmented or there are no statistics.
        """
        p = np.asarray(probs11, np.float64)
        if p[NONE] >= self.none_threshold:
            return f"the photo head says none of the ten with {p[NONE]:.0%} probability"
        index = int(np.argmax(p[:NONE]))
        factor = self.distance_factor
        if factor is not None and distance is not None and index in DISTANCE_CLASSES and distance > factor:
            return (
                f"it lies far from every {class_names('fashion')[index]} the CNN trained on: {distance:.2f}x "
                f"the feature-space distance that 99% of them stay within (beyond {self.distance_factor:.2f}x "
                "counts as none)"
            )
        return None

    def decide(self, probs11: np.ndarray, distances: np.ndarray | None = None) -> np.ndarray:
        """(n,) answers for (n, 11) probabilities: a class 0-9, or 10 for "none of the ten"."""
        p = np.asarray(probs11, np.float64)
        out = p[:, :NONE].argmax(1)
        none = p[:, NONE] >= self.none_threshold
        if self.distance_factor is not None and distances is not None:
            d = np.asarray(distances, np.float64)
            none |= np.isin(out, DISTANCE_CLASSES) & (np.nan_to_num(d, nan=0.0) > self.distance_factor)
        return np.where(none, NONE, out)


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log of the softmax, computed stably."""
    z = np.asarray(z, np.float64)
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def with_prior(probs11: np.ndarray, cnn_log_probs: np.ndarray, weight: float) -> np.ndarray:
    """The head's ten classes re-weighted by the CNN's own probabilities to the power ``weight``
    (its "none" probability kept): where photos taught little (Bag, Sandal, Ankle boot, product
    shots), the CNN's opinion still counts."""
    p = np.asarray(probs11, np.float64)
    ten = np.log(np.maximum(p[:, :NONE], 1e-30)) + weight * cnn_log_probs
    ten = np.exp(ten - ten.max(1, keepdims=True))
    ten = ten / ten.sum(1, keepdims=True) * (1.0 - p[:, NONE : NONE + 1])
    return np.concatenate([ten, p[:, NONE:]], axis=1)


# The garment classes the backbone's distance rule applies to (predict.DISTANCE_CLASSES): shoes and
# bags photographed by phone lie as far from the dataset's views as hats do, so they are exempt.
DISTANCE_CLASSES = (0, 1, 2, 3, 4, 6)


def fit_head(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    C: float = 0.01,  # noqa: N803 - scikit-learn's name for the inverse regularisation
    class_weight: str | None = None,
    sample_weight: np.ndarray | None = None,
    extra_features: np.ndarray | None = None,
    extra_labels: np.ndarray | None = None,
    extra_weight: float = 0.0,
    none_threshold: float = 0.5,
    distance_factor: float | None = None,
    max_iter: int = 2000,
    prior: tuple[np.ndarray, np.ndarray] | None = None,
    prior_weight: float = 0.0,
    card: dict[str, Any] | None = None,
    start: PhotoHead | None = None,
) -> PhotoHead:
    """Fit a head on labelled feature rows (labels 0-9, or 10 for "none of the ten").

    ``extra_*``: rows that always teach with weight ``extra_weight`` each (Fashion-MNIST images,
    so classes without photos are still answered). ``class_weight="balanced"`` weights every
    label of the photo rows the same in total. Outputs with no rows at all are never answered.
    ``start``: a head of the same features to start the solver from (the same optimum, reached in
    a few iterations when the rows differ from ``start``'s by a few photos: teach.py's folds).
    """
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    x = np.asarray(features, np.float64)
    y = np.asarray(labels).astype(int)
    if x.ndim != 2 or len(x) != len(y):
        raise HeadError(f"features {x.shape} and labels {y.shape} do not match")
    if len(y) and (y.min() < 0 or y.max() >= N_OUTPUTS):
        raise HeadError(f"labels must be 0-{N_OUTPUTS - 1}, got {sorted(set(y.tolist()))}")
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    if class_weight == "balanced" and len(y):
        counts = np.bincount(y, minlength=N_OUTPUTS).astype(np.float64)
        w = w * (len(y) / (np.count_nonzero(counts) * counts[y]))
    elif class_weight not in (None, "none"):
        raise HeadError(f"class_weight must be None or 'balanced', not {class_weight!r}")
    if extra_features is not None and extra_weight > 0 and len(extra_features):
        x = np.concatenate([x, np.asarray(extra_features, np.float64)])
        y = np.concatenate([y, np.asarray(extra_labels).astype(int)])
        w = np.concatenate([w, np.full(len(extra_features), float(extra_weight))])
    taught = np.unique(y)
    if len(taught) < 2:
        raise HeadError("a head needs photos of at least two classes")
    mean = x.mean(0)
    scale = x.std(0)
    scale[scale < 1e-6] = 1.0  # dead ReLU units: constant features carry nothing
    lr = LogisticRegression(C=C, max_iter=max_iter)
    # Two classes keep one row in scikit-learn and balanced weights move the optimum far: from zero.
    if start is not None and start.n_features == x.shape[1] and len(taught) >= 3 and class_weight in (None, "none"):
        # logits = ((f - m0) / s0) W0' + b0 = ((f - m1) / s1) (W0 s1 / s0)' + ((m1 - m0) / s0) W0' + b0
        lr.warm_start = True
        lr.coef_ = start.coef[taught] * (scale / start.scale)
        lr.intercept_ = np.nan_to_num(
            start.intercept[taught] + ((mean - start.mean) / start.scale) @ start.coef[taught].T, neginf=0.0
        )
    # One thread for BLAS and OpenMP: threaded, these small fits ran 5-10x slower on 2 cores shared
    # with TensorFlow (docs/TEACH.md); threadpoolctl comes with scikit-learn.
    with threadpool_limits(1):
        lr.fit((x - mean) / scale, y, sample_weight=w)
    coef = np.zeros((N_OUTPUTS, x.shape[1]))
    intercept = np.full(N_OUTPUTS, -np.inf)
    if len(lr.classes_) == 2:  # scikit-learn keeps one row for two classes: make it a softmax pair
        coef[lr.classes_[1]], intercept[lr.classes_[1]] = lr.coef_[0] / 2, lr.intercept_[0] / 2
        coef[lr.classes_[0]], intercept[lr.classes_[0]] = -lr.coef_[0] / 2, -lr.intercept_[0] / 2
    else:
        coef[lr.classes_], intercept[lr.classes_] = lr.coef_, lr.intercept_
    choices = {
        "C": C,
        "class_weight": class_weight,
        "extra_weight": extra_weight if extra_features is not None else 0.0,
        "none_threshold": none_threshold,
        "distance_factor": distance_factor,
        "prior_weight": prior_weight if prior is not None else 0.0,
    }
    full_card = {"choices": choices, "rows": int(len(labels)), "extra_rows": int(len(x) - len(labels))}
    full_card.update(card or {})
    pc, pi = (None, None) if prior is None else (np.asarray(prior[0], np.float64), np.asarray(prior[1], np.float64))
    weight = float(prior_weight) if prior is not None else 0.0
    return PhotoHead(mean, scale, coef, intercept, float(none_threshold), distance_factor, full_card, pc, pi, weight)


# ---------------------------------------------------------------- cross-validation


def cross_validate(
    features: np.ndarray,
    labels: np.ndarray,
    k: int = 5,
    seed: int = 0,
    distances: np.ndarray | None = None,
    fit: Callable[..., PhotoHead] = fit_head,
    **choices: Any,
) -> dict[str, Any]:
    """Stratified k-fold cross-validation of ``fit(features, labels, **choices)``: every row is
    scored by a head that never saw it.

    Returns ``probabilities`` (n, 11) and ``answers`` (n,) out of fold, ``folds`` (the fold that
    scored each row), ``accuracy`` (mean over folds) with ``accuracy_std`` and ``fold_accuracy``,
    ``per_class`` accuracy (label -> share right) and ``wrong`` (row indices answered wrong).
    ``k`` drops to the size of the smallest class (at least 2). ``distances``: per row, for the
    distance rule (``PhotoHead.decide``).
    """
    from sklearn.model_selection import StratifiedKFold

    x = np.asarray(features)
    y = np.asarray(labels).astype(int)
    counts = np.bincount(y, minlength=N_OUTPUTS)
    smallest = int(counts[counts > 0].min()) if len(y) else 0
    if smallest < 2:
        raise HeadError("every class needs at least 2 photos for cross-validation (3 or more to teach)")
    k = max(2, min(int(k), smallest))
    probs = np.zeros((len(y), N_OUTPUTS), np.float32)
    answers = np.zeros(len(y), int)
    folds = np.full(len(y), -1)
    fold_acc = []
    for i, (train, test) in enumerate(StratifiedKFold(k, shuffle=True, random_state=seed).split(x, y)):
        head = fit(x[train], y[train], **choices)
        probs[test] = head.probabilities(x[test])
        answers[test] = head.decide(probs[test], None if distances is None else np.asarray(distances)[test])
        folds[test] = i
        fold_acc.append(float(np.mean(answers[test] == y[test])))
    per_class = {int(c): float(np.mean(answers[y == c] == c)) for c in np.unique(y)}
    return {
        "k": k,
        "seed": seed,
        "probabilities": probs,
        "answers": answers,
        "folds": folds,
        "accuracy": float(np.mean(fold_acc)),
        "accuracy_std": float(np.std(fold_acc)),
        "fold_accuracy": fold_acc,
        "per_class": per_class,
        "wrong": np.flatnonzero(answers != y),
    }


# ---------------------------------------------------------------- files


def card_path(path: Path) -> Path:
    """The JSON card beside a head's ``.npz``."""
    return Path(path).with_suffix(".json")


def _atomic_write(path: Path, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Write through a temp file in the same folder, then ``os.replace``: never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            write(fh)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a head is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_head(head: PhotoHead, path: Path) -> None:
    """Write ``path`` (.npz: arrays and rule) and its card (.json beside it), each atomically."""
    path = Path(path)
    arrays = {
        "format": np.array(HEAD_FORMAT),
        "mean": head.mean.astype(np.float32),
        "scale": head.scale.astype(np.float32),
        "coef": head.coef.astype(np.float32),
        "intercept": head.intercept.astype(np.float32),
        "none_threshold": np.array(head.none_threshold, np.float32),
        "distance_factor": np.array(np.nan if head.distance_factor is None else head.distance_factor, np.float32),
        "prior_weight": np.array(head.prior_weight, np.float32),
    }
    card = {"format": HEAD_FORMAT, "outputs": list(output_names()), "n_features": head.n_features, **head.card}
    if head.prior_coef is not None and head.prior_intercept is not None:
        arrays.update(
            prior_coef=head.prior_coef.astype(np.float32), prior_intercept=head.prior_intercept.astype(np.float32)
        )
    _atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays))
    text = json.dumps(card, indent=2, default=_jsonable) + "\n"
    _atomic_write(card_path(path), lambda fh: fh.write(text), "w")


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def load_head(path: Path) -> PhotoHead:
    """Read a head saved by ``save_head``; any missing, damaged or foreign file is a ``HeadError``."""
    path = Path(path)
    how = "re-teach it (python -m fmnist_core teach) or restore the file"
    if not path.is_file():
        raise HeadError(f"head file {path} does not exist; {how}")
    if path.stat().st_size > MAX_HEAD_BYTES:
        raise HeadError(f"{path} is larger than {MAX_HEAD_BYTES // 2**20} MB, not a head; {how}")
    try:
        with np.load(path, allow_pickle=False) as z:
            fmt = int(z["format"])
            mean, scale, coef, intercept = (
                np.asarray(z[k], np.float64) for k in ("mean", "scale", "coef", "intercept")
            )
            threshold, factor = float(z["none_threshold"]), float(z["distance_factor"])
            weight = float(z["prior_weight"]) if "prior_weight" in z.files else 0.0
            pc = np.asarray(z["prior_coef"], np.float64) if "prior_coef" in z.files else None
            pi = np.asarray(z["prior_intercept"], np.float64) if "prior_intercept" in z.files else None
    except Exception as exc:  # noqa: BLE001 - zip, npy and key errors all mean "damaged"
        raise HeadError(f"{path} is damaged ({type(exc).__name__}: {_flat(exc)}); {how}") from None
    if fmt != HEAD_FORMAT:
        raise HeadError(f"{path} has head format {fmt}, this version reads {HEAD_FORMAT}; {how}")
    d = mean.shape[0] if mean.ndim == 1 else -1
    if d < 1 or scale.shape != (d,) or coef.shape != (N_OUTPUTS, d) or intercept.shape != (N_OUTPUTS,):
        raise HeadError(f"{path} has arrays of the wrong shapes; {how}")
    if not (np.isfinite(mean).all() and np.isfinite(coef).all() and (scale > 0).all()):
        raise HeadError(f"{path} holds non-finite weights; {how}")
    try:
        card = json.loads(card_path(path).read_text())
        if not isinstance(card, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        raise HeadError(f"the card {card_path(path)} is missing or damaged ({_flat(exc)}); {how}") from None
    if weight and (pc is None or pi is None or pc.shape != (d, NONE) or pi.shape != (NONE,)):
        raise HeadError(f"{path} has a damaged prior (the CNN's last layer); {how}")
    return PhotoHead(
        mean, scale, coef, intercept, threshold, None if np.isnan(factor) else factor, card, pc, pi, weight
    )


def _flat(exc: BaseException) -> str:
    """An exception's text on one short line."""
    return " ".join(str(exc).split())[:160]


def feature_model_paths(card: dict[str, Any], models_dir: Path | None = None) -> tuple[Path, ...]:
    """The ``.keras`` files a head reads its ``fc`` features from, in order; () when that is its backbone.

    The card's ``feature_model`` names ``models/feature_models/NAME.keras`` (a CNN fine-tuned on the
    photos the head was taught on), or a list of such names: the head then reads the features of
    each, side by side. A missing file or an odd name is a ``HeadError``.
    """
    names = card.get("feature_model")
    if not names:
        return ()
    if not isinstance(names, list):
        names = [names]
    for name in names:
        if not isinstance(name, str) or not NAME_RE.fullmatch(name) or ".." in name:
            raise HeadError(f"the head's card names an invalid feature model {name!r}")
    paths = [Path(models_dir or MODELS_DIR) / FEATURE_MODELS / f"{name}.keras" for name in names]
    for path in paths:
        if not path.is_file() or path.is_symlink():
            raise HeadError(
                f"the head reads its features from {path}, which is missing; restore models/ from the repository "
                "or use --head none"
            )
    return tuple(paths)


def heads_dir() -> Path:
    """Where taught heads live: ``$FMNIST_HEADS_DIR``, else ``<project>/heads``."""
    env = os.environ.get(HEADS_ENV)
    return Path(env) if env else PROJECT_ROOT / "heads"


def resolve_head(name: str, models_dir: Path | None = None, heads_root: Path | None = None) -> Path:
    """The ``.npz`` of the head called ``name``: a shipped one (``models/NAME.npz``) first, then a
    taught one (``heads_dir()/NAME/head.npz``). A path to an ``.npz`` file is taken as it is."""
    if not isinstance(name, str) or not name or "\0" in name:
        raise HeadError(f"invalid head name {name!r}")
    if name.endswith(".npz") and Path(name).is_file():
        return Path(name)
    if not NAME_RE.fullmatch(name) or ".." in name:
        raise HeadError(f"invalid head name {name!r}: use 1-80 letters, digits, '_', '-' or '.'")
    shipped = Path(models_dir or MODELS_DIR) / f"{name}.npz"
    if shipped.is_file() and not shipped.is_symlink():
        return shipped
    taught = Path(heads_root or heads_dir()) / name / "head.npz"
    if taught.is_file():
        return taught
    raise HeadError(f"no head {name!r} in {shipped.parent} or {taught.parent.parent}; teach it or use --head none")
