"""AppTest of the app through app.py: every page loads, the Train form validates, a tiny run
started from the page trains in its own process and its curves and history are read back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from fmnist_core import access, runqueue, runs
from fmnist_core.config import preset

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_runs(runs_root):
    """Every test uses its own runs folder (holding the tiny run); runs_root stops leftover trainers."""
    return runs_root


def app() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def train_page() -> AppTest:
    at = app()
    at.switch_page("pages/1_Train.py").run()
    assert not at.exception, at.exception
    return at


def by_label(elements, label):
    return next(e for e in elements if e.label == label)


def button(at, key):
    return next(b for b in at.button if b.key == key)


def curves(at) -> pd.DataFrame:
    """The rows behind the live charts (epoch, panel, curve, value); empty if none is drawn."""
    charts = at.get("vega_lite_chart")
    if not charts:
        return pd.DataFrame(columns=["epoch", "panel", "curve", "value"])
    assert len(charts) == 2  # accuracy and loss, side by side, each with its own rows
    return pd.concat(convert_arrow_bytes_to_pandas_df(d.data.data) for c in charts for d in c.proto.datasets)


@pytest.mark.parametrize("page", ["app.py", "pages/1_Train.py", "pages/2_Evaluate.py", "pages/3_Predict.py"])
def test_every_page_loads_without_exception(page):
    at = app()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    if page in ("app.py", "pages/1_Train.py"):
        assert not at.error, [e.value for e in at.error]


def test_home_says_what_it_is_where_the_data_is_and_which_model():
    at = app()
    text = " ".join(str(m.value) for m in [*at.markdown, *at.success, *at.info])
    assert "Fashion-MNIST found" in text
    # The default is the shipped paper model; without shipped models, the tiny run is active.
    from fmnist_core import registry

    first = registry.available_models()[0]
    assert f"Active model: **{first.label}**" in text


def test_pages_without_tensorflow_do_not_import_it():
    code = (
        "import sys; import fmnist_core.estimate, fmnist_core.runs, ui.common, ui.train_widgets; "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_preset_loads_its_settings():
    at = train_page()
    assert by_label(at.number_input, "Epochs").value == 20
    at.radio(key="train_preset").set_value("fast").run()
    fast = preset("fast")
    assert by_label(at.number_input, "Epochs").value == fast.epochs != 20
    assert by_label(at.select_slider, "Batch size").value == fast.batch_size == 128
    assert by_label(at.toggle, "Augment training images").value is False
    assert any("one-cycle" in c.value or "onecycle" in c.value for c in at.caption)


def test_form_validates_and_estimates():
    at = train_page()
    at.toggle(key="train_use_all").set_value(False).run()
    at.number_input(key="train_limit").set_value(300).run()
    at.select_slider(key="train_batch_size").set_value(512).run()
    assert any("larger than the 240 training images" in e.value for e in at.error)
    assert button(at, "train_start").disabled
    at.select_slider(key="train_batch_size").set_value(32).run()
    assert not at.error
    assert not button(at, "train_start").disabled
    estimate = " ".join(m.value for m in at.markdown if "Estimated time" in m.value)
    assert "240 training + 60 validation images" in estimate


def test_tiny_run_from_the_page_trains_and_is_drawn(runs_root):
    at = train_page()
    at.radio(key="train_preset").set_value("fast").run()
    at.toggle(key="train_use_all").set_value(False).run()
    at.number_input(key="train_limit").set_value(300).run()
    at.number_input(key="train_epochs").set_value(2).run()
    button(at, "train_start").click().run()
    assert not at.exception, at.exception
    started = [r for r in runs.list_runs(runs_root) if r.run_id != "tiny"]
    assert len(started) == 1, "Start must launch exactly one run"
    run = started[0]
    assert run.config["limit"] == 300 and run.config["epochs"] == 2 and run.config["preset"] == "fast"
    assert run.status in ("queued", "running")

    # A second start while it trains is accepted and waits in the queue; it can leave the queue.
    button(at, "train_start").click().run()
    second = runqueue.waiting_runs(runs.list_runs(runs_root))
    assert len(second) == 1 and any("number **1** in line" in i.value for i in at.info)
    runqueue.cancel(second[0].run_id, runs_root, access.ADMIN)
    at.session_state["train_watch"] = run.run_id
    at.run()
    # The live panel shows the active run with a Stop button.
    assert any(b.key == "train_stop" for b in at.button)

    done = runs.wait(run.path, timeout=300, poll=0.1)
    assert done.status == "finished", done.status_data
    at.run()
    rows = curves(at)
    assert sorted(set(rows["panel"])) == ["Accuracy", "Loss"] and sorted(set(rows["curve"])) == ["train", "validation"]
    for (panel, curve), line in rows.groupby(["panel", "curve"]):
        assert line["epoch"].tolist() == [1, 2], (panel, curve)
    train_acc = rows[(rows["panel"] == "Accuracy") & (rows["curve"] == "train")]
    assert train_acc["value"].tolist() == pytest.approx([m["accuracy"] for m in done.metrics])
    text = " ".join(str(s.value) for s in at.success)
    assert "finished after 2 epochs" in text and f"{done.test_accuracy:.1%}" in text

    # History: the new run is listed and can be made the active model.
    rows = at.dataframe[0].value
    assert run.run_id in list(rows["Run"])
    at.selectbox(key="train_history_pick").set_value(run.run_id).run()
    button(at, "train_make_active").click().run()
    assert at.session_state["model_key"] == f"run:{run.run_id}"


def test_failed_run_shows_its_error(runs_root):
    d = runs_root / "broken"
    d.mkdir()
    runs.write_json_atomic(d / "config.json", {"preset": "paper", "epochs": 3})
    runs.write_json_atomic(
        d / "status.json", {"state": "failed", "created_at": 9e9, "error": "DataError: no Fashion-MNIST here"}
    )
    at = train_page()
    assert any("no Fashion-MNIST here" in e.value for e in at.error)  # the live panel (newest run)
    assert "failed" in list(at.dataframe[0].value["Status"])


def test_delete_asks_for_confirmation(runs_root):
    at = train_page()
    at.selectbox(key="train_history_pick").set_value("tiny").run()
    button(at, "train_delete").click().run()
    assert any("Delete run `tiny`" in w.value for w in at.warning)
    assert (runs_root / "tiny").is_dir()  # nothing deleted before the confirmation
    button(at, "train_delete_no").click().run()
    assert not at.warning and (runs_root / "tiny").is_dir()
    button(at, "train_delete").click().run()
    button(at, "train_delete_yes").click().run()
    assert not at.exception, at.exception
    assert not (runs_root / "tiny").exists()
    assert "No runs yet" in " ".join(c.value for c in at.caption)


def test_open_on_evaluate_makes_the_run_active_and_switches():
    at = train_page()
    at.selectbox(key="train_history_pick").set_value("tiny").run()
    button(at, "train_open_eval").click().run()
    assert not at.exception, at.exception
    assert at.session_state["model_key"] == "run:tiny"
    assert not any(b.key == "train_start" for b in at.button)  # we are on another page now
