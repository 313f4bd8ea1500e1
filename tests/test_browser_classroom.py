"""Two learners and a teacher in real browsers (headless Chromium) on one app in class mode.

Both learners' Starts are accepted and queued in order; a learner cannot stop the other's run
(no button, and the history's Stop is disabled); the teacher unlocks with the password, clears
the queue and stops the run. Screenshots: test-artifacts/class-*.png.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest
from conftest import screenshot, trainer_pid
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect
from test_browser_train import LONG, open_train, show_live_panel, start_from_page

from fmnist_core import runqueue, runs
from fmnist_core.bench.browser import wait_for_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "s3cret-for-tests"
# Class mode is a server setting: this module gets an app server of its own (conftest.app_server).
SERVER_ENV = {"FMNIST_TEACHER_PASSWORD": PASSWORD}


@pytest.fixture(scope="module")
def class_mode():
    """A teacher password in this process's environment too, while the module runs."""
    old = os.environ.get("FMNIST_TEACHER_PASSWORD")
    os.environ["FMNIST_TEACHER_PASSWORD"] = PASSWORD
    yield
    if old is None:
        os.environ.pop("FMNIST_TEACHER_PASSWORD", None)
    else:
        os.environ["FMNIST_TEACHER_PASSWORD"] = old


def new_page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(LONG)
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    return page


def closed(page) -> None:
    """Close a page the test is done with, after the checks every page gets: no exception, no error."""
    assert page.locator('[data-testid="stException"]').count() == 0
    assert not page.errors, page.errors
    page.close()


def claim(page, name: str) -> None:
    box = page.get_by_label("Your name", exact=True)
    box.fill(name)
    box.press("Enter")
    wait_for_app(page)
    page.get_by_role("button", name="This is me").click()
    page.get_by_text(f"You are {name}").wait_for()
    wait_for_app(page)


def wait_until(check, what: str, timeout: float = LONG / 1000) -> None:
    deadline = time.time() + timeout
    while not check():
        if time.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def select_history(page, run_id: str) -> None:
    """Pick ``run_id`` in the history's select. Its option list is redrawn while the live panel
    polls, so a click can land on a detached option: open, type, click, and try again if needed."""
    box = page.get_by_role("combobox", name="Run", exact=True)
    for attempt in range(5):
        box.click()
        page.keyboard.type(run_id)  # the select filters its options as one types
        try:
            page.get_by_role("option", name=run_id).first.click(timeout=15_000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
            if attempt == 4:
                raise
    wait_for_app(page)
    expect(box).to_have_value(run_id)


@pytest.mark.usefixtures("class_mode")
def test_two_learners_queue_in_order_and_only_the_teacher_stops_another_run(browser, app_server, runs_root):
    ann, bob, teacher = new_page(browser), new_page(browser), new_page(browser)
    pid = None
    t0 = time.time()

    def mark(what: str) -> None:
        print(f"{time.time() - t0:6.1f} s  {what}")  # where the time goes (pytest -s)

    try:
        for page, name in ((ann, "Ann"), (bob, "Bob")):
            open_train(page, app_server)
            expect(page.get_by_role("button", name="Start training")).to_be_disabled()  # no name yet
            claim(page, name)
        mark("names claimed")
        run_a = start_from_page(ann, runs_root, "fast", limit=6000, epochs=20)  # trains for minutes
        run_b = start_from_page(bob, runs_root, "fast", limit=400, epochs=1)
        run_a, run_b = runs.load_run(run_a.path), runs.load_run(run_b.path)
        assert (run_a.owner, run_b.owner) == ("Ann", "Bob")
        assert [r.run_id for r in runqueue.waiting_runs(runs.list_runs(runs_root))] == [run_b.run_id]
        # Pause Ann's trainer: it keeps its process and its place, and three browsers rather than
        # TensorFlow get this busy machine's two cores. It resumes when the teacher stops it.
        pid = trainer_pid(run_a.path)
        os.kill(pid, signal.SIGSTOP)
        mark("both started, Ann's trainer paused")

        # Bob sees his run waiting, first in line, with a button to leave the queue.
        bob.get_by_text("number 1 in line").wait_for()
        expect(bob.get_by_role("button", name="Leave the queue").first).to_be_visible(timeout=LONG)
        show_live_panel(bob)
        screenshot(bob, "class-bob-queued")
        # Ann's run, picked in Bob's history: its Stop is disabled.
        select_history(bob, run_a.run_id)
        expect(bob.locator(".st-key-train_history_stop button").first).to_be_disabled(timeout=LONG)
        screenshot(bob, "class-bob-cannot-stop-ann")
        assert runs.load_run(run_a.path).status in ("queued", "running")
        mark("Bob cannot stop Ann's run")
        closed(bob)  # an open Train page polls the live run every second: CPU the rest needs

        # The teacher unlocks, clears the queue (Bob's run) and stops Ann's run.
        open_train(teacher, app_server)
        teacher.get_by_role("button", name="Teacher").click()
        teacher.get_by_label("Teacher password").fill(PASSWORD)
        teacher.get_by_role("button", name="Unlock").click()
        teacher.get_by_text("Teacher tools are unlocked").wait_for()
        wait_for_app(teacher)
        mark("teacher unlocked")
        teacher.get_by_role("button", name="Clear the queue").click()
        wait_until(lambda: runs.load_run(run_b.path).status == "cancelled", "the queue to be cleared")
        # The teacher's live panel shows the run training now, Ann's, with a Stop button for her.
        teacher.locator("h3", has_text=run_a.run_id).wait_for()
        teacher.get_by_role("button", name="Stop training").first.click()
        wait_until(lambda: runs.stop_requested(run_a.path), "the teacher's stop")
        os.kill(pid, signal.SIGCONT)
        mark("teacher stopped Ann's run")
        deadline = time.time() + LONG / 1000
        while runs.load_run(run_a.path).active and time.time() < deadline:
            time.sleep(0.1)
        assert runs.load_run(run_a.path).status == "stopped"
        ann.locator("h3", has_text=run_a.run_id).get_by_text("stopped").wait_for()
        show_live_panel(ann)
        screenshot(ann, "class-ann-stopped-by-teacher")
        mark("Ann sees it stopped")
        closed(ann)
        closed(teacher)
    finally:
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)  # never leave a paused trainer behind
        for page in (ann, bob, teacher):
            page.context.close()
