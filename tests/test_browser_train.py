"""Real-browser tests of the Train page (headless Chromium): start, watch, leave, come back, stop,
and a run started from the CLI showing live. Screenshots go to test-artifacts/train-*.png.

Timing: the trainer is a real process (TensorFlow import ~3 s, then the data); every wait polls
the page or the run folder with a generous limit and nothing asserts on elapsed time.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import app_state, note_retry, screenshot
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from fmnist_core import runs
from fmnist_core.bench.browser import wait_for_app
from fmnist_core.config import PRESETS

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
LONG = 180_000  # ms: the limit for anything that waits on training

# Points of the training-accuracy curve on the live chart, but only while the live panel shows run
# `id`. Elements of the previous script run are marked data-stale="true" until redrawn: ignore them
# (-1 = nothing to say right now).
POINTS_JS = """(id) => {
  const fresh = (e) => e.closest('[data-testid="stElementContainer"]')?.getAttribute('data-stale') !== 'true';
  const h = [...document.querySelectorAll('h3')].find(e => e.textContent.includes(id) && fresh(e));
  const charts = [...document.querySelectorAll('[data-testid="stVegaLiteChart"] svg')];
  // Each chart names its run under its title: a fragment redraw can leave the previous run's
  // charts on screen for a moment beside the new heading.
  const acc = charts.find(e => fresh(e) && e.textContent.includes('Accuracy') && e.textContent.includes(id));
  if (!h || (!acc && charts.length)) return -1;  // not this run, or mid-redraw
  const train = (p) => (p.getAttribute('aria-label') || '').includes('curve: train');
  return acc ? [...acc.querySelectorAll('.mark-symbol path')].filter(train).length : 0;
}"""


def open_train(page, url: str) -> None:
    page.goto(url + "/Train", timeout=LONG)  # the machine is busy training: be patient
    page.get_by_role("button", name="Start training").wait_for(timeout=LONG)
    # The augmentation preview is drawn last (the first visit loads TensorFlow for it).
    page.locator('[data-testid="stImage"] img').first.wait_for(timeout=LONG)
    wait_for_app(page, timeout=LONG)


def set_number(page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    page.wait_for_function(
        "([l, v]) => document.querySelector(`input[aria-label='${l}']`).value == v", arg=[label, str(value)]
    )
    wait_for_app(page)


def start_from_page(page, root: Path, preset: str, limit: int, epochs: int) -> runs.RunInfo:
    """Fill the form like a person and press Start; return the run it launched.

    Like a person, it looks at the form after each change before the next one: a click that lands
    while the preset's rerun is still on its way would otherwise be overwritten by the preset's
    values (seen once in CI: the run started on all 60,000 images).
    """
    page.locator('[data-testid="stRadio"]').get_by_text(preset, exact=True).click()
    epochs_box = page.get_by_label("Epochs", exact=True)
    expect(epochs_box).to_have_value(str(PRESETS[preset].epochs), timeout=LONG)  # the preset is loaded
    wait_for_app(page)
    use_all = page.get_by_role("switch", name="Use all 60,000 training images")
    expect(use_all).to_be_checked()
    use_all_label = page.get_by_text("Use all 60,000 training images")
    use_all_label.click()
    expect(use_all).not_to_be_checked()
    limit_box = page.get_by_label("Training images", exact=True)
    try:
        expect(limit_box).to_be_enabled(timeout=60_000)
    except AssertionError:
        # Seen once in CI (docs/RELIABILITY.md, open): the switch showed off and the box stayed
        # disabled for 180 s. A person would flip the switch again; so does the test, and says so.
        state = app_state(page)
        screenshot(page, "train_use_all_unanswered")
        note_retry(
            f"the 'Use all' switch showed off, the Training images box stayed disabled 60 s; again. Page: {state}"
        )
        use_all_label.click()
        expect(use_all).to_be_checked()
        wait_for_app(page)
        use_all_label.click()
        expect(use_all).not_to_be_checked()
        expect(limit_box).to_be_enabled(timeout=LONG)
    set_number(page, "Training images", limit)
    set_number(page, "Epochs", epochs)
    # What the page shows is what Start sends.
    expect(use_all).not_to_be_checked()
    expect(page.get_by_label("Training images", exact=True)).to_have_value(str(limit))
    expect(epochs_box).to_have_value(str(epochs))
    before = {r.run_id for r in runs.list_runs(root)}
    page.get_by_role("button", name="Start training").click()
    deadline = time.time() + 30
    while time.time() < deadline:
        new = [r for r in runs.list_runs(root) if r.run_id not in before]
        if new:
            assert len(new) == 1
            got = (new[0].config["limit"], new[0].config["epochs"])
            assert got == (limit, epochs), f"the form showed {(limit, epochs)} but the run got {got}"
            return new[0]
        time.sleep(0.2)
    pytest.fail("pressing Start training did not create a run")


def watch_points(page, run_id: str, until: int) -> list[int]:
    """Point counts seen on the chart (on every change) until it shows ``until`` points."""
    seen: list[int] = []
    deadline = time.time() + LONG / 1000
    while time.time() < deadline:
        # A 0 after points is recorded: the charts are updated in place, so they must never be
        # empty again (docs/RELIABILITY.md: with Plotly they were mounted anew at each epoch).
        n = page.evaluate(POINTS_JS, run_id)
        if n >= 0 and (not seen or n != seen[-1]):
            seen.append(n)
        if n >= until:
            return seen
        page.wait_for_timeout(150)
    pytest.fail(f"the chart of {run_id} showed {seen}, never {until} points")


def show_live_panel(page) -> None:
    """Scroll the live panel into view: Streamlit scrolls inside its own container, so a
    full-page screenshot only shows what is on screen."""
    page.locator("h3").first.scroll_into_view_if_needed()


def no_error_boxes(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert not page.errors, page.errors


@pytest.fixture()
def no_leftover_run(runs_root):
    """The runs folder; its fixture stops any run a failing test left behind."""
    return runs_root


def test_tiny_run_from_the_page_draws_growing_curves(page, app_server, no_leftover_run):
    root = no_leftover_run
    open_train(page, app_server)
    screenshot(page, "train-idle")
    # 400 images, batch 32: 10 steps an epoch. Six epochs (the report's patience is 5, so early
    # stopping cannot end it sooner) give the 1-second poll time to show the points arrive.
    run = start_from_page(page, root, "paper", limit=400, epochs=6)
    page.locator("h3", has_text=run.run_id).wait_for(timeout=LONG)
    seen = watch_points(page, run.run_id, until=6)
    show_live_panel(page)
    screenshot(page, "train-tiny-running")
    assert seen == sorted(seen), f"points must only grow: {seen}"
    assert len([n for n in seen if 0 < n < 6]) >= 1, f"no intermediate state seen: {seen}"
    page.get_by_text("Run finished after 6 epochs").wait_for(timeout=LONG)
    assert runs.load_run(run.path).status == "finished"
    show_live_panel(page)
    screenshot(page, "train-tiny-finished")
    no_error_boxes(page)


def test_leave_and_come_back_then_stop_keeps_the_model(page, browser, app_server, no_leftover_run):
    root = no_leftover_run
    open_train(page, app_server)
    # The fast preset has no early stopping, and 200 short epochs (15 steps each) leave minutes of
    # runway on either CPU kind while the first epoch, which the test waits for, comes soon after
    # the trainer's start-up: only Stop can end it.
    run = start_from_page(page, root, "fast", limit=2000, epochs=200)
    # The progress bar counts batches: training has begun. (A bare "batch" also matched the form's
    # "Batch size" label, so the test used to leave before the trainer had started.)
    progress = page.locator('[data-testid="stProgress"]')
    progress.get_by_text(re.compile(r"batch [\d,]+ of [\d,]+")).first.wait_for(timeout=LONG)
    # Leave for Home, then come back: the same run is still drawing.
    # A menu click while the live panel redraws used to be dropped (2 of about 8 clean-clone CI
    # runs): a race in Streamlit's server, fixed in ui/streamlit_fixes.py (docs/RELIABILITY.md).
    # A person would click again if it ever happened; so does this test, once, and it says so.
    home = page.locator('[data-testid="stSidebar"]').get_by_role("link", name="Home")
    home.click()
    try:
        page.get_by_text("Where to go").wait_for(timeout=15_000)
    except PlaywrightTimeout:
        note_retry("the first click on Home was dropped (the fixed race, or another cause); clicking again")
        home.click()
        page.get_by_text("Where to go").wait_for(timeout=30_000)
    screenshot(page, "train-left-for-home")
    page.locator('[data-testid="stSidebar"]').get_by_role("link", name="Train").click()
    page.locator("h3", has_text=run.run_id).wait_for(timeout=LONG)
    assert watch_points(page, run.run_id, until=1)[-1] >= 1  # the first epoch is on the chart
    first = progress.inner_text()
    page.wait_for_function(
        "(t) => { const b = document.querySelector('[data-testid=\"stProgress\"]'); return b && b.innerText != t; }",
        arg=first,
        timeout=LONG,
    )  # the batch counter moves
    # A second tab shows the same run, live.
    other = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    other.set_default_timeout(LONG)
    open_train(other, app_server)
    other.locator("h3", has_text=run.run_id).wait_for(timeout=LONG)
    other.context.close()
    show_live_panel(page)
    screenshot(page, "train-long-running")
    assert runs.load_run(run.path).status == "running"

    page.get_by_role("button", name="Stop training").click()
    page.locator("h3", has_text=run.run_id).get_by_text("stopped").wait_for(timeout=LONG)
    info = runs.load_run(run.path)
    assert info.status == "stopped"
    assert info.model_path.is_file() and info.result is not None
    assert 1 <= info.epochs_done < 200
    page.get_by_text(f"Run stopped after {info.epochs_done} epochs").wait_for()
    show_live_panel(page)
    screenshot(page, "train-stopped")
    no_error_boxes(page)


def test_run_started_from_the_cli_shows_live(page, app_server, no_leftover_run):
    root = no_leftover_run
    open_train(page, app_server)
    run_dir = root / "from-cli"
    cmd = [sys.executable, "-m", "fmnist_core", "train", "--preset", "paper", "--limit", "400", "--epochs", "6"]
    proc = subprocess.Popen([*cmd, "--run-dir", str(run_dir), "--quiet"], cwd=ROOT)
    try:
        # The page was idle (showing the tiny run); it notices the new run by itself.
        page.locator("h3", has_text="from-cli").wait_for(timeout=LONG)
        seen = watch_points(page, "from-cli", until=6)
        assert seen == sorted(seen) and len([n for n in seen if 0 < n < 6]) >= 1, seen
        show_live_panel(page)
        screenshot(page, "train-cli-run")
        assert proc.wait(timeout=LONG / 1000) == 0
        page.get_by_text("Run finished after 6 epochs").wait_for(timeout=LONG)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
    assert runs.load_run(run_dir).status == "finished"
    no_error_boxes(page)
