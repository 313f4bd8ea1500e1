"""``bench app``: ``streamlit run`` -> Home page rendered in headless Chromium -> first prediction."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..runs import PROJECT_ROOT
from .browser import CHROMIUM, CHROMIUM_ARGS, WAIT_DONE, free_port
from .common import add_json_flag, report


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Seconds from ``streamlit run`` to the Home page drawn and to the first prediction."""
    import urllib.request

    from playwright.sync_api import sync_playwright

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if args.runs_dir:
        env["FMNIST_RUNS_DIR"] = str(Path(args.runs_dir).resolve())
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    notes: list[str] = []
    out: dict[str, Any] = {"target": "app", "home_s": None, "first_prediction_s": None}
    with sync_playwright() as p:
        # The browser is started first: the clock measures the app, not Chromium's launch.
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(120_000)
        log = tempfile.TemporaryFile()
        t0 = time.time()
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            while True:
                try:
                    with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    if proc.poll() is not None or time.time() - t0 > 120:
                        raise RuntimeError("streamlit did not start") from None
                    time.sleep(0.05)
            out["server_up_s"] = round(time.time() - t0, 2)
            page.goto(url)
            page.get_by_text("Fashion-MNIST CNN Studio").first.wait_for()
            page.wait_for_function(WAIT_DONE)
            out["home_s"] = round(time.time() - t0, 2)
            if args.screenshot:
                page.screenshot(path=str(Path(args.screenshot).with_suffix(".home.png")), full_page=True)
            out.update(_first_prediction(page, url, t0, notes))
            if args.screenshot:
                page.screenshot(path=args.screenshot, full_page=True)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            browser.close()
    out["notes"] = notes
    return out


def _first_prediction(page, url: str, t0: float, notes: list[str]) -> dict[str, Any]:
    """Open the Predict page, choose "Test image", press its random-image button, wait for the probabilities."""
    import re

    page.goto(url + "/Predict")
    page.locator('[data-testid="stMain"] h1').first.wait_for()  # the page's title is drawn
    page.wait_for_function(WAIT_DONE)
    t_page = time.time()
    button = page.get_by_role("button", name=re.compile("random", re.I))
    source = page.locator("[data-testid='stRadio']").first.get_by_text("Test image", exact=True)
    try:
        source.wait_for(timeout=15_000)  # drawn a moment after the title
    except Exception:  # Playwright's TimeoutError: a page without that choice
        pass
    for _ in range(3 if source.count() else 0):  # a click can be lost while the page still settles
        source.click()
        try:
            button.first.wait_for(timeout=5_000)
            break
        except Exception:  # Playwright's TimeoutError: not there yet
            continue
    if button.count() == 0:
        notes.append("Predict page has no 'random test image' button yet: first prediction not measured")
        return {"predict_page_s": round(t_page - t0, 2)}
    button.first.click()
    # The prediction is drawn as a metric ("Prediction: <class>, NN.N% confident") in the main area;
    # a bare percentage would also match the sidebar's test accuracy.
    page.locator('[data-testid="stMain"] [data-testid="stMetric"]').first.wait_for(timeout=60_000)
    page.wait_for_function(WAIT_DONE)
    return {"predict_page_s": round(t_page - t0, 2), "first_prediction_s": round(time.time() - t0, 2)}


def table(out: dict[str, Any]) -> str:
    """The human-readable summary of ``out``."""
    fp = out.get("first_prediction_s")
    return f"app: Home rendered after {out['home_s']} s; first prediction after {fp if fp is not None else '-'} s" + (
        "".join(f"\n  note: {n}" for n in out.get("notes", []))
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bench app`` to the bench command's subparsers."""
    p = sub.add_parser("app", help="seconds to the Home page and the first prediction in headless Chromium")
    add_json_flag(p)
    p.add_argument("--runs-dir", help="runs folder the app should use")
    p.add_argument("--screenshot", help="save the final page as PNG")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its report."""
    return report(args, measure, table)
