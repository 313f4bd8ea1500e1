"""In a real browser: upload a small zip of class folders on the Teach page, press Teach, and see the
before/after chart, the per-class table and the new head in the list and in the sidebar picker."""

from __future__ import annotations

import pytest
from conftest import screenshot
from playwright.sync_api import expect
from teach_photos import make_folder, make_zip

from fmnist_core.bench.browser import wait_for_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The sidebar's text and its widgets' values (a selectbox shows its choice in an input or a div).
SIDEBAR_SHOWS = """(text) => {
  const bar = document.querySelector("[data-testid='stSidebar']");
  const values = [...bar.querySelectorAll("input")].map((i) => i.value + " " + (i.getAttribute("aria-label") || ""));
  return (bar.innerText + " " + values.join(" ")).includes(text);
}"""


def test_upload_zip_and_teach(app_server, page, tmp_path):
    archive = tmp_path / "my-class.zip"
    archive.write_bytes(make_zip(make_folder(tmp_path / "photos"), {"my-class/hat/readme.txt": b"hello"}))
    page.goto(app_server)
    link = page.locator("[data-testid='stSidebar']").get_by_text("Teach", exact=True)
    link.wait_for()
    link.click()
    main = page.locator("[data-testid='stMain']")
    main.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(archive))
    expect(main.get_by_text("6 photo(s) found, 1 file(s) skipped")).to_be_visible(timeout=60_000)
    expect(main.get_by_text("skipped my-class/hat/readme.txt: not an image (.txt)")).to_be_visible()
    name = main.get_by_label("Name of the head")
    name.fill("browser-zip")
    name.press("Enter")
    wait_for_app(page)
    main.get_by_text("Only mine", exact=True).click()
    wait_for_app(page)
    main.get_by_role("button", name="Teach").click()
    try:
        expect(main.get_by_text("Taught head browser-zip on 6 photos")).to_be_visible(timeout=180_000)
        expect(main.locator("[data-testid='stPlotlyChart']")).to_have_count(1)
        expect(main.locator("[data-testid='stDataFrame']")).to_have_count(1)
        wait_for_app(page)
        expect(main.get_by_text("browser-zip · no owner")).to_be_visible()  # in the list of taught heads
        page.wait_for_function(SIDEBAR_SHOWS, arg="browser-zip, 6 photos", timeout=30_000)  # picked there
    finally:
        screenshot(page, "teach_zip")
    assert not page.errors, page.errors
