"""The photo head (fmnist_core/head.py): fit, cross-validate, save, load, resolve; no TensorFlow."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fmnist_core import head as ph


def _rows(n_per: int = 12, classes=range(11), dim: int = 16, seed: int = 0):
    """Separable feature rows: class c has a bump on feature c."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.array(list(classes)), n_per)
    x = rng.normal(size=(len(y), dim))
    x[np.arange(len(y)), y] += 4.0
    return x, y


@pytest.fixture(scope="module")
def fitted():
    x, y = _rows()
    return x, y, ph.fit_head(x, y, C=0.5, card={"backbone": "shipped:test"})


def test_fit_save_load_round_trip(tmp_path, fitted):
    x, _, head = fitted
    path = tmp_path / "h" / "head.npz"
    ph.save_head(head, path)
    assert ph.card_path(path).is_file()
    back = ph.load_head(path)
    assert np.allclose(back.probabilities(x), head.probabilities(x), atol=1e-5)
    assert back.card["backbone"] == "shipped:test" and back.card["outputs"][10] == ph.NONE_NAME
    assert back.none_threshold == head.none_threshold and back.distance_factor is None
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize(
    "damage",
    ["garbage", "truncated", "no card", "bad card", "wrong shape", "missing"],
)
def test_damaged_head_file_is_a_one_line_head_error(tmp_path, fitted, damage):
    path = tmp_path / "head.npz"
    ph.save_head(fitted[2], path)
    if damage == "garbage":
        path.write_bytes(b"not a zip at all")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "no card":
        ph.card_path(path).unlink()
    elif damage == "bad card":
        ph.card_path(path).write_text("{not json")
    elif damage == "wrong shape":
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        np.savez(path, **{**arrays, "coef": np.zeros((3, 3), np.float32)})
    else:
        path.unlink()
    with pytest.raises(ph.HeadError) as exc:
        ph.load_head(path)
    msg = str(exc.value)
    assert "\n" not in msg and "head." in msg and ("re-teach" in msg or "restore" in msg)


def test_all_ten_classes_answerable_with_photos_of_only_some():
    # Photos of classes 0-4, 6, 7 and "none" only (like clothing-dev); Fashion-MNIST-like rows teach all ten.
    x, y = _rows(classes=(0, 1, 2, 3, 4, 6, 7, 10), seed=1)
    fx, fy = _rows(n_per=20, classes=range(10), seed=2)
    head = ph.fit_head(x, y, C=0.5, extra_features=fx, extra_labels=fy, extra_weight=0.3)
    probe, probe_y = _rows(n_per=5, classes=range(10), seed=3)
    answers = head.decide(head.probabilities(probe))
    assert set(answers.tolist()) == set(range(10))
    assert np.mean(answers == probe_y) > 0.8
    # Without the extra rows, outputs never taught are never answered (probability 0).
    alone = ph.fit_head(x, y, C=0.5)
    assert np.all(alone.probabilities(probe)[:, [5, 8, 9]] == 0)


def test_cross_validation_never_scores_a_row_it_fitted_on():
    x, y = _rows(n_per=10)
    x = np.column_stack([np.arange(len(y)), x])  # column 0: the row's id
    seen: list[set[int]] = []

    def recording_fit(fx, fy, **choices):
        seen.append(set(fx[:, 0].astype(int).tolist()))
        return ph.fit_head(fx[:, 1:], fy, **choices)

    # The head is fitted without the id column, so score it on the same columns.
    def fit(fx, fy, **choices):
        head = recording_fit(fx, fy, **choices)
        return ph.PhotoHead(
            np.r_[0.0, head.mean],
            np.r_[1.0, head.scale],
            np.column_stack([np.zeros(11), head.coef]),
            head.intercept,
            head.none_threshold,
            head.distance_factor,
        )

    cv = ph.cross_validate(x, y, k=5, seed=3, fit=fit, C=0.5)
    assert len(seen) == 5 and cv["k"] == 5
    for i, train_ids in enumerate(seen):
        scored = set(np.flatnonzero(cv["folds"] == i).tolist())
        assert scored and not scored & train_ids
        assert scored | train_ids == set(range(len(y)))
    assert set(cv["folds"].tolist()) == set(range(5))
    assert cv["probabilities"].shape == (len(y), 11) and 0 <= cv["accuracy"] <= 1
    assert set(cv["per_class"]) == set(range(11))


