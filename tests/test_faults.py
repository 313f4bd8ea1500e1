"""Faults: a trainer killed with SIGKILL, failed writes, a missing or corrupt dataset.

Promises: a killed trainer leaves every earlier model intact, is reported failed (never running)
by `python -m fmnist_core runs --json`, and a new run can start; a failed save never replaces a
good model.keras with a broken one; a dataset problem gives a clear message with the fix.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import record

from fmnist_core import data as data_mod
from fmnist_core import registry, runqueue, runs
from fmnist_core.config import preset

ROOT = Path(__file__).resolve().parent.parent


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cli_runs(root: Path) -> dict[str, dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "fmnist_core", "runs", "--json", "--root", str(root)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return {r["run_id"]: r for r in json.loads(proc.stdout)}


def wait_for(predicate, timeout: float, what: str, poll: float = 0.1):
    """Poll until ``predicate()`` is truthy (returns it) or fail after ``timeout`` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def reap(pid: int) -> None:
    """Collect the killed child (launch started it from this process), so it is not left a zombie."""
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


# ---------------------------------------------------------------- SIGKILL mid-epoch


def test_trainer_killed_mid_epoch(tmp_path, tiny_run):
    root = tmp_path / "runs"
    root.mkdir()
    models = tmp_path / "models"
    models.mkdir()
    # Earlier models: a finished run in the same folder and a "shipped" model.
    shutil.copytree(tiny_run, root / "earlier")
    shutil.copy(tiny_run / "model.keras", models / "shipped_copy.keras")
    before = {p: sha(p) for p in [root / "earlier" / "model.keras", models / "shipped_copy.keras"]}

    run_dir = runqueue.launch(preset("fast", limit=3000, epochs=20), root, run_id="victim")

    def training_started():
        p = runs.read_json(run_dir / "progress.json")
        return p if p and p.get("phase") == "train" and p.get("batch", 0) > 0 else None

    progress = wait_for(training_started, timeout=300, what="the trainer to start training")
    status = runs.read_json(run_dir / "status.json")
    assert status["state"] == "running" and cli_runs(root)["victim"]["status"] == "running"
    pid = status["pid"]
    os.kill(pid, signal.SIGKILL)

    # Not yet reaped (a zombie, as under a Streamlit server that never waits): already 'failed'.
    row = wait_for(lambda: (r := cli_runs(root)["victim"])["status"] != "running" and r, 60, "the kill to land")
    assert row["status"] == "failed", row
    assert "killed" in row["error"] or "unexpectedly" in row["error"]
    reap(pid)
    assert cli_runs(root)["victim"]["status"] == "failed"
    assert runs.load_run(run_dir).status == "failed" and runs.busy_slots(root) == 0

    # Every earlier model is byte-for-byte intact and still loads; the killed run offers no model.
    for path, digest in before.items():
        assert sha(path) == digest
        registry.load_model(path)
    assert not (run_dir / "model.keras").exists()
    assert [m.key for m in registry.run_models(root)] == ["run:earlier"]

    # A new run can start at once and finishes.
    new_dir = runqueue.launch(preset("fast", limit=200, epochs=1), root, run_id="after")
    info = runs.wait(new_dir, timeout=600, poll=0.1)
    assert info.status == "finished", (info.status, (new_dir / "train.log").read_text()[-2000:])
    registry.load_model(new_dir / "model.keras")
    rows = cli_runs(root)
    assert {k: v["status"] for k, v in rows.items()} == {"earlier": "finished", "victim": "failed", "after": "finished"}
    record(
        "faults: trainer SIGKILLed mid-epoch",
        faults_injected=1,
        killed_at_epoch=progress["epoch"],
        killed_at_batch=progress["batch"],
        earlier_models=len(before),
        files_lost=0,
        reported_failed=1,
        new_run_finished=1,
    )


