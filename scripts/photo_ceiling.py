"""What blocks issue 12's strict / lenient targets: a diagnostic, nothing here is shipped.

The shipped photo model is taught on Fashion-MNIST only (the issue's rule: the dev photos must
not train shipped weights). This script asks how far the *same* 28x28 inputs would go if a small
classifier were taught on labelled photos, by 5-fold stratified cross-validation on the in-scope
clothing-dev photos (each photo is scored by a classifier that never saw it):

- logistic regression on the photo model's ``fc`` features (256 values per photo);
- logistic regression on the 784 raw pixels of the prepared input;
- logistic regression on the model's 10 log-probabilities (a recalibration of its answers);
- one bias per class on the log-probabilities (a shift of the class priors only), also fitted
  with every folder weighted the same (so it cannot learn the dev set's class mix);
- and, with no labels at all, class priors estimated by EM on the unlabelled photos
  (Saerens et al. 2002).

Reuses the 28x28 inputs that ``scripts/photo_ablation.py`` cached::

    python -m scripts.photo_ablation /work/shared/photos/clothing-dev --methods grabcut --models fashion_cnn_photo
    python -m scripts.photo_ceiling /work/shared/photos/clothing-dev [--cache /tmp/photo-ablation]

Scores are as in ``python -m fmnist_core photos``, with no reject rule: strict and lenient accuracy
over the in-scope photos, and strict accuracy per folder.
"""

from __future__ import annotations

import numpy as np

from fmnist_core.photos import FOLDER_CLASSES
from scripts.photo_probe import cache_arguments, load_cached, score  # shared with the other probes

FOLDS = 5
SNEAKER = 7  # the label given to the shoes folder (any shoe class is right for it)


def strict_label(folder: str) -> int:
    """The class a photo of this folder is taught as: its strict class (shoes: Sneaker)."""
    return SNEAKER if folder == "shoes" else FOLDER_CLASSES[folder][0][0]


def as_probs(index: np.ndarray) -> np.ndarray:
    """One-hot rows, so ``photo_probe.score`` can score plain class answers."""
    return np.eye(10)[index]


def cross_validated(features: np.ndarray, labels: np.ndarray, fit_predict) -> np.ndarray:
    """Each row's answer from ``fit_predict(train_x, train_y, test_x)`` fitted on the other folds."""
    from sklearn.model_selection import StratifiedKFold

    answers = np.zeros(len(features), int)
    for train, test in StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(features, labels):
        answers[test] = fit_predict(features[train], labels[train], features[test])
    return answers


def logistic(c: float):
    """Standardised features, then multinomial logistic regression with inverse regularisation ``c``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def fit_predict(x: np.ndarray, y: np.ndarray, x_test: np.ndarray) -> np.ndarray:
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000)).fit(x, y).predict(x_test)

    return fit_predict


def class_bias(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, steps: int = 300, rate: float = 0.5) -> np.ndarray:
    """Ten numbers added to the log-probabilities, by gradient descent on the cross-entropy."""
    bias = np.zeros(x.shape[1])
    onehot = np.eye(x.shape[1])[y]
    for _ in range(steps):
        z = x + bias
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        bias -= rate * (p - onehot).mean(0)
    return (x_test + bias).argmax(1)


def balanced_class_bias(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, per_class: int = 600) -> np.ndarray:
    """``class_bias`` fitted on the same number of photos of every label (drawn with replacement),
    so the biases cannot learn how often each folder occurs in the dev set."""
    rng = np.random.default_rng(0)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class) for c in np.unique(y)])
    return class_bias(x[idx], y[idx], x_test)


def em_priors(probs: np.ndarray, steps: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Class priors of unlabelled photos by EM (training priors: uniform), and the re-weighted answers."""
    priors = np.full(probs.shape[1], 1.0 / probs.shape[1])
    weighted = probs
    for _ in range(steps):
        weighted = probs * priors * probs.shape[1]
        weighted /= weighted.sum(1, keepdims=True)
        priors = weighted.mean(0)
    return priors, weighted


def main() -> int:
    ap = cache_arguments(__doc__.splitlines()[0])
    args = ap.parse_args()

    from fmnist_core import ood
    from fmnist_core.predict import Predictor

    loaded = load_cached(args)
    if loaded is None:
        return 2
    folders, x = loaded
    keep = np.array([f in FOLDER_CLASSES for f in folders])
    folders, x = folders[keep], x[keep]
    labels = np.array([strict_label(f) for f in folders])
    predictor = Predictor.from_spec(args.model)
    probs = predictor.probabilities(x)
    log_probs = np.log(probs + 1e-6)
    fc = ood.feature_function(predictor.model)(x)
    pixels = x.reshape(len(x), -1).astype(np.float32)

    print(f"{len(x)} in-scope photos, model {args.model}, {FOLDS}-fold cross-validation where labels are used")
    print(f"taught on Fashion-MNIST only (as shipped): {score(folders, probs)}")
    for c in (0.01, 0.1, 1.0):
        print(f"logistic on fc features, C={c}: {score(folders, as_probs(cross_validated(fc, labels, logistic(c))))}")
    for c in (0.001, 0.01):
        print(
            f"logistic on raw pixels, C={c}: {score(folders, as_probs(cross_validated(pixels, labels, logistic(c))))}"
        )
    print(
        f"logistic on log-probabilities: {score(folders, as_probs(cross_validated(log_probs, labels, logistic(1.0))))}"
    )
    print(f"one bias per class: {score(folders, as_probs(cross_validated(log_probs, labels, class_bias)))}")
    balanced = as_probs(cross_validated(log_probs, labels, balanced_class_bias))
    print(f"one bias per class, every folder weighted the same: {score(folders, balanced)}")
    priors, weighted = em_priors(probs)
    print(f"priors by EM, no labels ({' '.join(f'{p:.2f}' for p in priors)}): {score(folders, weighted)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
