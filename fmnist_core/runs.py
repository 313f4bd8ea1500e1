"""The run directory: the contract between the trainer process and the UI.

``runs/<run_id>/`` holds ``config.json``, ``status.json``, ``metrics.jsonl`` (one line per
epoch), ``progress.json`` (batch level, throttled), ``train.log``, and at the end
``model.keras`` and ``run.json``. JSON files are written atomically (temp file + os.replace);
status.json, which several processes update, under the run's ``.status.lock``.

At most ``max_parallel()`` training processes per runs folder (``$FMNIST_MAX_PARALLEL``, default
1 on 2 cores): a trainer holds an exclusive ``flock`` on one of the slot files ``<runs>/.train.lock``,
``.train.lock.1``, ... for its whole life (the kernel drops it if the process dies, even on
SIGKILL). ``launch`` never refuses: it puts the run in the durable queue of ``runqueue.py``
(state ``queued`` with a sequence number in status.json) and dispatches what capacity allows.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import TrainConfig

ACTIVE = ("queued", "running", "stopping")
TERMINAL = ("finished", "stopped", "failed", "cancelled")  # cancelled: left the queue before it started
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
STOP_FILE = "STOP"
QUEUE_LOCK = ".queue.lock"
STATUS_LOCK = ".status.lock"  # in each run folder: one writer of status.json at a time
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class RunError(RuntimeError):
    """A run cannot be created, found or launched; the message says why."""


class RunBusyError(RunError):
    """Another run is already training."""


def default_runs_root() -> Path:
    """``$FMNIST_RUNS_DIR`` or ``<project>/runs``."""
    return Path(os.environ.get("FMNIST_RUNS_DIR") or PROJECT_ROOT / "runs")


def max_parallel() -> int:
    """How many runs may train at once in one runs folder: ``$FMNIST_MAX_PARALLEL``, default 1.

    One on a 2-core machine: two trainers would each get half the cores and both finish later.
    """
    try:
        return max(1, int(os.environ.get("FMNIST_MAX_PARALLEL") or 1))
    except ValueError:
        return 1


def validate_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is a safe folder name (letters, digits, ``_.-``), else raise."""
    # fullmatch, not match: '$' would also accept a trailing newline.
    if not isinstance(run_id, str) or not RUN_ID_RE.fullmatch(run_id) or ".." in run_id:
        raise RunError(f"invalid run id {run_id!r}: use 1-80 letters, digits, '_', '-' or '.'")
    return run_id


def new_run_id(config: TrainConfig) -> str:
    """A sortable, readable id: ``20261125-031500-paper``."""
    return time.strftime("%Y%m%d-%H%M%S") + f"-{config.preset}"


# ---------------------------------------------------------------- atomic file helpers


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so a reader sees the old file or the new one, never half of one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600 files; run files are meant to be shared
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_json(path: Path, default: Any = None) -> Any:
    """Parsed JSON of ``path``, or ``default`` if missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return default


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line and flush it to disk (readers skip a torn last line)."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All complete JSON lines of ``path`` (a torn or corrupt line is skipped)."""
    out = []
    try:
        text = Path(path).read_text()
    except OSError:
        return out
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):  # a stray list or number is not an epoch record
                out.append(record)
    return out


# ---------------------------------------------------------------- process liveness


def pid_alive(pid: int | None, not_after: float | None = None) -> bool:
    """True if ``pid`` is a live (non-zombie) process that runs fmnist_core.

    ``not_after``: a time (epoch seconds) the run's process must have started by; a process that
    started later merely reuses the number of a dead trainer (pids are recycled).
    """
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError, OverflowError):
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] in ("Z", "X"):
            return False
        if not_after is not None and _process_start_time(int(fields[19])) > not_after:
            return False
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        return b"fmnist_core" in cmd
    except (OSError, IndexError, ValueError):
        return True  # no /proc: trust kill(0)


def _process_start_time(ticks: int) -> float:
    """Epoch seconds of a process start, from /proc/PID/stat's starttime (clock ticks after boot)."""
    btime = next(
        int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime")
    )
    return btime + ticks / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- a run as the UI sees it