def test_dead_pid_and_reused_pid_are_not_running(tmp_path):
    root = tmp_path / "runs"
    run = root / "ghost"
    run.mkdir(parents=True)
    runs.write_json_atomic(run / "config.json", preset("fast").to_dict())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    now = time.time()
    cases = {
        "dead pid": {"state": "running", "pid": dead.pid, "created_at": now - 100, "started_at": now - 90},
        # A run from ten days ago whose pid now belongs to a live process (this pytest) that
        # started long after it: the number was reused, the trainer is gone.
        "reused pid": {
            "state": "running",
            "pid": os.getpid(),
            "created_at": now - 864_000,
            "started_at": now - 864_000,
        },
        "no pid, old queue": {"state": "queued", "created_at": now - 3600},
        "garbage pid": {"state": "stopping", "pid": "12", "created_at": now - 100},
        "unknown state": {"state": "exploded", "created_at": now - 100},
    }
    for name, status in cases.items():
        runs.write_json_atomic(run / "status.json", status)
        assert runs.load_run(run).status == "failed", name
        assert cli_runs(root)["ghost"]["status"] == "failed", name
    # ...but a just-launched run whose process is still starting is given its grace period.
    runs.write_json_atomic(run / "status.json", {"state": "queued", "created_at": time.time()})
    assert runs.load_run(run).status == "queued"
    record("faults: dead or reused trainer pids", tried=len(cases), reported_failed=len(cases))


# ---------------------------------------------------------------- failed writes


@pytest.fixture(scope="module")
def tiny_model(tiny_run):
    return registry.load_model(tiny_run / "model.keras")


def _good_model_dir(tmp_path: Path, tiny_run: Path) -> tuple[Path, str]:
    d = tmp_path / "run"
    d.mkdir()
    shutil.copy(tiny_run / "model.keras", d / "model.keras")
    return d, sha(d / "model.keras")


