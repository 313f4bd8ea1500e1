"""Feature-space distance to the training images (ood.py) and the reject rule that uses it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import ROOT

from fmnist_core import ood
from fmnist_core.predict import (
    BAG,
    DISTANCE_CLASSES,
    REJECT_BAG_CONFIDENCE,
    REJECT_CONFIDENCE,
    REJECT_DISTANCE_FACTOR,
    reject_reason,
)

NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def _clusters(n: int = 400, dim: int = 8, seed: int = 0):
    """Three well-separated Gaussian clouds: features and labels."""
    rng = np.random.default_rng(seed)
    centres = np.eye(3, dim) * 20
    labels = np.repeat(np.arange(3), n)
    return centres[labels] + rng.normal(size=(3 * n, dim)), labels


def test_fit_measures_distance_from_each_class_and_its_limit_holds_99_percent(tmp_path):
    f, y = _clusters()
    stats = ood.fit(f, y, y, n_classes=3)
    assert stats.means.shape == (3, 8) and stats.precision.shape == (8, 8)
    assert np.allclose(stats.distance(stats.means, np.arange(3)), 0, atol=1e-9)
    inside = stats.distance(f, y) <= stats.limits[y]
    assert 0.98 <= inside.mean() < 1.0  # the 99th percentile, per class
    # Unit-variance clouds: the distance is about the Euclidean one; 10 units out is far beyond the limit.
    far = stats.means[1] + np.r_[0, 10, np.zeros(6)]
    assert stats.distance(far[None], np.array([1]))[0] == pytest.approx(10, rel=0.1)
    assert stats.distance(far[None], np.array([1]))[0] > 2 * stats.limits[1]
    path = ood.stats_path(tmp_path / "m.keras")
    assert path.name == "m.features.npz"
    stats.save(path)
    back = ood.FeatureStats.load(path)
    assert np.allclose(back.distance(f[:20], y[:20]), stats.distance(f[:20], y[:20]), rtol=1e-4)


def _probs(index: int, top: float) -> np.ndarray:
    p = np.full(10, (1 - top) / 9)
    p[index] = top
    return p


def test_the_reject_rule_turns_away_far_garments_but_not_far_shoes():
    far, near = REJECT_DISTANCE_FACTOR + 0.2, REJECT_DISTANCE_FACTOR - 0.2
    assert reject_reason(_probs(0, 0.9), near, NAMES) is None
    reason = reject_reason(_probs(0, 0.9), far, NAMES)
    assert reason and "T-shirt/top" in reason and f"{far:.2f}x" in reason
    for shoe in (5, 7, 9):  # shoes from above are far from the dataset's side views: exempt
        assert shoe not in DISTANCE_CLASSES and reject_reason(_probs(shoe, 0.9), far, NAMES) is None
    assert reject_reason(_probs(0, 0.9), None, NAMES) is None  # a model without statistics
    assert "unsure" in reject_reason(_probs(3, REJECT_CONFIDENCE - 0.05), near, NAMES)
    assert "Bag" in reject_reason(_probs(BAG, REJECT_BAG_CONFIDENCE - 0.05), near, NAMES)
    assert reject_reason(_probs(BAG, REJECT_BAG_CONFIDENCE + 0.05), near, NAMES) is None


@pytest.fixture(scope="module")
def photo_predictor():
    from fmnist_core.predict import Predictor

    return Predictor.from_spec("fashion_cnn_photo")


def test_the_photo_model_ships_its_statistics_and_dataset_images_lie_within(photo_predictor, dataset):
    assert ood.stats_path(photo_predictor.ref.path).is_file() and photo_predictor.stats is not None
    x = dataset.x_test[:500]
    probs = photo_predictor.probabilities(x)
    d = photo_predictor.distances(x, probs.argmax(1))
    assert d.shape == (500,) and np.all(np.isfinite(d)) and np.all(d >= 0)
    # The limits are the training images' 99th percentiles: test images lie within them as a rule.
    assert (d <= 1).mean() > 0.95
    # Noise is nothing like a garment: beyond the limit of the class it is called, where 95% of
    # the test images are well within theirs.
    noise = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    noise_d = photo_predictor.distances(noise, photo_predictor.probabilities(noise).argmax(1))
    assert np.median(noise_d) > 1 > np.percentile(d, 95)


def test_a_model_without_statistics_predicts_without_the_distance(tmp_path):
    from fmnist_core.predict import Predictor
    from fmnist_core.preprocess import load_image, prepare_photo

    for suffix in (".keras", ".json"):
        shutil.copy(ROOT / "models" / f"fashion_cnn_photo{suffix}", tmp_path / f"copy{suffix}")
    predictor = Predictor.from_path(tmp_path / "copy.keras")
    assert predictor.stats is None and predictor.distances(np.zeros((1, 28, 28), np.uint8), [0]) is None
    hat = sorted((ROOT / "tests" / "fixtures" / "photos" / "hat").glob("*.jpg"))[0]
    pred = predictor.predict_prepared(prepare_photo(load_image(hat)))
    assert pred.distance is None and "distance" not in pred.as_dict()
    # A damaged statistics file costs the distance rule, not the model.
    ood.stats_path(tmp_path / "copy.keras").write_bytes(b"not an npz")
    assert Predictor.from_path(tmp_path / "copy.keras").stats is None


def test_features_command_fits_and_writes_the_statistics(tmp_path, capfd):
    from fmnist_core.__main__ import main

    for suffix in (".keras", ".json"):  # the fast model: the smallest net, a pass over 60,000 images
        shutil.copy(ROOT / "models" / f"fashion_cnn_fast{suffix}", tmp_path / f"fast{suffix}")
    assert main(["features", str(tmp_path / "fast.keras"), "--json"]) == 0
    out = json.loads(capfd.readouterr().out)
    written = tmp_path / "fast.features.npz"
    assert out["statistics"] == str(written) and written.is_file()
    assert len(out["limits"]) == 10 and all(v > 0 for v in out["limits"])
    stats = ood.FeatureStats.load(written)
    assert stats.means.shape == (10, 128)  # lean_cnn's fc layer
