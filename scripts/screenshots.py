"""Take the README's screenshots: the real app on the shipped models, in headless Chromium.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--photo PATH]

Starts ``streamlit run app.py`` on a free port with the project's own ``runs/`` (so a run that
is training shows live on the Train page), visits every page like a person, clicks the Shirt ->
T-shirt/top cell of the confusion matrix, uploads a photo on Predict, and saves one PNG per page.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from conftest import CHROMIUM, CHROMIUM_ARGS, wait_for_app  # noqa: E402
from test_browser_evaluate import CELL_CENTRE_JS  # noqa: E402


def _serve() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true"],
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("streamlit did not start")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--photo", help="an image to upload on the Predict page")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    names = ["home", "train", "evaluate", "predict"]
    proc, url = _serve()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 950})
            page.set_default_timeout(300_000)
            nav = page.locator("[data-testid='stSidebar']")

            page.goto(url)
            page.get_by_role("combobox", name="Active model").wait_for()
            wait_for_app(page)
            page.screenshot(path=str(out / "home.png"))

            nav.get_by_text("Train", exact=True).click()
            page.get_by_text("Start training").wait_for()
            time.sleep(4)  # let the live fragment draw a run that is training
            page.screenshot(path=str(out / "train.png"), full_page=True)

            nav.get_by_text("Evaluate", exact=True).click()
            page.locator(".st-key-eval_cm .js-plotly-plot .heatmaplayer").wait_for()
            wait_for_app(page)
            pos = page.evaluate(CELL_CENTRE_JS, [6, 0])  # true Shirt, predicted T-shirt/top
            page.mouse.click(pos["x"], pos["y"])
            page.locator(".st-key-eval_gallery [data-testid='stImageCaption']").first.wait_for()
            wait_for_app(page)
            page.screenshot(path=str(out / "evaluate.png"), full_page=True)

            nav.get_by_text("Predict", exact=True).click()
            page.get_by_text("Input", exact=True).wait_for()
            if args.photo:
                page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(args.photo)
                page.get_by_text("Why: Grad-CAM").wait_for()
            wait_for_app(page)
            page.screenshot(path=str(out / "predict.png"), full_page=True)
            if args.photo:
                # The page scrolls inside Streamlit's own container, so full_page stops at the
                # window: scroll the steps (original, mask, garment only, ...) into view instead.
                page.get_by_text("Preprocessing steps", exact=True).scroll_into_view_if_needed()
                page.mouse.wheel(0, 250)
                wait_for_app(page)
                page.screenshot(path=str(out / "predict-steps.png"))
                names.append("predict-steps")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
    for name in names:
        print(out / f"{name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
