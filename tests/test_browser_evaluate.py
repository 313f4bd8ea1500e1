"""The Evaluate page in real headless Chromium: click a confusion-matrix cell, check its gallery."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import screenshot

from fmnist_core.bench.browser import CELL_CENTRE_JS, wait_for_app
from fmnist_core.classes import FASHION_CLASSES

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def open_evaluate_with_tiny_model(page, url: str) -> None:
    """Open the app, go to Evaluate through the sidebar and pick the tiny run as the model."""
    # Start at the root: on a fresh server a deep link can be served before app.py's navigation.
    page.goto(url)
    page.get_by_role("combobox", name="Active model").wait_for()  # app.py's sidebar is there
    page.locator("[data-testid='stSidebar']").get_by_text("Evaluate", exact=True).click()
    box = page.get_by_role("combobox", name="Model", exact=True)
    box.wait_for()
    if not box.input_value().startswith("tiny ("):  # shipped models, once they exist, come first
        box.click()
        page.get_by_role("option", name=re.compile(r"^tiny \(")).click()
    # The first visit classifies the 10,000 test images: minutes on a busy 2-core machine.
    page.locator(".st-key-eval_cm .js-plotly-plot .heatmaplayer").wait_for(timeout=300_000)
    wait_for_app(page)


def test_click_off_diagonal_cell_shows_only_its_images(app_server, runs_root, page):
    cm = np.array(json.loads((runs_root / "tiny" / "run.json").read_text())["confusion_matrix"])
    off = cm.copy()
    np.fill_diagonal(off, 0)
    true_c, pred_c = np.unravel_index(np.argmax(off), off.shape)  # the busiest off-diagonal cell
    assert off[true_c, pred_c] > 0
    true_name, pred_name = FASHION_CLASSES[true_c], FASHION_CLASSES[pred_c]

    open_evaluate_with_tiny_model(page, app_server)
    assert "Predicted class" in page.locator(".st-key-eval_cm").inner_text()
    for name in ("T-shirt/top", "Ankle boot", "Sneaker"):  # class names on the axes
        assert name in page.locator(".st-key-eval_cm").inner_text()
    screenshot(page, "evaluate_matrix")

    pos = page.evaluate(CELL_CENTRE_JS, [int(true_c), int(pred_c)])
    page.mouse.click(pos["x"], pos["y"])
    heading = page.get_by_text(
        re.compile(rf"^True {re.escape(true_name)}, predicted {re.escape(pred_name)}: \d+ images")
    )
    heading.wait_for()
    wait_for_app(page)
    n = int(re.search(r": (\d+) images", heading.inner_text()).group(1))
    assert abs(n - cm[true_c, pred_c]) <= 2  # same model; a near-tie may flip between code paths

    # The heading arrives before the 24 images: wait for the first page to be complete.
    page.wait_for_function(
        "n => document.querySelectorAll('.st-key-eval_gallery [data-testid=\"stImageCaption\"]').length >= n",
        arg=min(n, 24),
    )
    wait_for_app(page)
    captions = page.locator(".st-key-eval_gallery [data-testid='stImageCaption']").all_inner_texts()
    assert len(captions) == min(n, 24)  # the first page of the gallery
    for cap in captions:
        assert cap.startswith(f"true: {true_name} / pred: {pred_name} ("), cap
    percents = [int(re.search(r"\((\d+)%\)$", c).group(1)) for c in captions]
    assert percents == sorted(percents, reverse=True)  # most confident first
    gallery = page.locator(".st-key-eval_gallery")
    gallery.scroll_into_view_if_needed()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.st-key-eval_gallery img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    screenshot(page, "evaluate_cell_gallery")

    page.locator(".st-key-eval_gallery").get_by_role("button", name=re.compile("Enlarge$")).first.click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    dialog.locator(".js-plotly-plot").wait_for()
    dialog.locator("img").wait_for()
    assert dialog.locator("img").evaluate("i => i.decode().then(() => i.naturalWidth)") == 280  # ZOOM_PX
    assert f"true: {true_name} / pred: {pred_name}" in dialog.inner_text()
    screenshot(page, "evaluate_enlarged")
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached")

    page.get_by_text("Show rates per true class").click()  # counts -> row-normalised rates
    # While the script reruns, Streamlit keeps the old chart as a stale copy: wait for the new one alone.
    page.wait_for_function(
        "() => { const c = document.querySelectorAll('.st-key-eval_cm');"
        " return c.length === 1 && c[0].innerText.includes('%'); }"
    )
    wait_for_app(page)
    page.locator(".st-key-eval_cm").scroll_into_view_if_needed()
    screenshot(page, "evaluate_rates")
    assert not page.errors, page.errors
