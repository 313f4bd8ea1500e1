"""The shipped models: their JSON holds what issue 3 asks for, and its accuracy is true.

The accuracy check uses scripts/check_models.py, which imports nothing from fmnist_core: plain
Keras on the raw IDX test files, as an outside reviewer would do it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODELS = sorted((ROOT / "models").glob("*.keras"))
REQUIRED = {
    "config",
    "seed",
    "history",
    "test_accuracy",
    "test_loss",
    "confusion_matrix",
    "per_class",
    "train_seconds",
    "machine",
}


def test_the_three_presets_are_shipped():
    assert {p.stem for p in MODELS} >= {"fashion_cnn_paper", "fashion_cnn_fast", "fashion_cnn_best"}


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_metadata_is_complete_and_consistent(path: Path):
    meta = json.loads(path.with_suffix(".json").read_text())
    missing = REQUIRED - meta.keys()
    assert not missing, f"{path.name}: JSON lacks {sorted(missing)}"
    cm = meta["confusion_matrix"]
    assert len(cm) == 10 and all(len(row) == 10 for row in cm)
    assert sum(map(sum, cm)) == 10_000
    # The confusion matrix and the headline accuracy must tell the same story.
    assert sum(cm[i][i] for i in range(10)) / 10_000 == pytest.approx(meta["test_accuracy"], abs=1e-4)
    assert len(meta["history"]) == meta["epochs_completed"]
    assert meta["config"]["preset"] in path.stem


@pytest.mark.slow
def test_plain_keras_agrees_with_the_json_within_0_2_points():
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_models.py"), "--json", *map(str, MODELS)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(rows) == len(MODELS)
    bad = [r for r in rows if not r["ok"]]
    assert not bad, bad
    assert out.returncode == 0, out.stderr[-2000:]
