"""The Inside page through Streamlit's AppTest: first visit on a test image, the input shared with Predict."""

from __future__ import annotations

import pytest
from conftest import ROOT

# fast_map: the shipped fast model's map, computed once per session into the session's cache.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("runs_root", "fast_map")]


@pytest.fixture()
def at():
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    app.session_state["model_key"] = "shipped:fashion_cnn_fast"
    app.run()
    return app


def _text(app) -> str:
    return "\n".join(str(m.value) for m in app.markdown)


def test_a_first_visit_shows_every_section_on_a_test_image(at):
    at.switch_page("pages/4_Inside.py").run()
    assert not at.exception, at.exception
    text = _text(at)
    assert "**test image #0 (Ankle boot)**" in text
    for block in (
        "**Block 1** · `relu11` · 28×28×16",
        "**Block 2** · `relu22` · 14×14×32",
        "**Block 3** · `relu32` · 7×7×64",
    ):
        assert block in text
    headers = [h.value for h in at.subheader]
    assert headers[-4:] == [
        "Layer by layer",
        "What a channel looks for",
        "The map of the test set",
        "Compare two models",
    ]
    # 3 block grids, dense units, the ten outputs, the filters and the map.
    assert len(at.get("plotly_chart")) == 7
    assert len([b for b in at.button if str(b.key).startswith("top-zoom-")]) == 16  # the channel's top images
    assert not at.get("progress")  # the map was on disk: no progress bar


def test_an_input_chosen_on_predict_is_the_one_seen_inside(at):
    at.session_state["predict_source"] = "Test image"
    at.session_state["predict_test_index"] = 42
    at.switch_page("pages/3_Predict.py").run()
    assert not at.exception, at.exception
    shared = at.session_state["current_input"]
    assert shared["source"] == "Test image" and shared["x28"].shape == (28, 28) and shared["photo_bytes"] is None
    at.switch_page("pages/4_Inside.py").run()
    assert not at.exception, at.exception
    assert at.radio(key="inside_source").value == "Test image"
    assert "**test image #42 (" in _text(at)


def test_a_channel_choice_shows_its_top_images(at):
    at.switch_page("pages/4_Inside.py").run()
    at.selectbox(key="inside_layer").select("relu32").run()
    at.number_input(key="inside_channel").set_value(63).run()
    assert not at.exception, at.exception
    assert any("channel 63 of relu32" in str(c.value) for c in at.caption)


def test_compare_draws_two_maps_side_by_side(at, runs_root):
    import shutil

    # The run's model file becomes a copy of the fast model: the same SHA-256, so the same cached map.
    shutil.copy(ROOT / "models" / "fashion_cnn_fast.keras", runs_root / "tiny" / "model.keras")
    at.switch_page("pages/4_Inside.py").run()
    at.toggle(key="inside_compare").set_value(True).run()
    options = at.selectbox(key="inside_other").options
    at.selectbox(key="inside_other").select_index(next(i for i, o in enumerate(options) if o.startswith("tiny"))).run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 9  # the page's 7 and the two maps
    assert not at.get("progress")