@dataclass
class RunInfo:
    """A summary of one run folder, with its status checked against the live process."""

    run_id: str
    path: Path
    status: str
    config: dict[str, Any]
    status_data: dict[str, Any]
    metrics: list[dict[str, Any]]
    result: dict[str, Any] | None

    @property
    def preset(self) -> str:
        return self.config.get("preset", "?")

    @property
    def epochs_done(self) -> int:
        return len(self.metrics)

    @property
    def best_val_accuracy(self) -> float | None:
        vals = [m["val_accuracy"] for m in self.metrics if isinstance(m.get("val_accuracy"), (int, float))]
        return max(vals) if vals else None

    @property
    def test_accuracy(self) -> float | None:
        return (self.result or {}).get("test_accuracy")

    @property
    def duration_s(self) -> float | None:
        s = self.status_data
        start, end = s.get("started_at"), s.get("ended_at") or (time.time() if self.active else None)
        ok = all(isinstance(t, (int, float)) and t for t in (start, end))
        return (end - start) if ok else None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def waiting(self) -> bool:
        """In the queue, not yet started (it can be cancelled; it takes no capacity)."""
        return self.status == "queued" and is_waiting(self.status_data)

    @property
    def owner(self) -> str:
        """The display name of who started the run ('' for runs from before owners, or the CLI)."""
        owner = self.status_data.get("owner")
        return owner if isinstance(owner, str) else ""

    @property
    def sweep(self) -> str | None:
        sweep = self.status_data.get("sweep")
        return sweep if isinstance(sweep, str) else None

    @property
    def model_path(self) -> Path:
        return self.path / "model.keras"

    @property
    def has_model(self) -> bool:
        return self.model_path.is_file() and self.result is not None


def effective_status(status: dict[str, Any]) -> tuple[str, str | None]:
    """The status to show: an 'active' run whose process is gone is reported failed."""
    state = status.get("state", "failed")
    if state not in ACTIVE + TERMINAL:
        return "failed", f"unreadable status {str(state)[:40]!r}"
    if state == "queued" and is_waiting(status):
        return state, None  # waits in the durable queue: no process yet, and none expected
    if state in ACTIVE and status.get("ray_job"):
        # On a Ray cluster the trainer's pid belongs to another machine: the dispatcher asks Ray
        # whether the job still lives and writes 'failed' when it does not (runqueue.dispatch).
        return state, status.get("error")
    # The trainer's process starts right after the run is created (or re-started): a live process
    # with this pid that started much later is a different program that got the same number.
    stamps = [t for t in (status.get("created_at"), status.get("started_at")) if isinstance(t, (int, float))]
    not_after = max(stamps) + 120 if stamps else None
    if state in ACTIVE and not pid_alive(status.get("pid"), not_after):
        # A queued run gets a short grace period until launch has written its process id;
        # once a pid is known and dead, it failed (a killed launch must not block the next one).
        created = status.get("dispatched_at", status.get("created_at"))
        fresh = isinstance(created, (int, float)) and time.time() - created < 20
        if state == "queued" and not status.get("pid") and fresh:
            return state, None
        return "failed", status.get("error") or "the training process ended unexpectedly (killed?)"
    return state, status.get("error")


def is_waiting(status: dict[str, Any]) -> bool:
    """True for a run in the queue that no dispatcher has started yet."""
    return status.get("state") == "queued" and "seq" in status and not status.get("dispatched_at")


def load_run(path: Path) -> RunInfo:
    """Read one run folder."""
    path = Path(path)
    status = read_json(path / "status.json", {})
    status = status if isinstance(status, dict) else {}  # a corrupt file is shown as failed, never raises
    state, error = effective_status(status)
    if error:
        status = {**status, "error": error}
    return RunInfo(
        run_id=path.name,
        path=path,
        status=state,
        config=_as_dict(read_json(path / "config.json", {})),
        status_data=status,
        metrics=read_jsonl(path / "metrics.jsonl"),
        result=_as_dict(read_json(path / "run.json")) or None,
    )


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def list_runs(root: Path | None = None) -> list[RunInfo]:
    """Every run folder under ``root``, newest first."""
    root = Path(root or default_runs_root())
    if not root.is_dir():
        return []
    # Only real folders with valid names: a symlink (to anywhere) or an odd name is not a run.
    runs = [
        load_run(p)
        for p in root.iterdir()
        if RUN_ID_RE.fullmatch(p.name) and not p.is_symlink() and p.is_dir() and (p / "config.json").is_file()
    ]

    def created(r: RunInfo) -> float:
        t = r.status_data.get("created_at")
        return float(t) if isinstance(t, (int, float)) else 0.0

    return sorted(runs, key=created, reverse=True)


