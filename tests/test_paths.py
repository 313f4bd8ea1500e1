"""Names and paths: nothing a user types reads or writes outside runs/ and models/.

Run ids and model names are validated (letters, digits, '_', '-', '.'; no '..', '/', NUL or
newline); symlinks out of runs/ or models/ are refused; the CLI answers every bad name with one
line and a non-zero exit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fmnist_core import access, registry, runqueue, runs
from fmnist_core.config import preset

ROOT = Path(__file__).resolve().parent.parent
COUNTS = ROOT / "test-artifacts" / "reliability-counts.jsonl"

BAD_NAMES = [
    "",
    ".",
    "..",
    "../x",
    "../../etc/passwd",
    "/etc/passwd",
    "/tmp",
    "a/b",
    "a\\b",
    "x\0y",
    "tiny\n",
    "\ntiny",
    "tiny/../tiny",
    "..tiny",
    "a..b",
    ".hidden",
    "-rf",
    " tiny",
    "tiny ",
    "t" * 81,
    "con:",
    "tiny\x1b[31m",
    "ünïcode",
    "~",
    "~root",
    "$HOME",
    "*",
    "tiny;rm -rf /",
]


def record(test: str, **counts: int) -> None:
    COUNTS.parent.mkdir(exist_ok=True)
    with open(COUNTS, "a") as f:
        f.write(json.dumps({"test": test, **counts}) + "\n")
    print(test, counts)


def test_validate_run_id_refuses_every_bad_name():
    for name in BAD_NAMES:
        with pytest.raises(runs.RunError):
            runs.validate_run_id(name)
    for good in ["tiny", "20261125-031500-paper", "a.b_c-d", "A1", "t" * 80]:
        assert runs.validate_run_id(good) == good
    record("paths: run ids refused", tried=len(BAD_NAMES), refused=len(BAD_NAMES))


def test_run_path_stays_inside_root(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    outside = tmp_path / "secret"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    (root / "real").mkdir()
    (root / "alias").symlink_to(root / "real")  # a link inside runs/ is refused too: delete must not follow it
    for name in [*BAD_NAMES, "link", "alias"]:
        with pytest.raises(runs.RunError):
            runs.run_path(name, root)
    assert runs.run_path("real", root) == (root / "real").resolve()


def test_delete_run_never_leaves_runs(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    (root / "evil").symlink_to(victim)
    for name in ["evil", "../victim", str(victim), "evil/..", ".."]:
        with pytest.raises(runs.RunError):
            runqueue.delete(name, root, access.ADMIN)
    assert (victim / "keep.txt").read_text() == "precious"


def test_launch_refuses_bad_run_ids_and_writes_nothing_outside(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    for name in ["../escape", "/tmp/escape", "a/b", "x\0y", "ok\n"]:
        with pytest.raises(runs.RunError):
            runqueue.launch(preset("fast", limit=100, epochs=1), root, run_id=name)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert [p.name for p in root.iterdir() if not p.name.startswith(".")] == []  # only the lock files


def test_list_runs_ignores_symlinks_and_odd_folders(tmp_path, tiny_run):
    root = tmp_path / "runs"
    root.mkdir()
    shutil.copytree(tiny_run, root / "tiny")
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(tiny_run, elsewhere)
    (root / "linked").symlink_to(elsewhere)
    shutil.copytree(tiny_run, root / ".hidden")
    (root / "broken").mkdir()
    (root / "broken" / "config.json").write_text("{not json")
    (root / "broken" / "status.json").write_text("[1, 2, 3]")
    (root / "broken" / "metrics.jsonl").write_text('[1]\n{"val_accuracy": "high"}\n{"epoch": 0')
    ids = [r.run_id for r in runs.list_runs(root)]
    assert sorted(ids) == ["broken", "tiny"]
    broken = runs.load_run(root / "broken")
    assert broken.status == "failed" and broken.best_val_accuracy is None and broken.duration_s is None


def test_registry_names_are_confined(tmp_path, tiny_run):
    models = tmp_path / "models"
    models.mkdir()
    root = tmp_path / "runs"
    root.mkdir()
    shutil.copy(tiny_run / "model.keras", models / "good.keras")
    shutil.copytree(tiny_run, root / "tiny")
    secret = tmp_path / "secret.keras"
    shutil.copy(tiny_run / "model.keras", secret)
    (models / "linked.keras").symlink_to(secret)
    (root / "tiny2").mkdir()
    (root / "tiny2" / "model.keras").symlink_to(secret)
    assert registry.resolve("shipped:good", models, root).path == models / "good.keras"
    assert registry.resolve("good", models, root).key == "shipped:good"
    assert registry.resolve("run:tiny", models, root).path == (root / "tiny" / "model.keras").resolve()
    specs = [f"shipped:{n}" for n in BAD_NAMES] + [f"run:{n}" for n in BAD_NAMES]
    specs += ["shipped:linked", "run:tiny2", "", "x\0y.keras"]
    for spec in specs:
        with pytest.raises(registry.ModelError) as exc:
            registry.resolve(spec, models, root)
        assert str(exc.value)
    # The model lists (the sidebar picker) do not offer the links either.
    assert [m.path.stem for m in registry.shipped_models(models)] == ["good"]
    assert [m.key for m in registry.run_models(root)] == ["run:tiny"]
    record("paths: model specs refused", tried=len(specs), refused=len(specs))


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "fmnist_core", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("spec", ["run:../../etc", "shipped:../secret", "/etc/passwd", "run:x\ny", "shipped:"])
def test_cli_bad_model_names(tmp_path, spec):
    img = tmp_path / "img.png"
    from PIL import Image

    Image.new("RGB", (30, 30), (255, 255, 255)).save(img)
    proc = _cli("predict", str(img), "--model", spec)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr


def test_cli_runs_root_errors(tmp_path):
    for root in [tmp_path / "missing", tmp_path / "file.txt"]:
        if root.name == "file.txt":
            root.write_text("x")
        proc = _cli("runs", "--json", "--root", str(root))
        assert proc.returncode == 1 and proc.stdout == ""
        assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
