"""The app server's CPU per open Train page while a run trains (docs/DEPLOY.md, "The app's own cost").

Starts ``streamlit run app.py`` on a fresh runs folder, queues a long ``paper`` run and pauses
its trainer (SIGSTOP: it keeps its place as the running run, so every Train page polls its
live panel each second, but it costs no CPU), opens N headless Chromium tabs on /Train, and
reads the server process's CPU seconds from /proc over 20 s::

    python -m scripts.server_cpu [--pages 0 1 2 4] [--seconds 20]

Extra ``streamlit run`` options in the environment apply, e.g.
``STREAMLIT_RUNNER_POST_SCRIPT_GC=true`` to put Streamlit's collection after every run back.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from fmnist_core import runqueue, runs
from fmnist_core.bench.browser import CHROMIUM, CHROMIUM_ARGS, free_port
from fmnist_core.config import preset

ROOT = Path(__file__).resolve().parent.parent


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(runs_root: Path, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "FMNIST_RUNS_DIR": str(runs_root), "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
            return server
        except OSError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit(f"the app did not start: see {log}")


def paused_run(runs_root: Path) -> int:
    """Queue a long run, wait until its trainer runs, pause it; its pid."""
    run_dir = runqueue.launch(preset("paper", limit=6000, epochs=20), runs_root, owner="")
    for _ in range(600):
        status = runs.read_json(run_dir / "status.json") or {}
        if status.get("state") == "running" and status.get("pid"):
            time.sleep(10)  # past TensorFlow's start-up, so the page shows a training run
            os.kill(status["pid"], signal.SIGSTOP)
            return int(status["pid"])
        time.sleep(0.3)
    raise SystemExit(f"the run did not start: see {run_dir / 'train.log'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, nargs="+", default=[0, 1, 2, 4])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--port", type=int, default=None, help="default: a free port")
    args = ap.parse_args()
    args.port = args.port or free_port()

    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="server-cpu-"))
    server = start_server(work / "runs", args.port, work / "streamlit.log")
    trainer = None
    try:
        trainer = paused_run(work / "runs")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            tabs = []
            for n in sorted(args.pages):
                while len(tabs) < n:
                    tab = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                    tab.goto(f"http://127.0.0.1:{args.port}/Train", timeout=180_000)
                    tab.get_by_role("button", name="Start training").wait_for(timeout=180_000)
                    tabs.append(tab)
                time.sleep(8)  # past the pages' first draw
                c0, t0 = cpu_seconds(server.pid), time.time()
                time.sleep(args.seconds)
                used = (cpu_seconds(server.pid) - c0) / (time.time() - t0)
                print(f"{n} Train pages open: the server used {used:.2f} of a core", flush=True)
            browser.close()
    finally:
        if trainer:
            os.kill(trainer, signal.SIGCONT)
            os.kill(trainer, signal.SIGTERM)
        server.terminate()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
