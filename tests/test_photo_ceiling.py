"""The fitting helpers of scripts/photo_ceiling.py (the diagnostic behind PHOTOS.md's fifth round),
on synthetic data whose right answer is known."""

from __future__ import annotations

import numpy as np

from scripts.photo_ceiling import balanced_class_bias, class_bias, cross_validated, em_priors, strict_label


def _posteriors_and_labels(priors: np.ndarray, n: int = 6000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn with ``priors``; for each, the exact posterior of a 1-D Gaussian model that
    assumes equal priors (the situation of a model trained on a balanced dataset)."""
    rng = np.random.default_rng(seed)
    centres = np.arange(len(priors)) * 2.0
    y = rng.choice(len(priors), n, p=priors)
    x = rng.normal(centres[y], 1.0)
    logits = -((x[:, None] - centres[None, :]) ** 2) / 2
    p = np.exp(logits - logits.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True), y


def test_em_recovers_the_class_priors_of_unlabelled_data():
    priors = np.array([0.6, 0.3, 0.1])
    probs, _ = _posteriors_and_labels(priors)
    estimated, weighted = em_priors(probs)
    assert np.allclose(estimated, priors, atol=0.03)
    assert np.allclose(weighted.sum(1), 1.0)


def test_class_bias_learns_a_prior_shift_and_balancing_removes_it():
    priors = np.array([0.8, 0.1, 0.1])
    probs, y = _posteriors_and_labels(priors)
    log_probs = np.log(probs)
    plain = class_bias(log_probs, y, log_probs)
    # Under a skewed prior the fitted biases favour class 0, so it is answered more often ...
    assert (plain == 0).mean() > (log_probs.argmax(1) == 0).mean()
    # ... and the accuracy rises above the equal-prior answer's (the Bayes rule for these priors).
    assert (plain == y).mean() > (log_probs.argmax(1) == y).mean()
    # Fitted on the same number of rows of every class, the biases learn no prior: answers as before.
    balanced = balanced_class_bias(log_probs, y, log_probs)
    assert (balanced == log_probs.argmax(1)).mean() > 0.97


def test_cross_validation_never_answers_a_row_with_a_model_that_saw_it():
    labels = np.repeat(np.arange(3), 20)
    features = np.arange(len(labels), dtype=float)[:, None]  # row i holds i

    def fit_predict(x, y, x_test):
        assert not set(x[:, 0]) & set(x_test[:, 0])  # the rows answered were not in the fit
        return np.full(len(x_test), y[0])

    answers = cross_validated(features, labels, fit_predict)
    assert answers.shape == labels.shape


def test_strict_label_of_each_in_scope_folder():
    assert [strict_label(f) for f in ("t-shirt", "pants", "longsleeve", "shoes", "shirt")] == [0, 1, 2, 7, 6]