def active_run(infos: list[RunInfo]) -> RunInfo | None:
    """The first run of ``infos`` (newest first from ``list_runs``) that is queued, running or stopping."""
    return next((r for r in infos if r.active), None)


def run_path(run_id: str, root: Path | None = None) -> Path:
    """The folder of ``run_id`` inside ``root`` (validated: never outside it, never a symlink)."""
    root = Path(root or default_runs_root()).resolve()
    p = root / validate_run_id(run_id)
    if p.is_symlink() or p.resolve().parent != root:
        raise RunError(f"run id {run_id!r} points outside {root}")
    return p


# ---------------------------------------------------------------- status written by the trainer


@contextlib.contextmanager
def _status_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run's status lock (``.status.lock``) for one read-merge-write of status.json."""
    try:
        fd = os.open(Path(run_dir) / STATUS_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        # A folder that takes no new file: the write that follows fails with the clear error.
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def set_status(run_dir: Path, state: str | None, only_if: tuple[str, ...] | None = None, **fields: Any) -> bool:
    """Merge ``fields`` into status.json and set its state (``None`` keeps it); True if it wrote.

    One step for every process: the trainer, the dispatcher and a stop request each read, merge
    and write under the run's status lock, so none of them writes back a status without the
    other's fields. ``only_if``: change nothing unless the current state is one of these (a
    check and its write in one step: a state written in between is never overwritten).
    """
    path = Path(run_dir) / "status.json"
    with _status_lock(Path(run_dir)):
        status = read_json(path, {}) or {}
        if only_if is not None and status.get("state") not in only_if:
            return False
        status.update(fields, state=state or status.get("state", "queued"), updated_at=time.time())
        write_json_atomic(path, status)
    return True


def record_if_dead(info: RunInfo) -> bool:
    """Write 'failed' into status.json of a run that reads failed (its trainer is gone) while the
    file still says it is active; True if it wrote. Backends call it for every run they reconcile."""
    if info.status == "failed" and info.status_data.get("state") in ACTIVE:
        return set_status(
            info.path, "failed", only_if=ACTIVE, ended_at=time.time(), error=info.status_data.get("error")
        )
    return False


def _slot_files(root: Path) -> list[Path]:
    """The lock files of the training slots (slot 0 keeps the name of the single-run days)."""
    return [root / (".train.lock" if i == 0 else f".train.lock.{i}") for i in range(max_parallel())]


@contextlib.contextmanager
def train_lock(root: Path) -> Iterator[None]:
    """Hold one free training slot of ``root``, or raise RunBusyError at once if all are held."""
    root.mkdir(parents=True, exist_ok=True)
    holders = []
    for path in _slot_files(root):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holders.append(os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown")
            os.close(fd)
            continue
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
            yield
        finally:
            os.close(fd)
        return
    raise RunBusyError(f"another training run is active ({', '.join(holders)}); stop it first")


@contextlib.contextmanager
def queue_lock(root: Path, wait: bool = True) -> Iterator[bool]:
    """Hold the queue lock of ``root``; with ``wait=False`` yield False at once if another holds it.

    It guards the queue's order (runqueue.py) and the class's name table (access.py).
    """
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / QUEUE_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def busy_slots(root: Path) -> int:
    """How many training slots of ``root`` are held by a live trainer right now."""
    root.mkdir(parents=True, exist_ok=True)
    busy = 0
    for path in _slot_files(root):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            busy += 1
        finally:
            os.close(fd)
    return busy


def write_stop_request(run_dir: Path) -> None:
    """Leave the stop file for the run's trainer (it polls it after every batch) and mark it stopping.

    Storage only: a run still waiting in the queue has no trainer to ask; ``runqueue.request_stop``
    cancels those instead.
    """
    run_dir = Path(run_dir)
    (run_dir / STOP_FILE).touch()
    # In one locked step: a trainer that has just written its final state keeps it.
    set_status(run_dir, "stopping", only_if=("queued", "running"))


def stop_requested(run_dir: Path) -> bool:
    return (Path(run_dir) / STOP_FILE).exists()


def wait(run_dir: Path, timeout: float = 600, poll: float = 0.5) -> RunInfo:
    """Block until the run is no longer active (for the CLI and tests)."""
    deadline = time.time() + timeout
    while True:
        info = load_run(run_dir)
        if not info.active or time.time() > deadline:
            return info
        time.sleep(poll)
