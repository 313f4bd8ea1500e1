"""The queue on a real Ray cluster: a local head started here (``ray start --head``), stopped at the end.

Four tiny runs are queued through the app's own code path (``runqueue.launch``, as the Train page's
Start does) with ``FMNIST_RAY_ADDRESS`` set, and the queue is moved on by ``runqueue.dispatch``
as the page's poll does. Two train to the end (every run-directory file, trained at the same
time), one is stopped through the stop file while Ray runs it, and one has its trainer killed
on the worker: it must end 'failed', not 'running' forever. The head is started with its own
ports, temp dir and process group, and the group is killed at the end (never `ray stop`, which
would end every Ray on the machine).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from conftest import STOPPABLE_RUN, trainer_pid

from fmnist_core import access, runqueue, runs
from fmnist_core.config import preset

pytestmark = pytest.mark.slow
RUN_FILES = {"config.json", "status.json", "metrics.jsonl", "progress.json", "model.keras", "run.json", "train.log"}


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture(scope="session")
def session_end() -> Iterator[list[threading.Thread]]:
    """Clean-ups that may finish in the background while later tests run; joined at session end."""
    threads: list[threading.Thread] = []
    yield threads
    for t in threads:
        t.join()


def _stop_head(proc: subprocess.Popen, log: IO[bytes], tmp: str) -> None:
    # SIGTERM lets `ray start --block` stop its services (measured: it takes the whole 8 s it is
    # given); then make sure the whole group is gone.
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(8)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    log.close()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_head(session_end):
    """A one-node Ray cluster (2 CPUs) in its own temp dir and process group; yields the job address."""
    pytest.importorskip("ray", reason="pip install -r requirements-ray.txt")  # make test installs it
    gcs, dash, client, agent = _free_ports(4)
    # A short path: Ray's unix sockets live under it and must stay within 107 characters.
    tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    ray_bin = str(Path(sys.executable).with_name("ray"))
    log = open(Path(tmp) / "head.log", "wb")
    cmd = [
        ray_bin, "start", "--head", "--block", "--port", str(gcs), "--dashboard-port", str(dash),
        "--dashboard-host", "127.0.0.1", "--num-cpus", "2", "--include-dashboard", "true",
        "--ray-client-server-port", str(client), "--dashboard-agent-listen-port", str(agent),
        "--temp-dir", tmp, "--disable-usage-stats",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{dash}"
    from ray.job_submission import JobSubmissionClient

    deadline = time.time() + 120
    while True:
        try:
            JobSubmissionClient(address).list_jobs()
            break
        except Exception:  # noqa: BLE001 - not up yet
            if proc.poll() is not None or time.time() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                pytest.fail("the Ray head did not start: " + (Path(tmp) / "head.log").read_text()[-3000:])
            time.sleep(0.25)
    yield address
    # The head stops in the background, while the next tests run; pytest waits for it at the end.
    stopper = threading.Thread(target=_stop_head, args=(proc, log, tmp), name="stop-ray-head")
    stopper.start()
    session_end.append(stopper)


def test_queued_runs_train_stop_and_fail_as_ray_jobs(ray_head, tmp_path, monkeypatch):
    monkeypatch.setenv("FMNIST_RAY_ADDRESS", ray_head)
    monkeypatch.setenv("FMNIST_MAX_PARALLEL", "4")  # all four at once: the test's time budget
    monkeypatch.setenv("FMNIST_RAY_CPUS_PER_RUN", "0.5")
    root = tmp_path / "runs"
    tiny = preset("fast", limit=400, epochs=1)
    longer = preset("fast", **STOPPABLE_RUN)
    ids = {
        "a": runqueue.launch(tiny, root, run_id="a", owner="Ann"),
        "b": runqueue.launch(tiny, root, run_id="b", owner="Bob"),
        "stop": runqueue.launch(longer, root, run_id="stop", owner="Ann"),
        "kill": runqueue.launch(longer, root, run_id="kill", owner="Bob"),
    }
    statuses = {k: runs.read_json(d / "status.json") for k, d in ids.items()}
    jobs = {k: s.get("ray_job") or "" for k, s in statuses.items()}
    assert all(j.startswith("fmnist-") for j in jobs.values()), statuses

    def training(d: Path) -> bool:
        p = runs.read_json(d / "progress.json") or {}
        return p.get("phase") == "train" and p.get("batch", 0) > 0

    stopped = killed = False
    deadline = time.time() + 420
    while time.time() < deadline:
        runqueue.dispatch(root, wait=False)  # what each poll of the Train page does
        if not stopped and training(ids["stop"]):
            with pytest.raises(access.AccessError):
                runqueue.stop("stop", root, access.Actor("Bob", "learner"))  # not his
            assert runqueue.stop("stop", root, access.Actor("Ann", "learner")) == "stopping"
            stopped = True
        if not killed and training(ids["kill"]):
            os.kill(trainer_pid(ids["kill"]), signal.SIGKILL)  # the worker's trainer
            killed = True
        if stopped and killed and not any(r.active for r in runs.list_runs(root)):
            break
        time.sleep(0.25)  # a short poll: the stop and the kill land as soon as training begins
    info = {k: runs.load_run(d) for k, d in ids.items()}
    assert {k: i.status for k, i in info.items()} == {
        "a": "finished",
        "b": "finished",
        "stop": "stopped",
        "kill": "failed",
    }, {k: (i.status, i.status_data.get("error"), (i.path / "train.log").read_text()[-1500:]) for k, i in info.items()}
    for k in ("a", "b"):
        assert {p.name for p in ids[k].iterdir()} >= RUN_FILES, k
        assert info[k].epochs_done == 1 and info[k].test_accuracy is not None
    # a and b trained at the same time on the cluster.
    sa, sb = info["a"].status_data, info["b"].status_data
    assert sa["started_at"] < sb["ended_at"] and sb["started_at"] < sa["ended_at"]
    assert info["stop"].has_model and info["stop"].epochs_done < longer.epochs  # stopped early, best weights kept
    assert "Ray job" in info["kill"].status_data["error"] and not (ids["kill"] / "model.keras").exists()

    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(ray_head)

    def final_status(job_id: str) -> JobStatus:
        # The run folder says "finished" as soon as the trainer wrote it; Ray marks the job done
        # only after the process has exited and the job supervisor has noticed: wait for that.
        deadline = time.time() + 90
        while (status := client.get_job_status(job_id)) in (JobStatus.PENDING, JobStatus.RUNNING):
            assert time.time() < deadline, f"Ray job {job_id} still {status} 90 s after its run ended"
            time.sleep(0.25)
        return status

    assert final_status(jobs["a"]) == JobStatus.SUCCEEDED
    assert final_status(jobs["kill"]) == JobStatus.FAILED


def test_without_the_setting_nothing_of_ray_is_imported(tmp_path):
    code = (
        "import sys; from pathlib import Path; from fmnist_core import runqueue, runs\n"
        f"root = Path({str(tmp_path)!r})\n"
        "runqueue.dispatch(root); runqueue.queue_view(root); runs.list_runs(root)\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))"
    )
    env = {k: v for k, v in os.environ.items() if k != "FMNIST_RAY_ADDRESS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
