"""A real phone photo in real headless Chromium: the mask step and both answers (photo head, CNN alone)
are shown, a box drawn on the photo re-seeds the mask."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT, note_retry, screenshot
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from test_browser_predict import open_predict, read_prediction

from fmnist_core.bench.browser import wait_for_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FLIPFLOPS = ROOT / "tests" / "fixtures" / "photos" / "shoes" / "30b6fd9b-d172-4d5d-a1c1-c36d23f769dd.jpg"


def _wait_caption(page, prefix: str, timeout: float = 60_000) -> None:
    """Wait until an image caption starting with ``prefix`` is on the page (the strip draws after the metric)."""
    page.wait_for_function(
        "p => [...document.querySelectorAll(\"[data-testid='stImageCaption']\")]"
        ".some(e => e.innerText.trim().startsWith(p))",
        arg=prefix,
        timeout=timeout,
    )


def _mask_caption(page) -> str:
    captions = [c.strip() for c in page.locator("[data-testid='stImageCaption']").all_inner_texts()]
    masks = [c for c in captions if c.startswith("mask")]
    assert masks, captions
    return masks[0]


def test_upload_shows_the_mask_and_a_box_changes_it(app_server, page):
    open_predict(page, app_server, "Upload")
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(FLIPFLOPS))
    label, _ = read_prediction(page)
    assert label, label
    main = page.locator("[data-testid='stMain']")
    main.get_by_text("Preprocessing steps").wait_for()
    screenshot(page, "photo_upload_mask")
    _wait_caption(page, "mask (")
    before = _mask_caption(page)
    assert before.startswith("mask (grabcut, ") and "1 of 2 items" in before, before
    assert "Picked one of 2 items" in main.inner_text()
    assert "Model: fashion_cnn_photo" in main.inner_text()  # uploads use the photo model by default
    screenshot(page, "photo_upload_mask")

    # Both answers side by side, each with its chart: the photo head's (11 bars: the ten classes and
    # "None of the ten") and the CNN's own, taught on Fashion-MNIST only (10 bars).
    section = main.get_by_text("What learning from real photos changes")
    section.scroll_into_view_if_needed()
    for label in ("Photo head", "CNN alone"):
        page.locator("[data-testid='stMetric']").filter(has_text=label).wait_for()
    text = main.inner_text()
    assert "With the photo head taught on 3,068 real photos" in text, text
    assert "The CNN taught on Fashion-MNIST only" in text, text
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 2", timeout=30_000)
    charts = page.locator(".js-plotly-plot")
    bars = sorted(charts.nth(i).locator("g.point").count() for i in range(charts.count()))
    assert bars == [10, 11], bars
    screenshot(page, "photo_two_answers")

    # Drag a box around the right-hand flip-flop on the photo canvas (rect mode).
    canvas = page.locator("canvas.upper-canvas").first
    canvas.wait_for()
    canvas.scroll_into_view_if_needed()  # mouse events only reach what is inside the viewport
    box = canvas.bounding_box()
    x0, y0 = box["x"] + box["width"] * 0.52, box["y"] + box["height"] * 0.08
    x1, y1 = box["x"] + box["width"] * 0.98, box["y"] + box["height"] * 0.95
    # Like a person, the pointer rests on the photo before it drags: a first drag with no pointer
    # over the canvas shortly before was dropped in each of 4 runs checked on 2026-12-03 (the
    # retry below then cost 30 s); after 1.5 s of rest on the photo it arrived at once.
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=5)
    # The canvas binds its tool once the background photo is drawn, which can take a while on a
    # loaded machine: draw again if the first box did not arrive.
    for attempt in range(3):
        page.wait_for_timeout(1500 * (attempt + 1))
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move(x0 + 5, y0 + 5, steps=3)
        page.mouse.move(x1, y1, steps=20)
        page.mouse.up()
        try:
            _wait_caption(page, "mask (grabcut (box)", timeout=30_000)
            break
        except PlaywrightTimeout:
            screenshot(page, f"photo_box_attempt{attempt}")
            note_retry(f"box attempt {attempt + 1} on the photo did not re-seed the mask; drawing again")
    else:
        raise AssertionError("the box drawn on the photo never re-seeded the mask")
    wait_for_app(page)
    after = _mask_caption(page)
    assert re.match(r"mask \(grabcut \(box\), \d+%", after), after
    assert after != before
    screenshot(page, "photo_box_mask")
    assert not page.errors, page.errors