def test_cross_validation_needs_two_rows_a_class():
    x, y = _rows(n_per=3, classes=(0, 1))
    assert ph.cross_validate(x, y, k=5)["k"] == 3  # k drops to the smallest class
    with pytest.raises(ph.HeadError, match="at least 2"):
        ph.cross_validate(x[:4], np.array([0, 0, 0, 1]), k=5)


def test_none_threshold_and_distance_rule(fitted):
    head = ph.PhotoHead(*(getattr(fitted[2], k) for k in ("mean", "scale", "coef", "intercept")), 0.4, 1.0)
    p = np.zeros((3, 11))
    p[0, 10], p[0, 2] = 0.45, 0.55  # none above its threshold though not the top output
    p[1, 2] = 1.0  # Pullover, far away: the distance rule says none
    p[2, 7] = 1.0  # Sneaker, far away: shoes are exempt
    assert head.decide(p, np.array([0.5, 1.5, 3.0])).tolist() == [10, 10, 7]
    assert "none of the ten" in head.reason(p[0]) and "far from every Pullover" in head.reason(p[1], 1.5)
    assert head.reason(p[2], 3.0) is None


def test_resolve_head_shipped_first_then_heads_dir(tmp_path, monkeypatch, fitted):
    models, heads = tmp_path / "models", tmp_path / "heads"
    monkeypatch.setenv(ph.HEADS_ENV, str(heads))
    assert ph.heads_dir() == heads
    ph.save_head(fitted[2], heads / "ours" / "head.npz")
    assert ph.resolve_head("ours", models_dir=models) == heads / "ours" / "head.npz"
    ph.save_head(fitted[2], models / "ours.npz")
    assert ph.resolve_head("ours", models_dir=models) == models / "ours.npz"
    for bad in ("../etc", "a/b", "", "x\0y"):
        with pytest.raises(ph.HeadError, match="invalid head name"):
            ph.resolve_head(bad, models_dir=models)
    with pytest.raises(ph.HeadError, match="no head 'nobody'"):
        ph.resolve_head("nobody", models_dir=models)
    monkeypatch.delenv(ph.HEADS_ENV)
    assert ph.heads_dir().name == "heads"


def test_card_is_json_with_the_choices(tmp_path, fitted):
    ph.save_head(fitted[2], tmp_path / "h.npz")
    card = json.loads((tmp_path / "h.json").read_text())
    assert card["choices"]["C"] == 0.5 and card["n_features"] == 16 and len(card["outputs"]) == 11


def test_a_head_with_the_cnns_prior_round_trips_and_keeps_none(tmp_path):
    x, y = _rows()
    rng = np.random.default_rng(4)
    prior = (rng.normal(size=(16, 10)), rng.normal(size=10))
    head = ph.fit_head(x, y, C=0.5, prior=prior, prior_weight=1.0)
    alone = ph.fit_head(x, y, C=0.5)
    p, p0 = head.probabilities(x), alone.probabilities(x)
    assert np.allclose(p[:, ph.NONE], p0[:, ph.NONE], atol=1e-6)  # the prior re-weights the ten only
    assert np.allclose(p.sum(1), 1, atol=1e-5) and not np.allclose(p, p0, atol=1e-3)
    ph.save_head(head, tmp_path / "p.npz")
    assert np.allclose(ph.load_head(tmp_path / "p.npz").probabilities(x), p, atol=1e-5)


def test_feature_model_paths_name_files_in_models_feature_models(tmp_path):
    assert ph.feature_model_paths({}, tmp_path) == () and ph.feature_model_paths({"feature_model": None}) == ()
    for bad in ("../x", "a/b", "", 3, ["tuned", "../x"], [None]):
        if bad:
            with pytest.raises(ph.HeadError, match="invalid feature model"):
                ph.feature_model_paths({"feature_model": bad}, tmp_path)
    with pytest.raises(ph.HeadError, match="missing; restore models/"):
        ph.feature_model_paths({"feature_model": "tuned"}, tmp_path)
    path = tmp_path / ph.FEATURE_MODELS / "tuned.keras"
    path.parent.mkdir()
    path.write_bytes(b"zip")
    assert ph.feature_model_paths({"feature_model": "tuned"}, tmp_path) == (path,)
    with pytest.raises(ph.HeadError, match="missing; restore models/"):
        ph.feature_model_paths({"feature_model": ["tuned", "other"]}, tmp_path)
    other = path.with_name("other.keras")
    other.write_bytes(b"zip")
    assert ph.feature_model_paths({"feature_model": ["other", "tuned"]}, tmp_path) == (other, path)
