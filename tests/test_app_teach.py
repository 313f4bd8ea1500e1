"""AppTest of the Teach page: it loads, teaches from labelled camera shots (kept in the session as the
camera widget leaves them), shows the before/after chart and table, and lists, picks and deletes heads."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from teach_photos import make_folder

from fmnist_core import heads

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def heads_root(tmp_path, monkeypatch, runs_root) -> Path:  # noqa: ARG001 - runs_root isolates the runs
    root = tmp_path / "heads"
    monkeypatch.setenv("FMNIST_HEADS_DIR", str(root))
    return root


def teach_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    at.run()
    at.switch_page("pages/5_Teach.py").run()
    assert not at.exception, at.exception
    return at


def test_teach_page_loads_with_teach_disabled(heads_root):
    at = teach_page()
    assert at.title[0].value.endswith("Teach it your photos")
    assert next(b for b in at.button if b.key == "teach_go").disabled
    assert any("No taught heads yet" in c.value for c in at.caption)
    assert os.environ["FMNIST_HEADS_DIR"] == str(heads_root)


def test_teach_from_camera_shots_then_pick_and_delete(heads_root, tmp_path):
    folder = make_folder(tmp_path / "photos")
    shots = [
        (f.name, f.read_bytes(), "Trouser" if d == "pants" else "None of the ten")
        for d in ("hat", "pants")
        for f in sorted((folder / d).glob("*.jpg"))
    ]
    at = teach_page()
    at.radio(key="teach_how").set_value("Camera, one by one").run()
    at.session_state["teach_shots"] = shots
    at.text_input(key="teach_name").set_value("shots").run()
    at.toggle(key="teach_only_mine").set_value(True).run()
    assert any("Shots: Trouser 3, None of the ten 3" in c.value or "None of the ten 3" in c.value for c in at.caption)
    next(b for b in at.button if b.key == "teach_go").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert any("Taught head **shots** on 6 photos" in s.value for s in at.success)
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert [t["name"] for t in chart["data"]][0] == "before: CNN alone"
    assert sorted(chart["data"][-1]["x"]) == ["None of the ten", "Trouser"]
    assert at.session_state["head"] == "shots"  # Predict answers with the new head from now on
    assert [h.name for h in heads.list_heads(heads_root)] == ["shots"]
    at.run()  # the sidebar picker lists it on the next run
    assert "shots" in at.selectbox(key="sidebar_head").options[1]
    # Teaching the same name again is refused in one line, nothing replaced.
    next(b for b in at.button if b.key == "teach_go").click().run()
    assert any("exists already" in e.value for e in at.error)
    next(b for b in at.button if b.key == "teach_del_shots").click().run()
    assert heads.list_heads(heads_root) == [] and at.session_state["head"] is None
