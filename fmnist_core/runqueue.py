"""The durable queue of training runs: Start always succeeds, runs start in order as capacity frees.

The queue *is* the runs folder: a queued run is a run folder whose status.json says
``queued`` and holds a sequence number ``seq`` but no ``dispatched_at``. Nothing lives only
in memory, so a restart of the app or of the machine loses no queued run.

There is no daemon. ``dispatch`` is one short step, run under ``<runs>/.queue.lock`` by
whoever touches the queue: each Start, each poll of the Train page, each CLI call, and each
local trainer when it exits (``FMNIST_DISPATCH_ON_EXIT``). It marks dead runs failed (a local
trainer whose process is gone, a Ray job that ended without a final status), then starts the
oldest waiting runs while fewer than ``capacity`` train, on this machine or, with
``FMNIST_RAY_ADDRESS`` set, as Ray jobs (ray_backend.py).

Every action a person can take on a run (stop, cancel, delete, pin, clear the queue) goes through
a function here that takes the acting person (``access.Actor``) and checks it against the owner
recorded on disk, so no widget value or run id sent by a browser can bypass the check.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import access, runs
from .config import TrainConfig

# ---------------------------------------------------------------- enqueue


def _next_seq(root: Path) -> int:
    """One more than the highest sequence number ever given in ``root`` (under the queue lock)."""
    counter = root / ".queue-seq"
    last = runs.read_json(counter, 0)
    last = last if isinstance(last, int) else 0
    for r in runs.list_runs(root):  # the counter file may be missing or older than the runs
        seq = r.status_data.get("seq")
        if isinstance(seq, int) and seq > last:
            last = seq
    runs.write_json_atomic(counter, last + 1)
    return last + 1


def enqueue(
    config: TrainConfig, root: Path, run_id: str | None = None, owner: str = "", sweep: str | None = None
) -> Path:
    """Create the run folder of ``config`` as a waiting run at the end of the queue; return it."""
    root = Path(root)
    with runs.queue_lock(root):
        run_id = run_id or runs.new_run_id(config)
        run_dir = runs.run_path(run_id, root)
        n = 1
        while run_dir.exists():
            n += 1
            run_dir = runs.run_path(f"{run_id}-{n}", root)
        run_dir.mkdir(parents=True)
        fields: dict[str, Any] = {"created_at": time.time(), "seq": _next_seq(root), "owner": str(owner)[:60]}
        if sweep:
            fields["sweep"] = sweep
        runs.set_status(run_dir, "queued", **fields)
        # config.json last: list_runs shows a folder only once it has one, so never half a run.
        runs.write_json_atomic(run_dir / "config.json", config.to_dict())
    return run_dir


def launch(
    config: TrainConfig,
    root: Path | None = None,
    run_id: str | None = None,
    owner: str = "",
    sweep: str | None = None,
) -> Path:
    """Queue a run of ``config`` and start it as soon as capacity allows; return its folder.

    Never refuses for lack of capacity: the run waits in the durable queue.
    """
    root = Path(root or runs.default_runs_root())
    run_dir = enqueue(config, root, run_id=run_id, owner=owner, sweep=sweep)
    dispatch(root)
    return run_dir


# ---------------------------------------------------------------- dispatch


def backend(root: Path) -> Any:
    """The executor of queued runs: Ray when ``$FMNIST_RAY_ADDRESS`` is set, else this machine."""
    address = os.environ.get("FMNIST_RAY_ADDRESS")
    if address:
        from .ray_backend import RayBackend  # Ray is imported only when it is configured

        return RayBackend.cached(address, root)
    return LocalBackend(root)


class LocalBackend:
    """Trainer processes on this machine, at most ``runs.max_parallel()`` at once."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def capacity(self) -> int:
        return runs.max_parallel()

    def free_slots(self, running: int) -> int:
        # A trainer started by hand (`python -m fmnist_core train --run-dir ...`) in another
        # folder may still hold a slot of this one: the slot locks are the final word.
        return min(self.capacity() - running, self.capacity() - runs.busy_slots(self.root))

    def reconcile(self, infos: list[runs.RunInfo]) -> bool:
        """Write 'failed' for active runs whose trainer is gone; True if any status changed."""
        return any([runs.record_if_dead(r) for r in infos])  # a list: every run is reconciled

    def start(self, run_dir: Path) -> None:
        start_local(run_dir)

    def stop(self, run_dir: Path) -> None:
        """Nothing beyond the stop file: the trainer polls it after every batch."""


