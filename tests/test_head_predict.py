"""The shipped photo head through the Predictor and the CLI: both answers, --head, all ten classes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from fmnist_core import head as ph
from fmnist_core import registry
from fmnist_core.preprocess import load_image, prepare_array28, prepare_photo

pytestmark = pytest.mark.slow
PHOTOS = ROOT / "tests" / "fixtures" / "photos"
DRESS = next((PHOTOS / "dress").glob("*.jpg"))


@pytest.fixture(scope="module")
def predictor():
    from fmnist_core.predict import Predictor

    return Predictor.from_spec(registry.PHOTO_MODEL)


def test_the_default_photo_model_ships_its_head():
    ref = registry.resolve(registry.default_photo_model())
    assert registry.shipped_head_name(ref) == registry.PHOTO_HEAD
    head = ph.load_head(ph.resolve_head(registry.PHOTO_HEAD))
    card = head.card
    assert card["backbone"] == f"shipped:{registry.PHOTO_MODEL}" and card["photos"] == 3068
    assert {"mean", "spread_over_folds"} <= set(card["cv"]) and card["command"].startswith("python -m scripts.")
    feats = np.load(registry.MODELS_DIR / f"{registry.PHOTO_HEAD}.devfeatures.npz")
    assert feats["features"].dtype == np.float16 and feats["features"].shape == (3068, head.n_features)
    assert set(np.unique(feats["labels"])) >= {0, 1, 2, 3, 4, 6, 10}


def test_a_photo_gets_both_answers_and_a_drawing_only_the_cnns(predictor):
    assert predictor.head_name == registry.PHOTO_HEAD and predictor.head_error is None
    pred = predictor.predict_prepared(prepare_photo(load_image(DRESS)))
    out = pred.as_dict()
    assert out["head"] == registry.PHOTO_HEAD and 0 <= out["none_of_the_ten"] <= 1
    own = out["fashion_mnist_only"]
    assert set(own["probabilities"]) == set(predictor.class_names) and own["label"] in predictor.class_names
    assert abs(sum(out["probabilities"].values()) + out["none_of_the_ten"] - 1) < 1e-4
    drawing = predictor.predict_prepared(prepare_array28(np.zeros((28, 28), np.uint8)))
    assert drawing.fashion_mnist_only is None and drawing.head is None


def test_head_none_is_the_cnn_alone_and_a_foreign_head_is_refused(predictor, tmp_path, monkeypatch):
    from fmnist_core.predict import Predictor

    predictor.use_head("none")
    try:
        assert predictor.predict_prepared(prepare_photo(load_image(DRESS))).fashion_mnist_only is None
        x, y = np.eye(11)[np.repeat(np.arange(11), 3)] * 3, np.repeat(np.arange(11), 3)
        monkeypatch.setenv(ph.HEADS_ENV, str(tmp_path))
        ph.save_head(ph.fit_head(x, y, card={"backbone": "shipped:other"}), tmp_path / "small" / "head.npz")
        with pytest.raises(ph.HeadError, match="taught on shipped:other"):
            predictor.use_head("small")
    finally:
        predictor.use_head("auto")
    assert isinstance(predictor, Predictor) and predictor.head is not None


def test_the_head_answers_all_ten_classes(predictor, dataset):
    idx = np.concatenate([np.flatnonzero(dataset.y_test == c)[:20] for c in range(10)])
    probs = predictor.head.probabilities(predictor.head_features(dataset.x_test[idx]))
    answers = probs[:, : ph.NONE].argmax(1)
    assert set(answers.tolist()) == set(range(10))


def test_cli_predict_json_carries_both_and_head_none_only_one():
    cmd = [sys.executable, "-m", "fmnist_core", "predict", str(DRESS), "--json"]
    both = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT).stdout)[0]
    assert both["head"] == registry.PHOTO_HEAD and "fashion_mnist_only" in both
    alone = json.loads(
        subprocess.run([*cmd, "--head", "none"], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    )[0]
    assert "fashion_mnist_only" not in alone and alone["label"] == both["fashion_mnist_only"]["label"]
    bad = subprocess.run([*cmd, "--head", "no_such_head"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode != 0 and "no head 'no_such_head'" in bad.stderr and bad.stderr.count("\n") == 1


def test_a_head_reads_its_features_from_the_feature_model_its_card_names(predictor, tmp_path, monkeypatch):
    """The head's features come from its fine-tuned copy; the CNN's own answer and its distance rule
    stay the backbone's (here the feature model is a randomly initialised wide_cnn)."""
    import keras

    from fmnist_core.model import build

    keras.utils.set_random_seed(3)
    other = build("wide_cnn")
    monkeypatch.setattr(ph, "MODELS_DIR", tmp_path)
    monkeypatch.setenv(ph.HEADS_ENV, str(tmp_path / "heads"))
    (tmp_path / ph.FEATURE_MODELS).mkdir()
    other.save(tmp_path / ph.FEATURE_MODELS / "rand.keras")
    x28 = prepare_photo(load_image(DRESS)).image[None]
    x, y = np.random.default_rng(0).random((33, 256)), np.repeat(np.arange(11), 3)
    card = {"backbone": f"shipped:{registry.PHOTO_MODEL}", "feature_model": "rand"}
    ph.save_head(ph.fit_head(x, y, card=card), tmp_path / "heads" / "tuned" / "head.npz")
    own = predictor.predict_prepared(prepare_photo(load_image(DRESS))).fashion_mnist_only
    predictor.use_head("tuned")
    try:
        got = predictor.head_features(x28)
        np.testing.assert_allclose(got, ph.head_features(other, x28), rtol=1e-5, atol=1e-5)
        assert not np.allclose(got, predictor._fc(x28))
        pred = predictor.predict_prepared(prepare_photo(load_image(DRESS)))
        assert pred.head == "tuned" and pred.fashion_mnist_only.label == own.label
        np.testing.assert_allclose(pred.fashion_mnist_only.probs, own.probs, atol=1e-6)
        # A head on two copies reads their features side by side, in the card's order.
        keras.utils.set_random_seed(4)
        build("wide_cnn").save(tmp_path / ph.FEATURE_MODELS / "rand2.keras")
        x2 = np.random.default_rng(1).random((33, 512))
        two = {**card, "feature_model": ["rand2", "rand"]}
        ph.save_head(ph.fit_head(x2, y, card=two), tmp_path / "heads" / "two" / "head.npz")
        predictor.use_head("two")
        both = predictor.head_features(x28)
        np.testing.assert_allclose(both[:, 256:], got, rtol=1e-5, atol=1e-5)
        assert both.shape == (1, 512) and not np.allclose(both[:, :256], got)
        assert predictor.predict_prepared(prepare_photo(load_image(DRESS))).head == "two"
        ph.save_head(ph.fit_head(x, y, card=two), tmp_path / "heads" / "narrow" / "head.npz")
        with pytest.raises(ph.HeadError, match="256 features"):
            predictor.use_head("narrow")  # taught on 256 features, the two copies give 512
        ph.save_head(
            ph.fit_head(x, y, card={**card, "feature_model": "gone"}), tmp_path / "heads" / "gone" / "head.npz"
        )
        with pytest.raises(ph.HeadError, match="missing; restore models/"):
            predictor.use_head("gone")
    finally:
        predictor.use_head("auto")
