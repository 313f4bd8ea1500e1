"""Core tests of the Train page's logic: run-time estimate and augmentation preview (no UI)."""

from __future__ import annotations

import numpy as np
import pytest

from fmnist_core import estimate as E
from fmnist_core import runs
from fmnist_core.config import preset
from fmnist_core.data import stratified_split
from fmnist_core.preview import augment_preview, example_indices, mosaic


def fake_run(root, run_id, *, images_per_s, n_train, epochs, batch_size=32, augment=True, precision="float32"):
    """A finished run folder with just the files the estimate reads."""
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
        },
    )
    return d


# ---------------------------------------------------------------- estimate


@pytest.mark.parametrize("limit", [None, 300, 1001, 6000])
def test_split_sizes_match_the_real_split(limit):
    y = np.repeat(np.arange(10), 6000)
    tr, va = stratified_split(y, 0.2, 42, limit)
    assert E.split_sizes(preset("paper", limit=limit)) == (len(tr), len(va))


def test_default_speed_is_used_and_named_when_nothing_was_measured(tmp_path):
    est = E.estimate(preset("paper"), runs_root=tmp_path, models_dir=tmp_path)
    assert not est.measured
    assert est.images_per_s == pytest.approx(1150)
    assert "project default" in est.source and "batch 32" in est.source
    # 20 epochs x 48,000 images at 1,150 images/s plus start-up and test: about 14 minutes
    assert est.seconds == pytest.approx(E.STARTUP_S + 20 * 48_000 / 1150 + E.FINISH_S)
    assert est.steps_per_epoch == 1500


def test_bigger_batches_are_estimated_faster_per_image(tmp_path):
    s32 = E.estimate(preset("paper", batch_size=32), tmp_path, tmp_path).images_per_s
    s128 = E.estimate(preset("paper", batch_size=128), tmp_path, tmp_path).images_per_s
    s16 = E.estimate(preset("paper", batch_size=16), tmp_path, tmp_path).images_per_s
    assert s16 < s32 < s128


def test_measured_run_wins_and_is_cited(tmp_path):
    fake_run(tmp_path, "big", images_per_s=800.0, n_train=48_000, epochs=2)
    est = E.estimate(preset("paper"), runs_root=tmp_path, models_dir=tmp_path / "none")
    assert est.measured and est.images_per_s == 800.0
    assert "run big" in est.source and "measured" in est.source


def test_tiny_or_mismatched_measurements_are_ignored(tmp_path):
    fake_run(tmp_path, "tiny", images_per_s=90.0, n_train=240, epochs=1)  # start-up noise
    fake_run(tmp_path, "b128", images_per_s=2000.0, n_train=48_000, epochs=3, batch_size=128)  # other batch
    est = E.estimate(preset("paper"), runs_root=tmp_path, models_dir=tmp_path)
    assert not est.measured and est.images_per_s == pytest.approx(1150)


def test_the_run_that_saw_most_images_is_preferred(tmp_path):
    fake_run(tmp_path, "short", images_per_s=700.0, n_train=6_000, epochs=1)
    fake_run(tmp_path, "long", images_per_s=1000.0, n_train=48_000, epochs=5)
    assert E.measured_speed(preset("paper"), tmp_path, tmp_path) == (1000.0, "run long")


def test_shipped_model_metadata_counts_as_a_measurement(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    meta = {"config": preset("paper").to_dict(), "architecture": "paper_cnn", "precision_used": "float32"}
    runs.write_json_atomic(models / "m.json", {**meta, "images_per_s": 640.0, "n_train": 48000, "epochs_completed": 9})
    assert E.measured_speed(preset("paper"), tmp_path / "runs", models) == (640.0, "shipped model m")


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


def test_advice_warns_about_too_few_steps_for_batchnorm():
    from fmnist_core.config import preset
    from fmnist_core.estimate import config_advice

    assert config_advice(preset("paper", limit=400, epochs=2))  # 10 steps x 2 epochs
    assert config_advice(preset("paper")) == []  # 1,500 steps x 20 epochs
