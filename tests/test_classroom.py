"""A class on one app: the durable queue, owners and the teacher, sweeps, the model archive.

Core tests drive the run-folder API directly; AppTest tests drive the Train page as two learners
and a teacher, including what a forged widget value or a crafted run id would do. Trainers are
real processes, killed as soon as the queue has been observed (no test waits for training here
except the archive, which uses the session's tiny run).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import STOPPABLE_RUN
from streamlit.testing.v1 import AppTest

from fmnist_core import access, archive, registry, runqueue, runs
from fmnist_core.config import PRESETS, preset
from fmnist_core.sweep import expand, parse_grid, sweep_rows

ROOT = Path(__file__).resolve().parent.parent
TINY = preset("fast", limit=400, epochs=1)
LONG = preset("fast", **STOPPABLE_RUN)
ANN, BOB = access.Actor("Ann", "learner"), access.Actor("Bob", "learner")
TEACHER = access.Actor("Ms T", "teacher")


def kill_started(root: Path) -> None:
    """SIGKILL every trainer this test started (they are our children) and collect it."""
    for r in runs.list_runs(root):
        pid = r.status_data.get("pid")
        if r.status_data.get("dispatched_at") and isinstance(pid, int):
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fmnist_core", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env
    )


# ---------------------------------------------------------------- the queue


def test_start_always_queues_in_order_and_survives_a_restart(tmp_path):
    root = tmp_path / "runs"
    try:
        a = runqueue.launch(LONG, root, run_id="a", owner="Ann")  # must outlive the CLI call below
        b = runqueue.launch(TINY, root, run_id="b", owner="Bob")
        c = runqueue.launch(TINY, root, run_id="c", owner="Ann")
        infos = {r.run_id: r for r in runs.list_runs(root)}
        assert not infos["a"].waiting and infos["a"].active  # started at once: capacity 1
        assert infos["b"].waiting and infos["c"].waiting
        view = runqueue.queue_view(root)
        assert [(q.run_id, q.position, q.owner) for q in view] == [("a", 0, "Ann"), ("b", 1, "Bob"), ("c", 2, "Ann")]
        assert view[1].eta_start < view[2].eta_start  # c starts after b is estimated to end

        # A restart of the app is a new process reading the folder: the queue is all there.
        out = cli("runs", "--root", str(root), "--json")
        rows = {r["run_id"]: r for r in json.loads(out.stdout)}
        assert {k: (v["status"], v["queue_position"], v["owner"]) for k, v in rows.items()} == {
            "a": ("queued", 0, "Ann") if rows["a"]["status"] == "queued" else ("running", 0, "Ann"),
            "b": ("queued", 1, "Bob"),
            "c": ("queued", 2, "Ann"),
        }
        assert rows["b"]["eta_start"] is not None

        # The trainer of a dies (as when the machine restarts): the next dispatch starts b, not c.
        kill_started(root)
        assert runqueue.dispatch(root) == ["b"]
        assert runs.load_run(a).status == "failed" and not runs.load_run(b).waiting and runs.load_run(c).waiting
        # `runs cancel` takes c out of the queue; it never starts.
        out = cli("runs", "cancel", "c", "--root", str(root))
        assert out.returncode == 0, out.stderr
        assert runs.load_run(c).status == "cancelled"
        assert cli("runs", "cancel", "c", "--root", str(root)).returncode == 1  # no longer waiting
    finally:
        runqueue.clear_queue(root, access.ADMIN)
        kill_started(root)


def test_capacity_two_starts_two(tmp_path, monkeypatch):
    monkeypatch.setenv("FMNIST_MAX_PARALLEL", "2")
    root = tmp_path / "runs"
    try:
        for name in ("a", "b", "c"):
            runqueue.launch(TINY, root, run_id=name)
        assert [r.run_id for r in runqueue.waiting_runs(runs.list_runs(root))] == ["c"]
        assert [q.position for q in runqueue.queue_view(root)] == [0, 0, 1]
    finally:
        runqueue.clear_queue(root, access.ADMIN)
        kill_started(root)


# ---------------------------------------------------------------- who may do what (run-folder API)


def test_learners_act_on_their_own_runs_only_and_the_teacher_on_all(tmp_path):
    root = tmp_path / "runs"
    for name, owner in (("ann1", "Ann"), ("bob1", "Bob"), ("bob2", "Bob"), ("bob3", "Bob")):
        runqueue.enqueue(TINY, root, run_id=name, owner=owner)  # waiting: no process needed
    # Bob's run, asked for by Ann, under every spelling of its id: refused, nothing changes.
    for action in (runqueue.stop, runqueue.cancel, runqueue.delete):
        with pytest.raises(access.AccessError):
            action("bob1", root, ANN)
    for crafted in ("../runs/bob1", "bob1/", "bob1\n", str(root / "bob1"), "..", ".class"):
        with pytest.raises(runs.RunError):
            runqueue.stop(crafted, root, ANN)
    with pytest.raises(access.AccessError):  # an empty name is nobody, not everybody
        runqueue.stop("bob1", root, access.Actor("", "learner"))
    assert runs.load_run(root / "bob1").waiting
    with pytest.raises(access.AccessError):
        runqueue.clear_queue(root, BOB)
    with pytest.raises(access.AccessError):
        runqueue.pin("ann1", root, ANN)

    assert runqueue.stop("ann1", root, ANN) == "cancelled"  # her own: fine
    runqueue.delete("ann1", root, ANN)
    assert not (root / "ann1").exists()
    runqueue.cancel("bob1", root, TEACHER)  # the teacher acts on every run
    runqueue.delete("bob1", root, TEACHER)
    assert runqueue.clear_queue(root, TEACHER) == ["bob2", "bob3"]
    assert {r.run_id: r.status for r in runs.list_runs(root)} == {"bob2": "cancelled", "bob3": "cancelled"}


def test_a_name_belongs_to_the_browser_that_claimed_it(tmp_path):
    root = tmp_path / "runs"
    k1, k2 = access.new_key(), access.new_key()
    assert access.claim_name(root, "  Ann  ", k1) == ANN
    assert access.claim_name(root, "Ann", k1) == ANN  # the same browser again (a reload)
    with pytest.raises(access.AccessError, match="already used"):
        access.claim_name(root, "ann", k2)  # another browser, any case
    assert access.name_for_key(root, k1) == "Ann" and access.name_for_key(root, k2) is None
    for bad in ("", "   ", "x" * 41, "<script>", "a/b"):
        with pytest.raises(ValueError):
            access.claim_name(root, bad, k2)
    assert "Ann" not in (root / ".class" / "learners.json").read_text().split(k1)  # the key is stored hashed
    assert k1 not in (root / ".class" / "learners.json").read_text()


# ---------------------------------------------------------------- sweep


def test_sweep_grid_and_cli(tmp_path):
    grid = parse_grid(["learning_rate=1e-3,3e-3", "dropout=0.2,0.4"])
    assert grid == {"learning_rate": [1e-3, 3e-3], "dropout": [0.2, 0.4]}
    combos = expand(PRESETS["fast"], grid)
    assert [s for _, s in combos] == [
        {"learning_rate": 1e-3, "dropout": 0.2},
        {"learning_rate": 1e-3, "dropout": 0.4},
        {"learning_rate": 3e-3, "dropout": 0.2},
        {"learning_rate": 3e-3, "dropout": 0.4},
    ]
    assert all(c.preset == "fast" and c.epochs == PRESETS["fast"].epochs for c, _ in combos)
    for bad in (["dropout=1.5"], ["colour=red"], ["learning_rate"], ["epochs=two"]):
        with pytest.raises(ValueError):
            expand(PRESETS["fast"], parse_grid(bad))
    # Every preset is unchanged by the new field: dropout None means the architecture's own rates.
    assert all(p.dropout is None for p in PRESETS.values())

    root = tmp_path / "runs"
    try:
        out = cli(
            "sweep", "--preset", "fast", "--limit", "400", "--grid", "learning_rate=1e-3,3e-3",
            "--grid", "dropout=0.2,0.4", "--owner", "Ann", "--root", str(root), "--json",
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        made = json.loads(out.stdout)
        assert len(made["runs"]) == 4
        infos = runs.list_runs(root)
        varied, rows = sweep_rows(infos, made["sweep"])
        assert varied == ["learning_rate", "dropout"]
        assert [(r["learning_rate"], r["dropout"], r["owner"]) for r in rows] == [
            (1e-3, 0.2, "Ann"), (1e-3, 0.4, "Ann"), (3e-3, 0.2, "Ann"), (3e-3, 0.4, "Ann"),
        ]  # fmt: skip
        assert len(runqueue.waiting_runs(infos)) == 3  # one trains, three wait
        assert cli("runs", "clear", "--root", str(root)).returncode == 0
        assert runqueue.waiting_runs(runs.list_runs(root)) == []
    finally:
        kill_started(root)


def test_dropout_field_sets_every_dropout_layer():
    from fmnist_core.model import build

    for arch in ("paper_cnn", "wide_cnn"):
        default = [layer.rate for layer in build(arch).layers if "drop" in layer.name]
        assert default and all(r != 0.15 for r in default)
        assert [layer.rate for layer in build(arch, dropout=0.15).layers if "drop" in layer.name] == [0.15] * len(
            default
        )


# ---------------------------------------------------------------- take the model home


def test_archive_loads_with_plain_keras(tmp_path, tiny_run):
    import keras

    ref = registry.ModelRef("run:tiny", "tiny", tiny_run / "model.keras", tiny_run / "run.json")
    data = archive.model_archive(ref)
    with zipfile.ZipFile(__import__("io").BytesIO(data)) as z:
        assert sorted(z.namelist()) == ["tiny/README.txt", "tiny/tiny.json", "tiny/tiny.keras"]
        z.extractall(tmp_path)
    model = keras.models.load_model(tmp_path / "tiny" / "tiny.keras")
    meta = json.loads((tmp_path / "tiny" / "tiny.json").read_text())
    assert meta["test_accuracy"] == json.loads((tiny_run / "run.json").read_text())["test_accuracy"]
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype="float32")
    original = registry.load_model(tiny_run / "model.keras")
    np.testing.assert_allclose(model.predict(x, verbose=0), original.predict(x, verbose=0), atol=1e-6)
    # A shipped model too.
    shipped = registry.shipped_models()[0]
    with zipfile.ZipFile(__import__("io").BytesIO(archive.model_archive(shipped))) as z:
        name = archive.archive_name(shipped)
        assert z.read(f"{name}/{name}.keras") == shipped.path.read_bytes()


# ---------------------------------------------------------------- the Train page: two learners and a teacher


def session(monkeypatch) -> AppTest:
    monkeypatch.setenv("FMNIST_TEACHER_PASSWORD", "s3cret")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/1_Train.py").run()
    assert not at.exception, at.exception
    return at


def button(at, key):
    return next(b for b in at.button if b.key == key)


def name_myself(at, name: str) -> None:
    at.text_input(key="class_name_input").set_value(name).run()
    button(at, "class_name_ok").click().run()
    assert at.session_state["class_me"] == name, [e.value for e in at.error]


def start_fast_run(at, limit: int = 400, epochs: int = 1) -> None:
    """Start a `fast` run of `limit` images for `epochs` epochs from this learner's Train page."""
    at.radio(key="train_preset").set_value("fast").run()
    at.toggle(key="train_use_all").set_value(False).run()
    at.number_input(key="train_limit").set_value(limit).run()
    at.number_input(key="train_epochs").set_value(epochs).run()
    button(at, "train_start").click().run()
    assert not at.exception, at.exception


