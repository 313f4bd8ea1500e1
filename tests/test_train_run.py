"""Training writes the run-directory contract, stops on request, and its metrics are right."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from conftest import TINY_RUN

from fmnist_core import runqueue, runs
from fmnist_core.config import preset
from fmnist_core.evaluate import log_loss, report
from fmnist_core.train import train


def test_one_epoch_run_writes_every_file(tiny_run):
    for name in ("config.json", "status.json", "metrics.jsonl", "progress.json", "model.keras", "run.json"):
        assert (tiny_run / name).is_file(), name
    status = json.loads((tiny_run / "status.json").read_text())
    assert status["state"] == "finished" and status["ended_at"] >= status["started_at"]
    metrics = runs.read_jsonl(tiny_run / "metrics.jsonl")
    assert len(metrics) == TINY_RUN["epochs"] and {
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "lr",
        "seconds",
    } <= set(metrics[0])
    result = json.loads((tiny_run / "run.json").read_text())
    assert result["input_range"] == [0, 1] and result["class_names"][6] == "Shirt"
    assert result["n_train"] + result["n_val"] == TINY_RUN["limit"] and result["n_test"] == 10000
    assert np.array(result["confusion_matrix"]).sum() == 10000
    assert result["config"]["limit"] == TINY_RUN["limit"] and result["machine"]["tensorflow"]
    assert result["machine"]["isa"] and result["machine"]["cpu"]
    info = runs.load_run(tiny_run)
    assert info.status == "finished" and info.has_model and info.epochs_done == TINY_RUN["epochs"]


def test_saved_model_loads_with_plain_keras_and_matches_run_json(tiny_run, dataset):
    import keras

    model = keras.models.load_model(tiny_run / "model.keras")
    x = dataset.x_test.astype("float32")[..., None] / 255.0
    loss, acc = model.evaluate(x, dataset.y_test, batch_size=1000, verbose=0)
    result = json.loads((tiny_run / "run.json").read_text())
    assert acc == pytest.approx(result["test_accuracy"], abs=1e-4)
    assert loss == pytest.approx(result["test_loss"], rel=1e-3)


def test_the_run_leaves_its_test_scores_for_the_evaluate_page(tiny_run, dataset):
    """The trainer keeps the test probabilities it computed under the saved file's fingerprint:
    they are what the page would compute from that file, so the page need not score again."""
    from fmnist_core import evaluate as ev
    from fmnist_core.predict import Predictor

    saved = ev.load_scores(ev.file_fingerprint(tiny_run / "model.keras"), "fashion", len(dataset.y_test))
    assert saved is not None
    result = json.loads((tiny_run / "run.json").read_text())
    assert np.mean(saved.argmax(1) == dataset.y_test) == pytest.approx(result["test_accuracy"], abs=1e-9)
    direct = Predictor.from_path(tiny_run / "model.keras").probabilities(dataset.x_test[:1000])
    # Batches of another size round differently in the last float digits (measured: <= 1.8e-6).
    np.testing.assert_allclose(saved[:1000], direct, atol=1e-5)


def test_stop_request_ends_early_and_keeps_a_model(tmp_path, dataset):
    run_dir = tmp_path / "runs" / "stopme"
    config = preset("paper", limit=1000, epochs=20, patience=None)  # 25 steps an epoch
    done: dict = {}
    worker = threading.Thread(target=lambda: done.setdefault("r", train(config, run_dir, data=dataset)))
    worker.start()
    deadline = time.time() + 300
    while time.time() < deadline:  # stop once the second epoch is under way
        p = runs.read_json(run_dir / "progress.json", {}) or {}
        if p.get("epoch", 0) >= 2 and p.get("batch", 0) >= 3:
            break
        time.sleep(0.1)
    runqueue.request_stop(run_dir)
    t_stop = time.time()
    worker.join(300)
    assert not worker.is_alive()
    result = done["r"]
    assert result["status"] == "stopped"
    assert result["epochs_completed"] == 1  # the interrupted second epoch is not counted
    assert (run_dir / "model.keras").is_file() and result["best_epoch"] == 1
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "stopped"
    assert t_stop - (status["ended_at"] - result["total_seconds"]) > 0  # sanity: ended after start
    assert runs.load_run(run_dir).status == "stopped"


def test_report_agrees_with_sklearn_on_known_arrays():
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    y = np.array([0, 0, 1, 1, 2, 2, 2, 3, 3, 3])
    probs = np.full((10, 4), 0.1)
    pred = np.array([0, 1, 1, 1, 2, 0, 2, 3, 2, 3])
    probs[np.arange(10), pred] = 0.7
    names = ["a", "b", "c", "d"]
    rep = report(y, probs, names)
    assert rep["test_accuracy"] == accuracy_score(y, pred) == 0.7
    assert rep["confusion_matrix"] == confusion_matrix(y, pred).tolist()
    p, r, f, s = precision_recall_fscore_support(y, pred)
    for i, n in enumerate(names):
        assert rep["per_class"][n]["precision"] == pytest.approx(p[i])
        assert rep["per_class"][n]["recall"] == pytest.approx(r[i])
        assert rep["per_class"][n]["f1"] == pytest.approx(f[i])
        assert rep["per_class"][n]["support"] == s[i]
    assert rep["misclassified"]["index"] == [1, 5, 8]
    assert (
        rep["test_loss"]
        == pytest.approx(log_loss(y, probs))
        == pytest.approx(-np.mean(np.log(np.where(pred == y, 0.7, 0.1))))
    )
