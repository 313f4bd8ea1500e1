"""Queued runs as Ray jobs, for a class that outgrows one machine.

With ``FMNIST_RAY_ADDRESS`` set (the head's dashboard address, e.g. ``http://head:8265``), the
dispatcher (runqueue.py) submits each run it starts through Ray's job-submission API. The
entrypoint is the unchanged trainer, ``python -m fmnist_core train --config ... --run-dir ...``,
run in the project folder on whichever worker Ray picks. The run folders live on storage that
the app and every worker mount at the same path (``FMNIST_RUNS_DIR``), so the page reads live
curves and the stop file works exactly as on one machine.

Settings (environment):

- ``FMNIST_RAY_ADDRESS``: the job-submission (dashboard) address of the cluster.
- ``FMNIST_RUNS_DIR``: the shared runs folder (same path on every machine).
- ``FMNIST_RAY_PROJECT_DIR`` / ``FMNIST_RAY_PYTHON``: where the project and its Python are on the
  workers (default: the same paths as here, as after the same checkout and ``make`` everywhere).
- ``FMNIST_RAY_CPUS_PER_RUN``: CPUs Ray reserves per run (default 1: start each 2-core worker
  with ``--num-cpus 1`` for one run per machine).
- ``FMNIST_MAX_PARALLEL``: runs at once; default: the cluster's CPUs / CPUs per run.

Liveness: a Ray run's pid is on another machine, so the dispatcher asks Ray instead. A job
that ended (FAILED, STOPPED, or SUCCEEDED without the trainer's final status, e.g. a killed
worker) while status.json still says active is marked failed with Ray's message.

This module is imported only when ``FMNIST_RAY_ADDRESS`` is set.
"""

from __future__ import annotations

import os
import shlex
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ray.job_submission import JobStatus, JobSubmissionClient

from . import runs

ENDED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED)
_CLIENTS: dict[str, RayBackend] = {}
_CLIENTS_LOCK = threading.Lock()


class RayBackend:
    """Starts, watches and stops queued runs as Ray jobs."""

    name = "ray"

    def __init__(self, address: str, root: Path) -> None:
        self.address = address
        self.root = Path(root)
        self.client = JobSubmissionClient(address)
        self._capacity: tuple[float, int] | None = None  # (measured at, value): cached 30 s

    @classmethod
    def cached(cls, address: str, root: Path) -> RayBackend:
        """One client per address and runs folder (making one costs an HTTP round trip)."""
        key = f"{address}|{Path(root).resolve()}"
        with _CLIENTS_LOCK:
            if key not in _CLIENTS:
                _CLIENTS[key] = cls(address, root)
            return _CLIENTS[key]

    # ---------------------------------------------------------------- capacity

    @staticmethod
    def cpus_per_run() -> float:
        try:
            return max(0.01, float(os.environ.get("FMNIST_RAY_CPUS_PER_RUN") or 1))
        except ValueError:
            return 1.0

    def capacity(self) -> int:
        """Runs at once: ``$FMNIST_MAX_PARALLEL`` or the cluster's CPUs / CPUs per run."""
        if os.environ.get("FMNIST_MAX_PARALLEL"):
            return runs.max_parallel()
        now = time.time()
        if self._capacity is None or now - self._capacity[0] > 30:
            self._capacity = (now, max(1, int(self.cluster_cpus() // self.cpus_per_run())))
        return self._capacity[1]

    def cluster_cpus(self) -> float:
        """CPUs of the alive nodes, from Ray's state API."""
        from ray.util.state import list_nodes

        nodes = list_nodes(address=self.address, filters=[("state", "=", "ALIVE")], detail=True)
        return float(sum((n.resources_total or {}).get("CPU", 0) for n in nodes))

    def free_slots(self, running: int) -> int:
        return self.capacity() - running

    # ---------------------------------------------------------------- start / watch / stop

    def entrypoint(self, run_dir: Path) -> str:
        """The trainer command, as on one machine, with its output in the run's train.log."""
        project = os.environ.get("FMNIST_RAY_PROJECT_DIR") or str(runs.PROJECT_ROOT)
        python = os.environ.get("FMNIST_RAY_PYTHON") or sys.executable
        q = shlex.quote
        run_dir = Path(run_dir).resolve()
        return (
            f"cd {q(project)} && exec {q(python)} -m fmnist_core train --config {q(str(run_dir / 'config.json'))}"
            f" --run-dir {q(str(run_dir))} --quiet >> {q(str(run_dir / 'train.log'))} 2>&1"
        )

    def start(self, run_dir: Path) -> None:
        run_dir = Path(run_dir)
        env = {
            "PYTHONUNBUFFERED": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            # Every run on the shared folder takes one of `capacity` slot locks.
            "FMNIST_MAX_PARALLEL": str(self.capacity()),
        }
        for name in ("FMNIST_DATA_DIR",):
            if os.environ.get(name):
                env[name] = os.environ[name]
        job = f"fmnist-{run_dir.name}-{os.urandom(3).hex()}"
        # Written before the job exists: the trainer may start (and write 'running') before
        # submit_job returns. Under the dispatcher's queue lock no reconcile runs in between;
        # a dispatcher killed right here leaves a job Ray does not know, which the next
        # reconcile marks failed.
        runs.set_status(run_dir, None, ray_job=job, ray_address=self.address)
        self.client.submit_job(
            entrypoint=self.entrypoint(run_dir),
            submission_id=job,
            runtime_env={"env_vars": env},
            entrypoint_num_cpus=self.cpus_per_run(),
            metadata={"run_id": run_dir.name, "runs_dir": str(run_dir.parent.resolve())},
        )

    def job_info(self, job: str) -> Any:
        return self.client.get_job_info(job)

    def reconcile(self, infos: list[runs.RunInfo]) -> bool:
        """Mark failed every active run whose Ray job has ended without the trainer's final status.

        Returns True if any status changed.
        """
        changed = False
        for r in infos:
            job = r.status_data.get("ray_job")
            if not job or r.status not in runs.ACTIVE:
                changed = runs.record_if_dead(r) or changed
                continue
            try:
                info = self.job_info(job)
            except Exception as exc:  # noqa: BLE001 - e.g. the cluster restarted and forgot the job
                if "does not exist" in str(exc) or "404" in str(exc):
                    changed = self._fail(r, f"Ray job {job} is unknown to the cluster (was it restarted?)") or changed
                continue
            if info.status in ENDED:
                msg = " ".join((info.message or "").strip().splitlines())[:300]
                error = f"Ray job {job} ended {info.status.value} without a final status: {msg}"
                changed = self._fail(r, error) or changed
        return changed

    @staticmethod
    def _fail(r: runs.RunInfo, error: str) -> bool:
        """Mark the run failed unless its trainer has written a final state by now; True if marked."""
        return runs.set_status(r.path, "failed", only_if=runs.ACTIVE, ended_at=time.time(), error=error)

    def stop(self, run_dir: Path) -> None:
        """The stop file does the work; a job Ray has not started yet is stopped by Ray."""
        job = (runs.read_json(Path(run_dir) / "status.json", {}) or {}).get("ray_job")
        if job and self.client.get_job_status(job) == JobStatus.PENDING:
            self.client.stop_job(job)
            runs.set_status(Path(run_dir), "cancelled", ended_at=time.time())