def test_failed_saves_never_replace_a_good_model(tmp_path, tiny_run, tiny_model, monkeypatch):
    import keras

    from fmnist_core import train as train_mod

    d, digest = _good_model_dir(tmp_path, tiny_run)
    target = d / "model.keras"
    real_save = keras.Model.save

    def disk_full_on_rename(_src, _dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    def half_written(self, path, *a, **k):
        real_save(self, path, *a, **k)
        Path(path).write_bytes(Path(path).read_bytes()[:5000])  # what a full disk leaves behind
        raise OSError(errno.ENOSPC, "No space left on device")

    def silently_broken(_self, path, *_args, **_kwargs):
        Path(path).write_bytes(b"PK\x03\x04 not really a model")

    faults = [
        ("os.replace fails", "os.replace", disk_full_on_rename),
        ("save writes half then fails", None, half_written),
        ("save writes garbage without error", None, silently_broken),
    ]
    for name, target_attr, fake in faults:
        with monkeypatch.context() as m:
            if target_attr:
                m.setattr(train_mod.os, "replace", fake)
            else:
                m.setattr(keras.Model, "save", fake)
            with pytest.raises(Exception):  # noqa: B017 - any error is fine; the file must survive
                train_mod.save_model_atomic(tiny_model, target)
        assert sha(target) == digest, name
        registry.load_model(target)
        assert [p.name for p in d.iterdir()] == ["model.keras"], name  # no temp file left behind
    # And the happy path still replaces it.
    train_mod.save_model_atomic(tiny_model, target)
    registry.load_model(target)
    record("faults: failed model saves", faults_injected=len(faults), files_lost=0, temp_files_left=0)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_run_folder(tmp_path, tiny_run, tiny_model):
    from fmnist_core import train as train_mod

    d, digest = _good_model_dir(tmp_path, tiny_run)
    d.chmod(0o500)
    try:
        with pytest.raises(OSError):
            train_mod.save_model_atomic(tiny_model, d / "model.keras")
    finally:
        d.chmod(0o700)
    assert sha(d / "model.keras") == digest


def test_failed_json_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "status.json"
    runs.write_json_atomic(path, {"state": "finished"})
    with pytest.raises(TypeError):
        runs.write_json_atomic(path, {"state": object()})  # not serialisable: fails half way
    monkeypatch.setattr(runs.os, "replace", lambda *_a: (_ for _ in ()).throw(OSError(errno.ENOSPC, "disk full")))
    with pytest.raises(OSError):
        runs.write_json_atomic(path, {"state": "running"})
    assert runs.read_json(path) == {"state": "finished"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


# ---------------------------------------------------------------- the dataset


def test_missing_dataset_says_how_to_fix(tmp_path, monkeypatch):
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    monkeypatch.setattr(data_mod, "candidate_dirs", lambda _dataset="fashion": [empty])
    with pytest.raises(data_mod.DataError) as exc:
        data_mod.load_dataset("fashion")
    msg = str(exc.value)
    assert "not found" in msg and str(empty) in msg and "apt-get install" in msg and "--download" in msg

    from fmnist_core.__main__ import main

    assert main(["data", "--json"]) == 1


def _corrupt_copies(tmp_path: Path, how: str) -> Path:
    src = Path("/usr/share/datasets/fashion-mnist")
    if not src.is_dir():
        src = data_mod.find_data_dir("fashion")
    dst = tmp_path / how
    dst.mkdir()
    for stem in data_mod.FILES.values():
        shutil.copy(src / f"{stem}.gz", dst / f"{stem}.gz")
    victim = dst / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(victim.read_bytes())
    if how == "truncated":
        victim.write_bytes(bytes(raw[: len(raw) // 2]))
    elif how == "flipped":
        raw[len(raw) // 2] ^= 0xFF
        victim.write_bytes(bytes(raw))
    elif how == "not-gzip":
        victim.write_bytes(b"hello, this is not a dataset")
    elif how == "empty":
        victim.write_bytes(b"")
    return dst


@pytest.mark.parametrize("how", ["truncated", "flipped", "not-gzip", "empty"])
def test_corrupt_dataset_says_how_to_fix(tmp_path, monkeypatch, how):
    folder = _corrupt_copies(tmp_path, how)
    monkeypatch.setenv("FMNIST_DATA_DIR", str(folder))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert data_mod.find_data_dir("fashion") == folder  # the corrupt copy is the one found first
    with pytest.raises(data_mod.DataError) as exc:
        data_mod.load_dataset("fashion")
    msg = str(exc.value)
    assert "t10k-labels" in msg and ("apt-get install" in msg or "--download" in msg), msg
    # The CLI says the same in one line-oriented message, without a traceback.
    proc = subprocess.run(
        [sys.executable, "-m", "fmnist_core", "data"],
        cwd=ROOT,
        env={**os.environ, "FMNIST_DATA_DIR": str(folder)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and "apt-get install" in proc.stderr and "--download" in proc.stderr
    record(f"faults: dataset file {how}", faults_injected=1, clear_error=1)


_WRITER = """
import sys
from fmnist_core import runs
run_dir, me = sys.argv[1], sys.argv[2]
for i in range(60):
    runs.set_status(run_dir, None, **{f"{me}_{i}": i})
"""


def test_status_writers_in_several_processes_keep_each_others_fields(tmp_path):
    # The dispatcher, the trainer and a stop request each merge their fields into status.json;
    # without one lock a writer can put back a status it read before another's write.
    d = tmp_path / "run"
    d.mkdir()
    runs.set_status(d, "queued", seq=1)
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(d), f"w{k}"], cwd=ROOT) for k in range(4)
    ]  # fmt: skip
    assert [w.wait(60) for w in writers] == [0, 0, 0, 0]
    status = runs.read_json(d / "status.json")
    missing = [f"w{k}_{i}" for k in range(4) for i in range(60) if f"w{k}_{i}" not in status]
    assert not missing, missing
    assert status["state"] == "queued" and status["seq"] == 1


def test_a_stop_request_after_the_final_state_keeps_it(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    runs.set_status(d, "finished", ended_at=1.0)
    runs.write_stop_request(d)
    assert runs.read_json(d / "status.json")["state"] == "finished"
    runs.set_status(d, "running")
    runs.write_stop_request(d)
    assert runs.read_json(d / "status.json")["state"] == "stopping"
