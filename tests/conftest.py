"""Shared fixtures: the dataset, a tiny trained run, the app served for a real browser."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from fmnist_core import runs
from fmnist_core.bench.browser import CHROMIUM, CHROMIUM_ARGS, free_port

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Speed measurements (fmnist_core.estimate) go to a per-session folder, never to the user's
# ~/.cache: a figure measured while the tests load the CPU must not become this machine's estimate.
# Set at import so AppTest, the CLI and served apps (subprocesses) inherit it.
# The xdist workers of one run share it (their measurements, scores and maps are the same).
RUN_UID = os.environ.get("PYTEST_XDIST_TESTRUNUID")  # one value for all workers of a run; None without xdist
if RUN_UID:
    os.environ["FMNIST_CACHE_DIR"] = str(Path(tempfile.gettempdir()) / f"fmnist-test-cache-{RUN_UID}")
    os.makedirs(os.environ["FMNIST_CACHE_DIR"], exist_ok=True)
else:
    os.environ["FMNIST_CACHE_DIR"] = tempfile.mkdtemp(prefix="fmnist-test-cache-")
# Taught photo heads (fmnist_core.heads) likewise: never into the project's heads/ folder.
os.environ["FMNIST_HEADS_DIR"] = tempfile.mkdtemp(prefix="fmnist-test-heads-")
# Playwright's expect() waits 5 s by default, apart from a page's own timeout: on the slow CPU
# kind a page rerun after a click can take longer (an identity check failed there that way).
expect.set_options(timeout=30_000)
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"  # screenshots from browser tests (git-ignored)
COUNTS = ARTIFACTS / "reliability-counts.jsonl"  # what the reliability tests tried (docs/RELIABILITY.md)


def record(test: str, **counts: int) -> None:
    """Append one test's counts (inputs tried, faults injected, files lost) to COUNTS."""
    COUNTS.parent.mkdir(exist_ok=True)
    with open(COUNTS, "a") as f:
        f.write(json.dumps({"test": test, **counts}) + "\n")
    print(test, counts)


# The modules that drive the app (a served app, a real browser) form one scope: one xdist worker runs
# them one after another with the app servers of their session, while the other worker runs the
# rest, a module at a time (so a module's fixtures are built once). ``make test`` runs
# ``pytest -n 2 --dist loadscope``; the scheduler below reads the scope from the test's file name.
APP_MODULES = ("test_app_pages", "test_classroom", "test_concurrency", "test_export")  # and every test_browser_*
APP_FIXTURES = {"app_server", "browser", "page"}


def scope_of(nodeid: str) -> str:
    """The xdist scope of a test: "app" for the modules that drive the app, else its module."""
    module = Path(nodeid.split("::", 1)[0]).stem
    return "app" if module.startswith("test_browser_") or module in APP_MODULES else module


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadscope`` with the app modules in one scope (``scope_of``)."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class AppScopeScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return AppScopeScheduling(config, log)


def pytest_collection_modifyitems(items) -> None:
    """A module that drives the app must be in the app scope, or it starts app servers of its own."""
    for item in items:
        if APP_FIXTURES & set(item.fixturenames) and scope_of(item.nodeid) != "app":
            raise pytest.UsageError(f"{item.nodeid} drives the app: add its module to conftest.APP_MODULES")


@pytest.fixture(scope="session")
def dataset():
    """The real Fashion-MNIST arrays (from the Debian package in CI; never the network)."""
    from fmnist_core.data import load_dataset

    return load_dataset("fashion")


