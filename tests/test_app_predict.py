"""The Predict page through Streamlit's AppTest: test image, upload (good, odd and broken files)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

from scripts.photo_like import render_photo

# runs_root: an isolated runs folder holding the tiny trained run (the model the page uses).
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("runs_root")]


@pytest.fixture()
def at():
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    app.run()
    app.switch_page("pages/3_Predict.py")
    app.run()
    assert not app.exception, app.exception
    return app


def _metric(app):
    metrics = [m for m in app.metric if m.label == "Prediction"]
    return metrics[0] if metrics else None


def test_page_starts_on_upload_with_no_prediction(at):
    assert at.radio(key="predict_source").value == "Upload"
    assert len(at.get("file_uploader")) == 1
    assert _metric(at) is None
    assert not at.error


def test_random_test_image_shows_true_label_and_prediction(at, dataset):
    at.radio(key="predict_source").set_value("Test image").run()
    at.button(key="predict_pick").click().run()
    assert not at.exception, at.exception
    i = at.session_state["predict_test_index"]
    true_name = dataset.class_names[int(dataset.y_test[i])]
    assert any(f"#{i}" in m.value and true_name in m.value for m in at.markdown)
    metric = _metric(at)
    assert metric is not None and metric.value in dataset.class_names
    # The chart, the steps strip, both heat maps and the class examples are drawn.
    assert len(at.get("plotly_chart")) == 1
    assert any(s.value == "Preprocessing steps" for s in at.subheader)
    assert any("Grad-CAM" in s.value for s in at.subheader)
    assert any(s.value == f"Training images labelled {metric.value}" for s in at.subheader)


def _png(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_upload_photo_is_classified_and_steps_shown(at, dataset):
    photo = render_photo(dataset.x_test[0], np.random.default_rng(0))
    at.file_uploader(key="predict_upload").set_value(("shirt.jpg", _png(photo, "JPEG"), "image/jpeg")).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    metric = _metric(at)
    assert metric is not None and metric.value in dataset.class_names
    assert "confident" in str(metric.delta)
    # Eight steps from original to the 8-bit result, each captioned.
    assert any(s.value == "Preprocessing steps" for s in at.subheader)
    # A photo gets two charts: the photo head's and the CNN's own (Fashion-MNIST only).
    assert [c.key for c in at.get("plotly_chart")] == ["predict_probs_head", "predict_probs"]


def test_camera_shot_is_classified(at, dataset):
    photo = render_photo(dataset.x_test[2], np.random.default_rng(2))
    at.radio(key="predict_source").set_value("Camera").run()
    at.camera_input(key="predict_camera").set_value(("shot.jpg", _png(photo, "JPEG"), "image/jpeg")).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert _metric(at) is not None


def test_invert_off_on_a_product_photo_warns_unlike_training(at, dataset):
    photo = render_photo(dataset.x_test[1], np.random.default_rng(1))
    at.radio(key="predict_invert").set_value("off")
    at.file_uploader(key="predict_upload").set_value(("p.png", _png(photo), "image/png")).run()
    assert not at.exception, at.exception
    assert _metric(at) is not None
    # A white background where the dataset is black: the border check must fire.
    assert any("unlike the training images" in w.value and "edges" in w.value for w in at.warning)


@pytest.mark.parametrize(
    "name,data,mime",
    [
        ("broken.png", b"\x89PNG\r\n\x1a\nnot really a png", "image/png"),
        ("empty.jpg", b"", "image/jpeg"),
        ("text.gif", b"hello world, I am not a gif", "image/gif"),
    ],
)
def test_bad_upload_gives_a_message_and_page_keeps_working(at, name, data, mime):
    at.file_uploader(key="predict_upload").set_value((name, data, mime)).run()
    assert not at.exception, at.exception
    assert any("cannot be used" in e.value or "could not be processed" in e.value for e in at.error)
    assert _metric(at) is None
    # Still usable: a test image classifies afterwards.
    at.radio(key="predict_source").set_value("Test image").run()
    at.button(key="predict_pick").click().run()
    assert not at.exception, at.exception
    assert _metric(at) is not None


def test_real_photo_upload_shows_the_mask_step_and_the_model_switch(at):
    photo = ROOT / "tests" / "fixtures" / "photos" / "shoes" / "30b6fd9b-d172-4d5d-a1c1-c36d23f769dd.jpg"
    at.file_uploader(key="predict_upload").set_value(("pair.jpg", photo.read_bytes(), "image/jpeg")).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    captions = [c for img in at.image for c in img.captions]
    assert any(c.startswith("mask (grabcut, ") for c in captions), captions
    assert "garment only" in captions
    assert any("Picked one of 2 items" in i.value for i in at.info)
    assert any("fashion_cnn_photo" in c.value for c in at.caption)  # photos use the photo model
    # Two answers side by side: the photo head's (the main answer) and the CNN's own.
    by_label = {m.label: m.value for m in at.metric}
    assert {"Prediction", "Photo head", "CNN alone"} <= set(by_label), by_label
    assert by_label["Prediction"] == by_label["Photo head"]
    texts = [m.value for m in at.markdown]
    assert any("With the photo head taught on 3,068 real photos" in t for t in texts), texts
    assert any("The CNN taught on Fashion-MNIST only" in t for t in texts), texts
    at.radio(key="predict_photo_model").set_value("active model").run()
    assert not at.exception, at.exception
    assert not any("fashion_cnn_photo" in c.value for c in at.caption)
    assert _metric(at) is not None
    assert not [m for m in at.metric if m.label == "CNN alone"]  # the tiny run has no photo head