def test_two_learners_and_a_teacher_on_the_train_page(runs_root, monkeypatch):
    ann, bob = session(monkeypatch), session(monkeypatch)
    assert button(ann, "train_start").disabled  # no name, no run
    name_myself(ann, "Ann")
    bob.text_input(key="class_name_input").set_value("Ann").run()
    button(bob, "class_name_ok").click().run()
    assert any("already used" in e.value for e in bob.error) and not bob.session_state["class_me"]
    name_myself(bob, "Bob")
    try:
        # Ann's run must still be training when the teacher stops it, on any CPU: a tiny one
        # finished first once in CI. 50 epochs of 3,000 images is minutes; it is stopped or killed.
        start_fast_run(ann, limit=LONG.limit, epochs=LONG.epochs)
        start_fast_run(bob)
        mine = {r.owner: r for r in runs.list_runs(runs_root) if r.owner}
        assert set(mine) == {"Ann", "Bob"} and mine["Bob"].waiting  # both accepted, Bob's queued
        bob.run()
        assert any("number **1** in line" in i.value for i in bob.info)
        assert list(bob.dataframe[0].value["Owner"])[:2] == ["Ann", "Bob"]  # the queue table

        # Bob picks Ann's run: its Stop is disabled, and a forged click on it (as a modified browser
        # could send) is discarded by Streamlit; the core would refuse it anyway (tested above).
        bob.selectbox(key="train_history_pick").set_value(mine["Ann"].run_id).run()
        stop = button(bob, "train_history_stop")
        assert stop.disabled and "Only its owner or the teacher" in stop.help
        stop.proto.disabled = False
        stop.click().run()
        assert not bob.success and runs.load_run(mine["Ann"].path).status in ("queued", "running")
        assert (
            not any(b.key == "train_stop" for b in bob.button) or bob.session_state["train_watch"] == mine["Bob"].run_id
        )  # the live panel's Stop, if shown, is for Bob's own run
        # Bob's own waiting run: he may take it out of the queue and put a new one in.
        bob.selectbox(key="train_history_pick").set_value(mine["Bob"].run_id).run()
        button(bob, "train_history_stop").click().run()
        assert runs.load_run(mine["Bob"].path).status == "cancelled", [e.value for e in bob.error]
        start_fast_run(bob)
        mine = {r.owner: r for r in runs.list_runs(runs_root) if r.owner and r.status != "cancelled"}
        assert mine["Bob"].waiting

        # The teacher unlocks with the password (a wrong one first) and may stop Ann's run.
        teacher = session(monkeypatch)
        teacher.text_input(key="class_teacher_pw").set_value("guess").run()
        button(teacher, "class_unlock").click().run()
        assert any("Wrong teacher password" in e.value for e in teacher.error)
        teacher.text_input(key="class_teacher_pw").set_value("s3cret").run()
        button(teacher, "class_unlock").click().run()
        assert teacher.session_state["class_teacher"] is True
        teacher.selectbox(key="train_history_pick").set_value(mine["Ann"].run_id).run()
        button(teacher, "train_history_stop").click().run()
        assert not any("Not done" in e.value for e in teacher.error), [e.value for e in teacher.error]
        assert runs.load_run(mine["Ann"].path).status in ("stopping", "stopped", "cancelled")
        # ... and clears the queue (Bob's run, if it is still waiting), and may pin the tiny run.
        teacher.run()
        if runqueue.waiting_runs(runs.list_runs(runs_root)):
            button(teacher, "class_clear_queue").click().run()
            assert runqueue.waiting_runs(runs.list_runs(runs_root)) == []
        teacher.selectbox(key="train_history_pick").set_value("tiny").run()
        button(teacher, "train_pin").click().run()
        assert access.pinned(runs_root) == "tiny"
        bob.run()
        assert not any(b.key == "train_pin" for b in bob.button)  # learners see no pin button
        assert any("Class model" in m.value and "tiny" in m.value for m in bob.markdown)
    finally:
        runqueue.clear_queue(runs_root, access.ADMIN)
        kill_started(runs_root)
        deadline = time.time() + 30
        while any(r.active and not r.waiting for r in runs.list_runs(runs_root)) and time.time() < deadline:
            time.sleep(0.5)