# The one shared trained model: the report's CNN, 800 training images x 2 epochs = 50 steps of 32
# (about 20 s on the slow CPU, most of it the 10,000-image test evaluation). Short enough to need
# the BatchNorm re-estimation (test_batchnorm.py checks it), long enough to learn (~65% training
# accuracy). Tests ask it for files and plumbing, never for what it happened to learn.
TINY_RUN = {"limit": 1000, "epochs": 2, "augment": False, "patience": None}
# A `fast` run that a test must stop or kill while it trains: minutes on either CPU kind (a tiny
# one finished before the teacher's Stop once in CI). Used as preset("fast", **STOPPABLE_RUN).
STOPPABLE_RUN = {"limit": 3000, "epochs": 150}  # 150: lean_cnn trains 2-3x faster than quick_cnn


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, dataset) -> Path:
    """A finished run of the paper preset on 1,000 images (800 train + 200 validation), 2 epochs."""
    from fmnist_core.config import preset
    from fmnist_core.train import train

    if not RUN_UID:
        run_dir = tmp_path_factory.mktemp("runs") / "tiny"
        train(preset("paper", **TINY_RUN), run_dir, data=dataset)
        return run_dir
    # Under xdist the workers share one: the first to ask trains it, the other waits for it.
    shared = tmp_path_factory.getbasetemp().parent  # the run's folder, above each worker's own
    run_dir = shared / "tiny-run" / "tiny"
    with open(shared / "tiny-run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (run_dir / "run.json").is_file():
            shutil.rmtree(run_dir, ignore_errors=True)
            train(preset("paper", **TINY_RUN), run_dir, data=dataset)
    return run_dir


@pytest.fixture(scope="session")
def fast_model():
    """The shipped ``fast`` model (the cheapest shipped one), loaded once."""
    from fmnist_core.registry import load_model

    return load_model(ROOT / "models" / "fashion_cnn_fast.keras")


@pytest.fixture(scope="session")
def fast_map(fast_model, dataset):
    """The Inside page's map of the ``fast`` model over the 10,000 test images, made once per
    session into the session's cache folder (the model's pass and the positions shipped beside
    it: seconds), where the app and browser tests find it."""
    from fmnist_core.inside import load_or_compute_map

    return load_or_compute_map(ROOT / "models" / "fashion_cnn_fast.keras", dataset.x_test, lambda: fast_model)


def _stop_active_runs(root: Path) -> None:
    """Stop any run a test (or a failing one) left behind: never two trainers on this machine."""
    from fmnist_core import runqueue, runs

    for r in runs.list_runs(root):
        if r.active:
            runqueue.request_stop(r.path)
            runs.wait(r.path, timeout=120, poll=0.1)


def _runs_folder(parent: Path, tiny_run: Path) -> Path:
    root = parent / "runs"
    root.mkdir()
    shutil.copytree(tiny_run, root / "tiny")
    return root


def _own_server_env(request) -> dict[str, str] | None:
    """The module's ``SERVER_ENV`` (e.g. class mode's teacher password): it then gets that mode's server."""
    return getattr(request.module, "SERVER_ENV", None)


@pytest.fixture(scope="session")
def shared_runs_root(tmp_path_factory, tiny_run) -> Iterator[Path]:
    """The runs folder of the app server shared by every module without a ``SERVER_ENV``."""
    root = _runs_folder(tmp_path_factory.mktemp("served"), tiny_run)
    yield root
    _stop_active_runs(root)


class ModeServers:
    """The app servers in another mode (a module's ``SERVER_ENV``): one per distinct setting,
    started when the first module with it asks and kept for the session, so modules with the same
    setting (the classroom and identity modules: class mode) share one, as the others share theirs."""

    def __init__(self, tmp_path_factory, tiny_run: Path) -> None:
        self._tmp, self._tiny = tmp_path_factory, tiny_run
        self._servers: dict[tuple[tuple[str, str], ...], tuple[str, Path, Iterator[str]]] = {}

    def get(self, env: dict[str, str]) -> tuple[str, Path]:
        """(URL, runs folder) of the server with ``env``, started on first use."""
        key = tuple(sorted(env.items()))
        if key not in self._servers:
            root = _runs_folder(self._tmp.mktemp("served"), self._tiny)
            serving = _serve(root, env)
            self._servers[key] = (next(serving), root, serving)
        url, root, _ = self._servers[key]
        return url, root

    def root(self, env: dict[str, str]) -> Path:
        """The runs folder of the server with ``env`` (started on first use)."""
        return self.get(env)[1]

    def stop_all(self) -> None:
        for _, root, serving in self._servers.values():
            next(serving, None)  # runs _serve's shutdown
            _stop_active_runs(root)


@pytest.fixture(scope="session")
def mode_servers(tmp_path_factory, tiny_run) -> Iterator[ModeServers]:
    servers = ModeServers(tmp_path_factory, tiny_run)
    yield servers
    servers.stop_all()


@pytest.fixture(scope="module")
def module_runs_root(request) -> Iterator[Path]:
    """The runs folder of the module's app server (see ``app_server``).

    Runs a module leaves active are stopped when it ends, also in a shared folder: the next
    module must not find a trainer on the machine. In another mode's folder the names the
    module's learners claimed are released too, as a teacher does after a class: the next
    module's learners claim theirs in a class of their own.
    """
    env = _own_server_env(request)
    if env is None:
        root = request.getfixturevalue("shared_runs_root")
    else:
        root = request.getfixturevalue("mode_servers").root(env)
    yield root
    _stop_active_runs(root)
    if env is not None:
        from fmnist_core import access

        for name in access.claimed_names(root):
            access.release_name(root, name, access.ADMIN)


@pytest.fixture()
def runs_root(request, tmp_path, tiny_run, monkeypatch) -> Iterator[Path]:
    """An isolated runs folder holding a copy of the tiny run; the app and CLI use it.

    Tests that also use ``app_server`` get the server's folder, shared by the tests of every module
    on that server (runs they start stay listed for the next test there); all others get a fresh
    folder.
    """
    if "app_server" in request.fixturenames:
        root = request.getfixturevalue("module_runs_root")
    else:
        root = _runs_folder(tmp_path, tiny_run)
    monkeypatch.setenv("FMNIST_RUNS_DIR", str(root))
    yield root
    _stop_active_runs(root)


def _serve(runs_root: Path, extra_env: dict[str, str]) -> Iterator[str]:
    """`streamlit run app.py` on a free localhost port over ``runs_root``; yields the URL, then stops it."""
    port = free_port()
    env = {**os.environ, "FMNIST_RUNS_DIR": str(runs_root), "TF_CPP_MIN_LOG_LEVEL": "3", **extra_env}
    log = open(runs_root.parent / "streamlit.log", "wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("streamlit did not start within 60 s: " + (runs_root.parent / "streamlit.log").read_text()[-2000:])
    yield url
    proc.terminate()
    try:
        proc.wait(5)  # measured: it often ignores SIGTERM for the whole 10 s it used to get
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


@pytest.fixture(scope="session")
def shared_app_server(shared_runs_root) -> Iterator[str]:
    """The app server of every module without a ``SERVER_ENV``, over ``shared_runs_root``."""
    yield from _serve(shared_runs_root, {})


@pytest.fixture(scope="module")
def app_server(request, module_runs_root) -> str:  # noqa: ARG001 - the folder, cleaned after the module
    """`streamlit run app.py` on a free localhost port, with its runs folder; the URL.

    Starting a server (and loading TensorFlow and a model in it) costs 10-20 s on the slow CPU, so
    the browser modules share one (every browser test opens its own tab, so tests do not share a
    session). A module that needs the server in another mode sets ``SERVER_ENV`` (a dict of
    environment variables) and gets the server of that mode, shared with the modules that set the
    same (``ModeServers``).
    """
    extra_env = _own_server_env(request)
    if extra_env is None:
        return request.getfixturevalue("shared_app_server")
    return request.getfixturevalue("mode_servers").get(extra_env)[0]


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright (no browser download needed)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    """A fresh browser tab (1400x1000) whose console errors are collected in page.errors."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    ctx.close()


def screenshot(page, name: str) -> Path:
    """Save a PNG under test-artifacts/ (to look at) and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


class RetryWarning(Warning):
    """A browser test had to act twice, as a person would (docs/RELIABILITY.md lists why)."""


def note_retry(text: str) -> None:
    """Say that a test acted again: in the warnings summary at the end of the run, also when it passes."""
    print(text)
    warnings.warn(text, RetryWarning, stacklevel=2)


APP_STATE_JS = """
() => {
  const texts = s => Array.from(document.querySelectorAll(s)).map(e => e.innerText.trim().slice(0, 300));
  const main = document.querySelector('[data-testid="stMain"]');
  return {
    running: !!document.querySelector('[data-testid="stStatusWidget"]'),
    exceptions: texts('[data-testid="stException"]'),
    alerts: texts('[data-testid="stAlert"]'),
    uploaders: texts('[data-testid="stFileUploader"]'),
    url: location.href,
    main_end: main ? main.innerText.slice(-400) : null,
  };
}
"""


def app_state(page) -> dict:
    """What the app shows right now, for a failure message: a script run going on, exceptions,
    alerts, what each file uploader holds (its text names a held file), the main area's last text."""
    return page.evaluate(APP_STATE_JS)


def upload_until_answered(page, path: Path, answer, name: str, timeout: float = 60_000) -> None:
    """Give ``path`` to the page's file uploader and wait for the ``answer`` locator.

    If the app is idle and unanswered after ``timeout`` ms, it screenshots and prints what the page
    shows, then picks the file once more, as a person would (docs/RELIABILITY.md: an upload once
    went unanswered in CI); a second silence fails with both pictures of the page.
    """
    uploader = page.locator("[data-testid='stFileUploader'] input[type='file']")
    uploader.set_input_files(str(path))
    try:
        answer.wait_for(timeout=timeout)
        return
    except PlaywrightTimeoutError:
        first = app_state(page)
    screenshot(page, f"{name}_unanswered")
    if not first["running"]:
        note_retry(
            f"no answer {timeout / 1000:.0f} s after {path.name} was picked; picking it again. The page: {first}"
        )
        uploader.set_input_files(str(path))
    try:
        answer.wait_for(timeout=timeout)
    except PlaywrightTimeoutError:
        raise AssertionError(f"no answer to {path.name}: first {first}, then {app_state(page)}") from None


def trainer_pid(run_dir: Path, timeout: float = 60) -> int:
    """The trainer's process id, once its launcher has written it: a run's status.json exists
    (queued) a moment before the pid is in it, and a test that reads it at once races the launch."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        pid = (runs.read_json(run_dir / "status.json", {}) or {}).get("pid")
        if pid:
            return int(pid)
        time.sleep(0.1)
    raise AssertionError(f"no trainer pid in {run_dir / 'status.json'} after {timeout:.0f} s")
