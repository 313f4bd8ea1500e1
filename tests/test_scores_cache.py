"""Test-set scores kept on disk per model file, so the Evaluate page opens at once after the
first time (and shows progress that first time). Core API and the page, through AppTest."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT
from streamlit.testing.v1 import AppTest

from fmnist_core import evaluate as ev


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "scores"


def test_saved_scores_round_trip_exactly(cache_dir):
    probs = np.random.default_rng(0).dirichlet(np.ones(10), size=50).astype(np.float32)
    assert ev.load_scores("ab12", "fashion", 50) is None
    ev.save_scores("ab12", "fashion", probs)
    assert list(cache_dir.iterdir()) == [cache_dir / "ab12-fashion.npy"]  # no temp file left behind
    np.testing.assert_array_equal(ev.load_scores("ab12", "fashion", 50), probs)
    assert ev.load_scores("ab12", "fashion", 49) is None  # another test set size: not these scores
    assert ev.load_scores("ab12", "mnist", 50) is None


def test_a_damaged_scores_file_counts_as_absent(cache_dir):
    cache_dir.mkdir(parents=True)
    (cache_dir / "cd34-fashion.npy").write_bytes(b"\x93NUMPY garbage")
    assert ev.load_scores("cd34", "fashion", 10) is None


def test_names_outside_the_cache_are_refused(cache_dir):  # noqa: ARG001
    with pytest.raises(ValueError):
        ev.save_scores("../../etc/x", "fashion", np.zeros((1, 10), np.float32))
    with pytest.raises(ValueError):
        ev.load_scores("ab", "../x", 1)


def test_scoring_in_batches_reports_progress_and_matches_one_pass():
    x = np.arange(2500 * 4, dtype=np.float32).reshape(2500, 4)

    def fake_model(batch):  # a pure function of each row: batching must not change the result
        return np.tanh(batch / 1e4)

    seen = []
    out = ev.score_in_batches(fake_model, x, batch_size=1000, progress=lambda d, t: seen.append((d, t)))
    np.testing.assert_array_equal(out, np.tanh(x / 1e4).astype(np.float32))
    assert seen == [(1000, 2500), (2000, 2500), (2500, 2500)]


@pytest.mark.slow
@pytest.mark.usefixtures("runs_root")
def test_evaluate_page_saves_the_scores_it_computed(cache_dir, tiny_run, dataset):
    import streamlit as st

    from fmnist_core.predict import Predictor

    # AppTest runs in this process: earlier page tests (test_app_evaluate) left the same model's
    # scores in Streamlit's in-process cache, and the page would never score (nor save) them here.
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.session_state["model_key"] = "run:tiny"
    at.run()
    at.switch_page("pages/2_Evaluate.py").run()
    assert not at.exception, at.exception
    sha = ev.file_fingerprint(tiny_run / "model.keras")
    saved = ev.load_scores(sha, "fashion", len(dataset.y_test))
    assert saved is not None, list(cache_dir.parent.rglob("*"))
    direct = Predictor.from_path(tiny_run / "model.keras").probabilities(dataset.x_test[:500])
    np.testing.assert_allclose(saved[:500], direct, atol=1e-6)
    assert not at.get("progress")  # the progress bar is gone once the scores are there