def start_local(run_dir: Path) -> int:
    """Start the trainer process for a queued run on this machine; return its pid."""
    log = open(run_dir / "train.log", "ab")
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "FMNIST_MAX_PARALLEL": str(runs.max_parallel()),
        "FMNIST_DISPATCH_ON_EXIT": "1",  # the trainer starts the next queued run when it ends
    }
    try:
        proc = _popen_trainer(run_dir, log, env)
    except OSError as exc:
        runs.set_status(run_dir, "failed", ended_at=time.time(), error=f"could not start the trainer: {exc}")
        raise runs.RunError(f"could not start the trainer: {exc}") from None
    finally:
        log.close()
    # Only if the trainer has not already moved on: never turn 'running' back into 'queued'.
    if (runs.read_json(run_dir / "status.json", {}) or {}).get("state") == "queued":
        runs.set_status(run_dir, "queued", pid=proc.pid)
    return proc.pid


def _popen_trainer(run_dir: Path, log: Any, env: dict[str, str]) -> subprocess.Popen:
    """``python -m fmnist_core train`` for the config in ``run_dir``, in its own session."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fmnist_core",
            "train",
            "--config",
            str(run_dir / "config.json"),
            "--run-dir",
            str(run_dir),
            "--quiet",
        ],
        cwd=runs.PROJECT_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # survives the Streamlit script being rerun or stopped
    )


def dispatch(root: Path | None = None, wait: bool = True) -> list[str]:
    """Start waiting runs, oldest first, while capacity allows; return the ids started.

    ``wait=False`` (page polls): if another process is dispatching right now, do nothing; it
    will start whatever can start.
    """
    root = Path(root or runs.default_runs_root())
    started: list[str] = []
    with runs.queue_lock(root, wait=wait) as locked:
        if not locked:
            return started
        ex = backend(root)
        infos = runs.list_runs(root)
        if ex.reconcile(infos):
            infos = runs.list_runs(root)
        running = sum(1 for r in infos if r.active and not r.waiting)
        waiting = waiting_runs(infos)
        for r in waiting[: max(0, ex.free_slots(running))]:
            # Marked before the start: a dispatcher killed in between leaves a run that reads
            # 'failed' after the grace period, never one that is started twice.
            runs.set_status(r.path, "queued", dispatched_at=time.time(), backend=ex.name)
            try:
                ex.start(r.path)
            except Exception as exc:  # noqa: BLE001 - one bad start must not block the queue
                runs.set_status(
                    r.path, "failed", ended_at=time.time(), error=f"could not start: {type(exc).__name__}: {exc}"
                )
                continue
            started.append(r.run_id)
    return started


def waiting_runs(infos: list[runs.RunInfo]) -> list[runs.RunInfo]:
    """The waiting runs in queue order."""

    def seq(r: runs.RunInfo) -> tuple[float, str]:
        s = r.status_data.get("seq")
        return (float(s) if isinstance(s, (int, float)) else float("inf"), r.run_id)

    return sorted((r for r in infos if r.waiting), key=seq)


# ---------------------------------------------------------------- positions and estimated start


@dataclass(frozen=True)
class QueueEntry:
    """One run of the queue as the page and ``runs --json`` show it."""

    run_id: str
    position: int  # 0 = training now, 1 = next, ...
    status: str
    owner: str
    preset: str
    sweep: str | None
    eta_start: float | None  # epoch seconds; None for running runs
    eta_end: float | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


_ESTIMATES: dict[str, tuple[float, float]] = {}  # (root, config) -> (made at, seconds)
ESTIMATE_TTL_S = 60.0  # an estimate reads every run.json: once a minute is enough for a queue


def _seconds(config: dict[str, Any], root: Path, cache: dict[str, float]) -> float:
    """Estimated wall time of a run with this config (cached: every page polls the queue)."""
    from .estimate import estimate

    key = f"{root}|{sorted(config.items())!r}"
    if key not in cache:
        made = _ESTIMATES.get(key)
        if made is None or time.time() - made[0] > ESTIMATE_TTL_S:
            try:
                seconds = estimate(TrainConfig.from_dict(config), runs_root=root).seconds
            except (ValueError, TypeError):
                seconds = 120.0
            made = _ESTIMATES[key] = (time.time(), seconds)
        cache[key] = made[1]
    return cache[key]


def queue_view(root: Path | None = None, infos: list[runs.RunInfo] | None = None) -> list[QueueEntry]:
    """Running runs (position 0) then waiting runs in order, with estimated start and end times.

    The estimate fills ``capacity`` slots: each waiting run starts when the earliest slot frees,
    a running run's slot frees after its estimated remaining time (from its progress when it has
    one, else the estimate of its whole run).
    """
    root = Path(root or runs.default_runs_root())
    infos = runs.list_runs(root) if infos is None else infos
    now = time.time()
    cache: dict[str, float] = {}
    out: list[QueueEntry] = []
    slots: list[float] = []
    running = sorted((r for r in infos if r.active and not r.waiting), key=lambda r: r.run_id)
    for r in running:
        prog = runs.read_json(r.path / "progress.json") or {}
        left = prog.get("eta_s") if isinstance(prog, dict) else None
        if not isinstance(left, (int, float)):
            started = r.status_data.get("started_at") or r.status_data.get("dispatched_at") or now
            left = max(0.0, _seconds(r.config, root, cache) - (now - float(started)))
        slots.append(now + float(left))
        out.append(QueueEntry(r.run_id, 0, r.status, r.owner, r.preset, r.sweep, None, now + float(left)))
    slots_n = max(1, capacity(root))
    slots = sorted(slots)[:slots_n] + [now] * max(0, slots_n - len(slots))
    for i, r in enumerate(waiting_runs(infos), start=1):
        slots.sort()
        start = max(now, slots[0])
        end = start + _seconds(r.config, root, cache)
        slots[0] = end
        out.append(QueueEntry(r.run_id, i, r.status, r.owner, r.preset, r.sweep, start, end))
    return out


def capacity(root: Path) -> int:
    """How many runs train at once under ``root`` (the backend's answer; the local rule if it cannot answer)."""
    try:
        return backend(root).capacity()
    except Exception:  # noqa: BLE001 - an unreachable cluster must not break the page
        return runs.max_parallel()


# ---------------------------------------------------------------- actions, each checked


def _checked_run(run_id: str, root: Path) -> runs.RunInfo:
    path = runs.run_path(run_id, root)  # validated: never outside root, never a symlink
    if not (path / "config.json").is_file():
        raise runs.RunError(f"no run {run_id!r}")
    return runs.load_run(path)


def cancel_waiting(run_dir: Path) -> bool:
    """Take a waiting run out of the queue (state 'cancelled'); False if it already started."""
    run_dir = Path(run_dir)
    with runs.queue_lock(run_dir.parent):
        status = runs.read_json(run_dir / "status.json", {}) or {}
        if not runs.is_waiting(status):
            return False
        runs.set_status(run_dir, "cancelled", ended_at=time.time())
        return True


def request_stop(run_dir: Path) -> None:
    """Ask the trainer to stop after its current batch (it keeps the best weights).

    A run still waiting in the queue is cancelled instead (it has no trainer to ask).
    No permission check here: the app calls ``stop``, which checks who asks.
    """
    if not cancel_waiting(run_dir):
        runs.write_stop_request(run_dir)


def stop(run_id: str, root: Path, actor: access.Actor) -> str:
    """Stop a running run or cancel a waiting one, if ``actor`` may; return what was done."""
    root = Path(root)
    info = _checked_run(run_id, root)
    access.check(actor, info, "stop")
    if not info.active:
        raise runs.RunError(f"run {run_id} is {info.status}, not active")
    if cancel_waiting(info.path):
        return "cancelled"
    runs.write_stop_request(info.path)
    with contextlib.suppress(Exception):  # a queued Ray job that has not started is stopped by Ray
        backend(root).stop(info.path)
    return "stopping"


def cancel(run_id: str, root: Path, actor: access.Actor) -> None:
    """Take a waiting run out of the queue, if ``actor`` may."""
    info = _checked_run(run_id, Path(root))
    access.check(actor, info, "cancel")
    if not cancel_waiting(info.path):
        raise runs.RunError(f"run {run_id} is {info.status}: only a waiting run can be cancelled (stop it instead)")


def delete(run_id: str, root: Path, actor: access.Actor) -> None:
    """Remove a run folder that is not active, if ``actor`` may."""
    info = _checked_run(run_id, Path(root))
    access.check(actor, info, "delete")
    if info.active:
        raise runs.RunError(f"run {run_id} is {info.status}; stop it before deleting it")
    if access.pinned(Path(root)) == run_id:
        access.unpin(Path(root))
    shutil.rmtree(info.path)


def clear_queue(root: Path, actor: access.Actor) -> list[str]:
    """Cancel every waiting run (teacher only); return their ids."""
    root = Path(root)
    access.check_role(actor, "clear_queue")
    done = []
    for r in waiting_runs(runs.list_runs(root)):
        if cancel_waiting(r.path):
            done.append(r.run_id)
    return done


def pin(run_id: str, root: Path, actor: access.Actor) -> None:
    """Make a finished run the class model (teacher only)."""
    root = Path(root)
    info = _checked_run(run_id, root)
    access.check(actor, info, "pin")
    if not info.has_model:
        raise runs.RunError(f"run {run_id} has no finished model to pin")
    access.set_pinned(root, run_id, actor)
