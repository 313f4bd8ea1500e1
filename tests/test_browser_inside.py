"""The Inside page in real headless Chromium: the maps and 10,000 points, a click on an activation map,
a box selection on the test-set map, and a photo uploaded on Predict landing on Inside's map."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT, screenshot, upload_until_answered

from fmnist_core.bench.browser import wait_for_app

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.usefixtures("fast_map")]

PHOTO = next((ROOT / "tests" / "fixtures" / "photos" / "dress").glob("*.jpg"))

MAP_JS = """
() => {
  // The figure as Plotly drew it (_fullData: arrays decoded): points per trace, the star's position.
  const gd = document.querySelector('.st-key-inside_map .js-plotly-plot');
  if (!gd || !gd._fullData) return null;
  const data = gd._fullData;
  const star = data.find(t => t.name === 'your input');
  const points = data.filter(t => t.type === 'scattergl').reduce((n, t) => n + t.x.length, 0);
  const box = gd.getBoundingClientRect(), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const px = (x, y) => ({x: box.left + xa._offset + xa.l2p(x), y: box.top + ya._offset + ya.l2p(y)});
  const trousers = data[1];  // class 1: a tight cluster on any sensible map
  const xs = Array.from(trousers.x).sort((a, b) => a - b), ys = Array.from(trousers.y).sort((a, b) => a - b);
  const mid = px(xs[xs.length >> 1], ys[ys.length >> 1]);
  return {points, traces: data.length, star: star ? [star.x[0], star.y[0]] : null, trousers: mid};
}
"""

TILE_JS = """
(key) => {
  // Pixel centre of the third tile of a block's grid, from its invisible click-target trace.
  const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
  const box = gd.getBoundingClientRect(), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const t = gd._fullData[1];
  return {x: box.left + xa._offset + xa.l2p(t.x[2]), y: box.top + ya._offset + ya.l2p(t.y[2]), channel: t.customdata[2][0]};
}
"""


def open_inside_with_fast_model(page, url: str) -> dict:
    """Open the app, pick the shipped fast model, go to Inside; returns the map's facts once drawn."""
    page.goto(url)
    box = page.get_by_role("combobox", name="Active model")
    box.wait_for()
    box.click()
    page.get_by_role("option", name="fashion_cnn_fast (shipped)").click()
    wait_for_app(page)
    page.locator("[data-testid='stSidebar']").get_by_text("Inside", exact=True).click()
    page.locator(".st-key-inside_map .js-plotly-plot").wait_for(timeout=180_000)
    wait_for_app(page)
    page.wait_for_function(f"({MAP_JS})() && ({MAP_JS})().points > 0")
    return page.evaluate(MAP_JS)


def test_maps_points_click_and_selection(app_server, page):
    facts = open_inside_with_fast_model(page, app_server)
    main = page.locator("[data-testid='stMain']")
    assert "test image #0 (Ankle boot)" in main.inner_text()
    assert facts["points"] >= 10_000, facts  # every test image (and the mistakes marked again)
    assert facts["star"] is not None
    for key in ("inside_grid_relu11", "inside_grid_relu22", "inside_grid_relu32"):
        assert page.locator(f".st-key-{key} .js-plotly-plot .heatmaplayer").count() == 1
    screenshot(page, "inside_first_visit")

    # Click the third map of block 1: it is shown large beside the input.
    grid = page.locator(".st-key-inside_grid_relu11")
    grid.scroll_into_view_if_needed()
    tile = page.evaluate(TILE_JS, "inside_grid_relu11")
    page.mouse.click(tile["x"], tile["y"])
    page.get_by_text(f"relu11, channel {tile['channel']}", exact=True).wait_for()
    wait_for_app(page)

    # A box around the middle of the Trouser cluster selects points; their images appear below.
    page.locator(".st-key-inside_map").scroll_into_view_if_needed()
    mid = page.evaluate(MAP_JS)["trousers"]
    page.mouse.move(mid["x"] - 25, mid["y"] - 25)
    page.mouse.down()
    page.mouse.move(mid["x"] + 25, mid["y"] + 25, steps=10)
    page.mouse.up()
    heading = page.get_by_text(re.compile(r"^[\d,]+ images selected"))
    heading.wait_for()
    wait_for_app(page)
    captions = page.locator(".st-key-inside_selected [data-testid='stImageCaption']").all_inner_texts()
    assert captions and sum(c.startswith("true: Trouser") for c in captions) > len(captions) / 2, captions
    screenshot(page, "inside_selection")
    assert not page.errors, page.errors


def test_a_photo_uploaded_on_predict_lands_on_the_inside_map(app_server, page):
    before = open_inside_with_fast_model(page, app_server)["star"]
    page.locator("[data-testid='stSidebar']").get_by_text("Predict", exact=True).click()
    page.get_by_text("Input", exact=True).wait_for()
    page.locator("[data-testid='stRadio']").first.get_by_text("Upload", exact=True).click()
    wait_for_app(page)
    answer = page.locator("[data-testid='stMetric']").filter(has_text="Prediction")
    upload_until_answered(page, PHOTO, answer, "inside_photo_from_predict")
    wait_for_app(page)
    page.locator("[data-testid='stSidebar']").get_by_text("Inside", exact=True).click()
    page.get_by_text(f"upload {PHOTO.name}", exact=False).first.wait_for()
    page.locator(".st-key-inside_map .js-plotly-plot").wait_for()
    wait_for_app(page)
    after = page.evaluate(MAP_JS)
    assert after["points"] >= 10_000
    assert after["star"] != before, (before, after["star"])  # the star moved to the photo's place
    screenshot(page, "inside_photo_from_predict")
    assert not page.errors, page.errors
