"""Core tests of the Evaluate page's logic: which images sit behind a cell, filters, comparisons."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from fmnist_core import evaluate as ev
from fmnist_core.compare import compare_reports

NAMES = ("A", "B", "C")


def one_hot_probs(rows: list[tuple[int, float]], n: int = 3) -> np.ndarray:
    """Probabilities whose argmax is the given class with the given confidence (rest shared)."""
    out = np.zeros((len(rows), n), np.float32)
    for i, (c, p) in enumerate(rows):
        out[i] = (1 - p) / (n - 1)
        out[i, c] = p
    return out


# A hand-made test set of 8 images: (true, predicted, confidence).
CASES = [
    (0, 0, 0.9),  # 0
    (0, 1, 0.6),  # 1  A -> B
    (0, 1, 0.8),  # 2  A -> B, more confident
    (1, 1, 0.7),  # 3
    (1, 0, 0.5),  # 4  B -> A
    (2, 2, 0.95),  # 5
    (2, 1, 0.4),  # 6  C -> B
    (0, 1, 0.7),  # 7  A -> B
]
Y = np.array([t for t, _, _ in CASES])
PROBS = one_hot_probs([(p, c) for _, p, c in CASES])


def test_cell_indices_hand_made():
    assert ev.cell_indices(Y, PROBS, 0, 1).tolist() == [2, 7, 1]  # exactly A->B, most confident first
    assert ev.cell_indices(Y, PROBS, 0, 0).tolist() == [0]
    assert ev.cell_indices(Y, PROBS, 2, 1).tolist() == [6]
    assert ev.cell_indices(Y, PROBS, 2, 0).tolist() == []


def test_cell_indices_partition_the_test_set_like_the_confusion_matrix():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 500)
    probs = rng.dirichlet(np.ones(10), 500).astype(np.float32)
    cm = confusion_matrix(y, probs.argmax(1), labels=range(10))
    seen = []
    for t in range(10):
        for p in range(10):
            idx = ev.cell_indices(y, probs, t, p)
            assert len(idx) == cm[t, p]
            assert np.all(y[idx] == t) and np.all(probs[idx].argmax(1) == p)
            assert np.all(np.diff(probs[idx, p]) <= 0)
            seen += idx.tolist()
    assert sorted(seen) == list(range(500))


def test_filter_mistakes():
    assert ev.filter_mistakes(Y, PROBS).tolist() == [2, 7, 1, 4, 6]
    assert ev.filter_mistakes(Y, PROBS, true_class=0).tolist() == [2, 7, 1]
    assert ev.filter_mistakes(Y, PROBS, pred_class=1).tolist() == [2, 7, 1, 6]
    assert ev.filter_mistakes(Y, PROBS, true_class=1, pred_class=0).tolist() == [4]
    assert ev.filter_mistakes(Y, PROBS, conf_range=(0.45, 0.65)).tolist() == [1, 4]
    assert ev.filter_mistakes(Y, PROBS, true_class=2, pred_class=2).tolist() == []  # a diagonal is no mistake


def test_most_confused_and_row_normalise():
    cm = confusion_matrix(Y, PROBS.argmax(1), labels=range(3))
    assert ev.most_confused(cm, k=5) == [(0, 1, 3), (1, 0, 1), (2, 1, 1)]
    assert ev.most_confused(np.eye(3, dtype=int) * 5) == []  # a perfect model confuses nothing
    rates = ev.row_normalise([[1, 3, 0], [0, 0, 0], [2, 2, 4]])
    np.testing.assert_allclose(rates, [[0.25, 0.75, 0], [0, 0, 0], [0.25, 0.25, 0.5]])


def test_report_agrees_with_sklearn():
    rep = ev.report(Y, PROBS, NAMES)
    p, r, f, s = precision_recall_fscore_support(Y, PROBS.argmax(1), labels=range(3), zero_division=0)
    for i, n in enumerate(NAMES):
        assert rep["per_class"][n]["precision"] == pytest.approx(p[i])
        assert rep["per_class"][n]["recall"] == pytest.approx(r[i])
        assert rep["per_class"][n]["f1"] == pytest.approx(f[i])
        assert rep["per_class"][n]["support"] == s[i]
    assert rep["test_accuracy"] == pytest.approx(3 / 8)  # images 0, 3 and 5
    assert sorted(rep["misclassified"]["index"]) == [1, 2, 4, 6, 7]


@pytest.mark.parametrize(
    ("point", "cell"),
    [
        ({"x": 3, "y": 7, "curve_number": 1, "point_index": 73}, (7, 3)),
        ({"x": 2.0, "y": 0.0}, (0, 2)),
        ({"point_index": 73, "curve_number": 1}, (7, 3)),
        ({"x": 12, "y": 1}, None),
        ({"x": "Shirt", "y": "Bag"}, None),
        ({}, None),
    ],
)
def test_cell_from_point(point, cell):
    assert ev.cell_from_point(point, 10) == cell


def test_top_k_caption_worst_and_paging():
    probs = np.array([0.1, 0.7, 0.2], np.float32)
    assert ev.top_k(probs, NAMES, 2) == [("B", pytest.approx(0.7)), ("C", pytest.approx(0.2))]
    assert ev.caption(0, probs, NAMES) == "true: A / pred: B (70%)"
    per_class = {"A": {"f1": 0.5}, "B": {"f1": 0.9}, "C": {"f1": 0.5}, "D": {"f1": 0.1}}
    assert ev.worst_classes(per_class, k=3) == ["D", "A", "C"]
    idx = np.arange(50)
    assert ev.page_of(idx, 0, 24)[0].tolist() == list(range(24))
    assert ev.page_of(idx, 2, 24) == (pytest.approx(np.array([48, 49])), 3)
    assert ev.page_of(idx, 9, 24)[0].tolist() == [48, 49]  # clamped to the last page
    assert ev.page_of(np.arange(0), 0, 24)[1] == 1


def test_enlarge_keeps_pixels_sharp():
    img = np.zeros((28, 28), np.uint8)
    img[0, 0] = 255
    big = np.asarray(ev.enlarge(img, 84))
    assert big.shape == (84, 84)
    assert big[:3, :3].min() == 255 and big[3:, :].max() == 0 and big[:, 3:].max() == 0


def test_compare_reports():
    a = ev.report(Y, PROBS, NAMES)
    better = PROBS.copy()
    better[[1, 2, 7]] = one_hot_probs([(0, 0.9)] * 3)  # B gets every A->B mistake right
    b = ev.report(Y, better, NAMES)
    cmp = compare_reports(a, b)
    assert cmp["accuracy_delta"] == pytest.approx(3 / 8)
    np.testing.assert_array_equal(cmp["confusion_diff"], np.array([[3, -3, 0], [0, 0, 0], [0, 0, 0]]))
    assert cmp["biggest_changes"] == [(0, 1, -3)]
    row_a = next(r for r in cmp["per_class"] if r["class"] == "A")
    assert row_a["recall_a"] == pytest.approx(1 / 4) and row_a["recall_b"] == pytest.approx(1.0)
    assert compare_reports(a, a)["biggest_changes"] == []
    with pytest.raises(ValueError):
        compare_reports(a, {**b, "per_class": {"X": {}, "Y": {}, "Z": {}}})
