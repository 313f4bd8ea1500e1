"""Every CLI --json output parses; errors exit non-zero with one line and no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from fmnist_core import cli as cli_package

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fmnist_core", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
    )


def test_data_check_json():
    r = cli("data", "--check", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ok"] and out["train"]["images"] == 60000 and out["test"]["images"] == 10000
    assert out["train"]["per_class"] == [6000] * 10 and out["test"]["per_class"] == [1000] * 10
    assert all(f["ok"] for f in out["files"]) and len(out["files"]) == 4


def test_train_evaluate_predict_runs_json(tmp_path, dataset):
    run_dir = tmp_path / "runs" / "cli"
    r = cli("train", "--preset", "fast", "--limit", "300", "--epochs", "1", "--run-dir", str(run_dir), "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["status"] == "finished" and 0 <= summary["test_accuracy"] <= 1
    for name in ("config.json", "status.json", "metrics.jsonl", "model.keras", "run.json"):
        assert (run_dir / name).is_file()

    r = cli("evaluate", str(run_dir / "model.keras"), "--json")
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout)
    stored = json.loads((run_dir / "run.json").read_text())
    assert abs(ev["test_accuracy"] - stored["test_accuracy"]) < 1e-6 and ev["n_test"] == 10000
    assert set(ev["per_class"]) == set(stored["class_names"])

    good = tmp_path / "boot.png"
    Image.fromarray(dataset.x_test[0]).resize((140, 140)).save(good)
    bad = tmp_path / "bad.png"
    bad.write_text("this is not an image")
    r = cli("predict", str(good), str(bad), "--model", str(run_dir / "model.keras"), "--top-k", "2", "--json")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    preds = json.loads(r.stdout)
    assert preds[0]["path"] == str(good) and len(preds[0]["top"]) == 2
    assert {"label", "index", "probability"} <= set(preds[0]) and preds[0]["top"][0]["label"] == preds[0]["label"]
    assert preds[1]["path"] == str(bad) and preds[1]["error"]

    r = cli("runs", "--json", "--root", str(run_dir.parent))
    assert r.returncode == 0
    rows = json.loads(r.stdout)
    assert rows[0]["run_id"] == "cli" and rows[0]["status"] == "finished"


def test_errors_are_one_line():
    r = cli("evaluate", "/nonexistent/model.keras")
    assert r.returncode != 0 and "Traceback" not in r.stderr and r.stderr.startswith("error:")
    r = cli("train", "--preset", "nope", "--run-dir", "/tmp/x")
    assert r.returncode == 2 and "unknown preset" in r.stderr


def test_every_command_is_named_in_the_docstring_and_in_help():
    listed = cli_package.__doc__.split("Commands:", 1)[1].split("(", 1)[0]
    assert [c.strip() for c in listed.replace("\n", " ").split(",")] == list(cli_package.COMMANDS)
    helptext = cli_package.build_parser().format_help()
    assert all(c in helptext for c in cli_package.COMMANDS), helptext
