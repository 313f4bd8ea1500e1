"""Take the README's screenshots: the current app on the shipped models, in headless Chromium.

    .venv/bin/python -m scripts.screenshots [--out docs/screenshots] [--photo PATH]

Nothing local shows: the app runs on a fresh, temporary runs folder (``FMNIST_RUNS_DIR``) in
class mode, where a learner called Ann trains a small demo run (her name and the live curves on
Train) while a second one, Ben's, waits in the queue. The script visits every page like a
person: Train (signed in as Ann), Evaluate (clicks the Shirt -> T-shirt/top cell), Predict
(uploads a photo: the answer, then its steps from the mask to the 28x28 input), and Inside and
Teach when those pages exist (``pages/4_Inside.py``, ``pages/5_Teach.py``); it skips the others.
The demo runs are stopped and the temporary folder deleted at the end. Takes a few minutes.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from fmnist_core import runqueue, runs
from fmnist_core.bench.browser import CELL_CENTRE_JS, CHROMIUM, CHROMIUM_ARGS, wait_for_app
from fmnist_core.config import preset

ROOT = Path(__file__).resolve().parent.parent

# A CC0 phone photo of a T-shirt from clothing-dev (tests/fixtures/photos/README.md).
DEFAULT_PHOTO = ROOT / "tests" / "fixtures" / "photos" / "t-shirt" / "0bdfdcd8-8ca7-410b-8e92-d47ff1aa5546.jpg"
# Ann's run trains for minutes (long enough to be live in the screenshot); Ben's waits behind it.
DEMO_RUNS = (("Ann", preset("fast", limit=3000, epochs=40)), ("Ben", preset("paper", limit=2000, epochs=3)))
OPTIONAL_PAGES = (("Inside", "pages/4_Inside.py", "inside"), ("Teach", "pages/5_Teach.py", "teach"))


def _serve(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true"],
        cwd=ROOT,
        env=env,
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


def _wait_for_epochs(run_dir: Path, n: int, timeout: float = 600) -> None:
    """Until the run has ``n`` epochs in metrics.jsonl (curves to show), or it ended."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        metrics = run_dir / "metrics.jsonl"
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= n:
            return
        if (runs.read_json(run_dir / "status.json", {}) or {}).get("state") in ("failed", "finished", "stopped"):
            return
        time.sleep(2)


def _shoot(page, path: Path, full: bool = True) -> Path:
    wait_for_app(page, timeout=300_000)
    page.screenshot(path=str(path), full_page=full)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--photo", help="an image to upload on the Predict page (default: a test photo of a T-shirt)")
    args = ap.parse_args()
    photo = Path(args.photo or DEFAULT_PHOTO)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="fmnist-screens-"))
    root = tmp / "runs"
    root.mkdir()
    password = secrets.token_urlsafe(12)  # class mode: names and the queue show; nobody unlocks it
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "FMNIST_RUNS_DIR": str(root)}
    env["FMNIST_TEACHER_PASSWORD"] = password
    os.environ.update(FMNIST_RUNS_DIR=str(root), FMNIST_TEACHER_PASSWORD=password)  # for runqueue.launch
    demo = [runqueue.launch(cfg, root, owner=owner) for owner, cfg in DEMO_RUNS]
    shots: list[Path] = []
    proc, url = _serve(env)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 950})
            page.set_default_timeout(300_000)
            nav = page.locator("[data-testid='stSidebar']")

            page.goto(url)
            page.get_by_role("combobox", name="Active model").wait_for()
            shots.append(_shoot(page, out / "home.png"))

            nav.get_by_text("Train", exact=True).click()
            page.get_by_label("Your name", exact=True).fill("Ann")
            page.get_by_role("button", name="This is me").click()
            page.get_by_text("You are Ann").wait_for()
            _wait_for_epochs(demo[0], 3)
            page.locator("[data-testid='stImage'] img").first.wait_for()  # the augmentation preview
            time.sleep(3)  # one more poll of the live panel: the newest epoch on the curves
            # Streamlit scrolls inside its own container (full_page stops at the window): a taller
            # window for this one, so the queue and the presets are in the picture.
            page.set_viewport_size({"width": 1400, "height": 1500})
            shots.append(_shoot(page, out / "train.png"))
            page.set_viewport_size({"width": 1400, "height": 950})

            nav.get_by_text("Evaluate", exact=True).click()
            page.locator(".st-key-eval_cm .js-plotly-plot .heatmaplayer").wait_for()
            wait_for_app(page)
            pos = page.evaluate(CELL_CENTRE_JS, [6, 0])  # true Shirt, predicted T-shirt/top
            page.mouse.click(pos["x"], pos["y"])
            page.locator(".st-key-eval_gallery [data-testid='stImageCaption']").first.wait_for()
            shots.append(_shoot(page, out / "evaluate.png"))

            nav.get_by_text("Predict", exact=True).click()
            page.get_by_text("Input", exact=True).wait_for()
            page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(photo))
            page.get_by_text("Why: Grad-CAM").wait_for()
            shots.append(_shoot(page, out / "predict.png"))
            # The page scrolls inside Streamlit's own container, so full_page stops at the window:
            # scroll the steps (original, mask, garment only, ...) into view instead.
            page.get_by_text("Preprocessing steps", exact=True).scroll_into_view_if_needed()
            page.mouse.wheel(0, 250)
            shots.append(_shoot(page, out / "predict-steps.png", full=False))

            for label, script, name in OPTIONAL_PAGES:  # the photo chosen on Predict carries over
                if not (ROOT / script).is_file():
                    print(f"skipped {label}: {script} does not exist", file=sys.stderr)
                    continue
                nav.get_by_text(label, exact=True).click()
                wait_for_app(page, timeout=300_000)
                time.sleep(3)  # charts and images settle after the script ends
                shots.append(_shoot(page, out / f"{name}.png"))
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
        for run_dir in reversed(demo):  # Ben's first: cancelled while waiting, never started by Ann's end
            runqueue.request_stop(run_dir)
        for run_dir in demo:
            runs.wait(run_dir, timeout=120)
            # The trainer writes its end status, then looks at the queue once more: let it exit
            # before the folder goes, or it leaves a fresh queue lock behind.
            pid = (runs.read_json(run_dir / "status.json", {}) or {}).get("pid")
            deadline = time.time() + 30
            while pid and runs.pid_alive(pid) and time.time() < deadline:
                time.sleep(0.5)
        shutil.rmtree(tmp, ignore_errors=True)
    for path in shots:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
