"""Core tests of the Train page's logic: run-time estimate and augmentation preview (no UI)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from fmnist_core import estimate as E
from fmnist_core import runs
from fmnist_core.config import preset
from fmnist_core.data import stratified_split
from fmnist_core.preview import augment_preview, example_indices, mosaic


def fake_run(
    root, run_id, *, images_per_s, n_train, epochs, batch_size=32, augment=True, precision="float32", machine=None
):
    """A finished run folder with just the files the estimate reads (trained here unless ``machine``)."""
    from fmnist_core.machine import cpu_has_bf16, cpu_isa, cpu_model

    here = {"cpu": cpu_model(), "cores": os.cpu_count(), "bf16": cpu_has_bf16(), "isa": cpu_isa()}
    d = root / run_id
    d.mkdir(parents=True)
    cfg = preset("paper", batch_size=batch_size, augment=augment).to_dict()
    runs.write_json_atomic(d / "config.json", cfg)
    runs.write_json_atomic(d / "status.json", {"state": "finished", "created_at": 1.0, "started_at": 1, "ended_at": 2})
    runs.write_json_atomic(
        d / "run.json",
        {
            "config": cfg,
            "architecture": "paper_cnn",
            "precision_used": precision,
            "images_per_s": images_per_s,
            "n_train": n_train,
            "epochs_completed": epochs,
            "machine": here if machine is None else machine,
        },
    )
    return d


@pytest.fixture(autouse=True)
def speed_cache(tmp_path, monkeypatch):
    """An empty per-test measurement cache for every test here."""
    d = tmp_path / "cache"
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(d))
    return d


# ---------------------------------------------------------------- estimate


@pytest.mark.parametrize("limit", [None, 300, 1001, 6000])
def test_split_sizes_match_the_real_split(limit):
    y = np.repeat(np.arange(10), 6000)
    tr, va = stratified_split(y, 0.2, 42, limit)
    assert E.split_sizes(preset("paper", limit=limit)) == (len(tr), len(va))


def test_without_measuring_the_figure_is_labelled_as_from_elsewhere(tmp_path, speed_cache):
    est = E.estimate(preset("paper"), runs_root=tmp_path, models_dir=tmp_path, measure=False)
    assert not est.measured
    assert est.images_per_s == pytest.approx(E.elsewhere_speed(preset("paper")))
    assert "not yet measured on this machine" in est.source
    assert est.steps_per_epoch == 1500
    assert not (speed_cache / "speed.json").exists()  # nothing was measured


def test_a_short_measurement_here_is_used_cached_and_cited(tmp_path):
    """The real measurement: a few training steps of the config on this machine, then cached."""
    config = preset("paper", limit=3000, epochs=3)
    est = E.estimate(config, runs_root=tmp_path, models_dir=tmp_path)
    assert est.measured and est.images_per_s > 0
    assert "measured on this machine" in est.source and E.this_machine() in est.source
    cached = E.cached_speed(config)
    assert cached["images_per_s"] == pytest.approx(est.images_per_s) and cached["steps"] == E.MEASURE_STEPS
    key = E.speed_key(config)
    assert "paper_cnn" in key and "batch 32" in key and "float32" in key and E.this_machine() in key
    # The time follows from the measured speed: 3 epochs of 2,400 images (+ validation at a third).
    fit = 3 * (2400 + E.EVAL_COST * 600) / est.images_per_s
    assert est.seconds == pytest.approx(
        E.STARTUP_S + cached["setup_s"] + fit + E.EVAL_COST * 10_000 / est.images_per_s + E.SAVE_S
    )
    # A second estimate reads the cache (same figure, no new measurement) ...
    again = E.estimate(config, runs_root=tmp_path, models_dir=tmp_path)
    assert again.images_per_s == est.images_per_s and E.cached_speed(config)["measured_at"] == cached["measured_at"]
    # ... and another batch size is another key, not measured without asking.
    assert E.cached_speed(config.replace(batch_size=64)) is None


def test_no_measurement_while_a_run_trains(tmp_path, speed_cache):
    d = tmp_path / "busy"
    d.mkdir()
    runs.write_json_atomic(d / "config.json", preset("paper").to_dict())
    # A process whose command line names fmnist_core stands in for the trainer (runs.pid_alive).
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "fmnist_core", "train"])
    try:
        runs.set_status(d, "running", created_at=time.time(), started_at=time.time(), pid=stand_in.pid)
        assert runs.load_run(d).active
        est = E.estimate(preset("paper"), runs_root=tmp_path, models_dir=tmp_path)
        assert not est.measured and not (speed_cache / "speed.json").exists()
    finally:
        stand_in.kill()
        stand_in.wait()


def test_measured_run_here_wins_and_is_cited(tmp_path):
    fake_run(tmp_path, "big", images_per_s=800.0, n_train=48_000, epochs=2)
    est = E.estimate(preset("paper"), runs_root=tmp_path, models_dir=tmp_path / "none")
    assert est.measured and est.images_per_s == 800.0
    assert "run big" in est.source and "on this machine" in est.source
    # A run's speed already includes its validation passes: epochs x images / speed.
    assert est.seconds == pytest.approx(E.STARTUP_S + 20 * 48_000 / 800 + E.EVAL_COST * 10_000 / 800 + E.SAVE_S)


def test_runs_from_another_machine_kind_are_ignored(tmp_path):
    other = {"cpu": "AMD EPYC", "cores": os.cpu_count(), "bf16": True, "isa": "AVX-512 + BF16"}
    if E.same_machine(other):  # on that kind, the other kind is the AVX2 one
        other = {**other, "bf16": False, "isa": "AVX2"}
    fake_run(tmp_path, "elsewhere", images_per_s=1300.0, n_train=48_000, epochs=5, machine=other)
    assert E.measured_speed(preset("paper"), tmp_path, tmp_path) is None


def test_tiny_or_mismatched_measurements_are_ignored(tmp_path):
    fake_run(tmp_path, "tiny", images_per_s=90.0, n_train=240, epochs=1)  # start-up noise
    fake_run(tmp_path, "b128", images_per_s=2000.0, n_train=48_000, epochs=3, batch_size=128)  # other batch
    assert E.measured_speed(preset("paper"), tmp_path, tmp_path) is None


def test_the_run_that_saw_most_images_is_preferred(tmp_path):
    fake_run(tmp_path, "short", images_per_s=700.0, n_train=6_000, epochs=1)
    fake_run(tmp_path, "long", images_per_s=1000.0, n_train=48_000, epochs=5)
    assert E.measured_speed(preset("paper"), tmp_path, tmp_path) == (1000.0, "run long")


def test_shipped_model_counts_only_if_trained_on_this_machine_kind(tmp_path):
    from fmnist_core.machine import cpu_has_bf16, cpu_isa, cpu_model

    models = tmp_path / "models"
    models.mkdir()
    here = {"cpu": cpu_model(), "cores": os.cpu_count(), "bf16": cpu_has_bf16(), "isa": cpu_isa()}
    meta = {"config": preset("paper").to_dict(), "architecture": "paper_cnn", "precision_used": "float32"}
    meta.update(images_per_s=640.0, n_train=48000, epochs_completed=9)
    runs.write_json_atomic(models / "m.json", {**meta, "machine": {**here, "cpu": "Some Other CPU"}})
    assert E.measured_speed(preset("paper"), tmp_path / "runs", models) is None
    runs.write_json_atomic(models / "m.json", {**meta, "machine": here})
    assert E.measured_speed(preset("paper"), tmp_path / "runs", models) == (640.0, "shipped model m")


def test_preset_descriptions_give_seconds_only_for_this_machine(tmp_path):
    text = E.preset_description("fast", runs_root=tmp_path, measure=False)
    if "on this machine." not in text:  # not known here yet: no figure from elsewhere
        assert "measured when it is picked" in text and " s " not in text and "min" not in text
    fake_run(tmp_path, "p", images_per_s=500.0, n_train=48_000, epochs=2)
    paper = E.preset_description("paper", runs_root=tmp_path, measure=False)
    assert paper.startswith(E.PRESET_SUMMARY["paper"])
    assert paper.endswith(
        f"Up to about {E.format_duration(E.estimate(preset('paper'), tmp_path).seconds)} on this machine."
    )
    with pytest.raises(ValueError, match="unknown preset"):
        E.preset_description("nope")


def test_cli_estimate_only(tmp_path):
    """`train --estimate-only` and `estimate` print this machine's figure without training."""
    import json
    import subprocess
    import sys

    fake_run(tmp_path, "p", images_per_s=500.0, n_train=48_000, epochs=2)
    base = [sys.executable, "-m", "fmnist_core"]
    env = {**os.environ, "FMNIST_RUNS_DIR": str(tmp_path)}
    out = subprocess.run(
        [*base, "estimate", "--preset", "paper", "--runs-dir", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    # The fake run or a shipped model trained on this machine kind (whichever saw more images).
    assert rec["measured_here"] and "on this machine" in rec["source"] and rec["key"] == E.speed_key(preset("paper"))
    text = subprocess.run(
        [*base, "train", "--preset", "paper", "--estimate-only"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    ).stdout
    assert "on this machine" in text and not any(tmp_path.glob("*-paper"))


def test_config_problems_catch_a_batch_bigger_than_the_data():
    assert E.config_problems(preset("paper")) == []
    probs = E.config_problems(preset("paper", limit=300, batch_size=512))
    assert len(probs) == 1 and "batch size (512)" in probs[0] and "240 training images" in probs[0]


@pytest.mark.parametrize(
    "seconds, text",
    [(None, "-"), (-1, "-"), (float("nan"), "-"), (0, "0 s"), (44.6, "45 s"), (200, "3 min 20 s"), (1500, "25 min")],
)
def test_format_duration(seconds, text):
    assert E.format_duration(seconds) == text


def test_format_duration_hours():
    assert E.format_duration(3600 + 5 * 60 + 7) == "1 h 05 min"


# ---------------------------------------------------------------- preview


def test_example_indices_are_distinct_classes_and_seeded(dataset):
    idx = example_indices(dataset.y_train, 4, seed=3)
    assert len(set(dataset.y_train[idx])) == 4
    assert (idx == example_indices(dataset.y_train, 4, seed=3)).all()
    assert not (idx == example_indices(dataset.y_train, 4, seed=4)).all()


def test_preview_without_augmentation_repeats_the_original(dataset):
    imgs = dataset.x_train[:3]
    grid = augment_preview(imgs, preset("fast"), versions=4)  # 'fast' has augmentation off
    assert grid.shape == (3, 5, 28, 28) and grid.dtype == np.uint8
    assert (grid == imgs[:, None]).all()


def test_preview_with_augmentation_changes_images_but_keeps_them_recognisable(dataset):
    imgs = dataset.x_train[:4]
    grid = augment_preview(imgs, preset("paper"), versions=5, seed=1)
    assert grid.shape == (4, 6, 28, 28) and grid.dtype == np.uint8
    assert (grid[:, 0] == imgs).all()  # the first column is the original
    versions = grid[:, 1:].astype(float)
    assert all(not np.array_equal(grid[i, 0], grid[i, j]) for i in range(4) for j in range(1, 6))
    # 10 degrees / 10 % / 10 %: most of the garment stays, so each version correlates with its original
    for i in range(4):
        for j in range(5):
            r = np.corrcoef(imgs[i].ravel().astype(float), versions[i, j].ravel())[0, 1]
            assert r > 0.4


def test_preview_is_seeded_and_strength_matters(dataset):
    imgs = dataset.x_train[:2]
    a = augment_preview(imgs, preset("paper"), 3, seed=5)
    assert (a == augment_preview(imgs, preset("paper"), 3, seed=5)).all()

    def mean_change(cfg):
        g = augment_preview(imgs, cfg, 6, seed=5).astype(float)
        return np.abs(g[:, 1:] - g[:, :1]).mean()

    weak = preset("paper", rotation_deg=2.0, shift=0.02, zoom=0.02)
    strong = preset("paper", rotation_deg=40.0, shift=0.3, zoom=0.3)
    assert mean_change(strong) > 1.5 * mean_change(weak)


def test_preview_random_erasing_blanks_patches(dataset):
    imgs = dataset.x_train[:4]
    cfg = preset("paper", rotation_deg=0.0, shift=0.0, zoom=0.0, erase_prob=1.0)
    grid = augment_preview(imgs, cfg, 4, seed=0)
    # only erasing: every version equals the original except for pixels set to 0
    changed = grid[:, 1:] != grid[:, :1]
    assert changed.any() and (grid[:, 1:][changed] == 0).all()


def test_preview_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="28, 28"):
        augment_preview(np.zeros((28, 28), np.uint8), preset("paper"))


def test_mosaic_layout():
    grid = np.zeros((2, 3, 28, 28), np.uint8)
    grid[1, 2] = 200
    m = mosaic(grid, scale=2, gap=4, first_gap=10)
    assert m.shape == (2 * 56 + 4, 3 * 56 + 10 + 4)
    assert m.dtype == np.uint8
    assert (m[60:116, 56 + 10 + 56 + 4 :] == 200).all()  # the last cell of the second row
    assert (m[:, 56:66] == 255).all()  # the wide gap after the originals


def test_remeasure_uses_a_fresh_measurement_over_a_run(tmp_path):
    fake_run(tmp_path, "big", images_per_s=800.0, n_train=48_000, epochs=2)
    est = E.estimate(preset("paper"), runs_root=tmp_path, models_dir=tmp_path, remeasure=True)
    assert est.measured and "training steps" in est.source and "run big" not in est.source
    assert E.cached_speed(preset("paper"))["images_per_s"] == pytest.approx(est.images_per_s)
