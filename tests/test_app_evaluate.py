"""The Evaluate page through app.py (AppTest), with the tiny run as the only model."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import ROOT
from sklearn.metrics import accuracy_score, precision_recall_fscore_support
from streamlit.testing.v1 import AppTest

from fmnist_core.classes import FASHION_CLASSES

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("runs_root")]


@pytest.fixture(scope="module")
def tiny_predictions(tiny_run, dataset):
    """The tiny model's test predictions, computed here independently of the page."""
    from fmnist_core.evaluate import predict_proba
    from fmnist_core.registry import load_model

    return predict_proba(load_model(tiny_run / "model.keras"), dataset.x_test).argmax(1)


def open_evaluate() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.session_state["model_key"] = "run:tiny"  # not a shipped model, even once models/ has some
    at.run()
    at.switch_page("pages/2_Evaluate.py")
    at.run()
    assert not at.exception, at.exception
    return at


def test_metrics_and_per_class_table_agree_with_sklearn(dataset, tiny_predictions):
    at = open_evaluate()
    metrics = {m.label: m.value for m in at.metric}
    acc = accuracy_score(dataset.y_test, tiny_predictions)
    assert metrics["Test accuracy"] == f"{acc:.2%}"
    assert "Test loss" in metrics
    assert metrics["Mistakes"] == f"{int((tiny_predictions != dataset.y_test).sum()):,}"

    table = at.dataframe[0].value
    assert list(table.index) == list(FASHION_CLASSES)
    p, r, f, s = precision_recall_fscore_support(dataset.y_test, tiny_predictions, labels=range(10), zero_division=0)
    np.testing.assert_allclose(table["precision"].astype(float), p, atol=1e-6)
    np.testing.assert_allclose(table["recall"].astype(float), r, atol=1e-6)
    np.testing.assert_allclose(table["f1"].astype(float), f, atol=1e-6)
    assert table["support"].astype(int).tolist() == s.tolist() == [1000] * 10


def test_most_confused_button_opens_that_cells_gallery(dataset, tiny_predictions):
    at = open_evaluate()
    pair = next(b for b in at.button if b.key and b.key.startswith("pair-"))
    t, p = (int(v) for v in pair.key.split("-")[1:])
    pair.click().run()
    assert not at.exception, at.exception
    n = int(((dataset.y_test == t) & (tiny_predictions == p)).sum())
    assert n > 0
    heading = f"True {FASHION_CLASSES[t]}, predicted {FASHION_CLASSES[p]}: {n} images"
    assert any(h.value.startswith(heading) for h in at.subheader), [h.value for h in at.subheader]
    assert pair.label.endswith(f": {n}")


def test_mistake_filters_and_rates_toggle(dataset, tiny_predictions):
    at = open_evaluate()
    assert not any(k.startswith("mis") for k in (w.key or "" for w in at.selectbox))  # closed tabs do not run
    at.session_state["eval_tab"] = "Mistakes"
    at.run()
    at.selectbox(key="mis_true").set_value(6).run()  # Shirt
    assert not at.exception, at.exception
    expected = int(((dataset.y_test == 6) & (tiny_predictions != 6)).sum())
    assert any(f"**{expected}** mistakes match" in md.value for md in at.markdown)
    at.toggle(key="eval_rates").set_value(True).run()
    assert not at.exception, at.exception


def test_compare_two_models(runs_root):
    shutil.copytree(runs_root / "tiny", runs_root / "tiny2")
    at = open_evaluate()
    assert at.selectbox(key="eval_model").value == "run:tiny"  # follows the sidebar's active model
    at.session_state["eval_tab"] = "Compare two models"
    at.run()
    other = at.selectbox(key="eval_other")
    assert "run:tiny2" in other.options or any("tiny2" in o for o in other.options)
    other.set_value("run:tiny2").run()
    assert at.selectbox(key="eval_other").value == "run:tiny2"
    a = next(m for m in at.metric if m.label.startswith("A: tiny"))
    b = next(m for m in at.metric if m.label.startswith("B: tiny2"))
    assert a.value == b.value  # the same weights
    assert "+0.00%" in str(b.delta)
    assert not at.exception, at.exception
