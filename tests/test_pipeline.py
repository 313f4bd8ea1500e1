"""Augmentation and tf.data pipelines: what the network is shown."""

from __future__ import annotations

import numpy as np

from fmnist_core.config import PRESETS, preset
from fmnist_core.pipeline import augmenter, eval_dataset, photo_augment, random_erase, to_float, train_dataset


def _images(dataset, n=16):
    return to_float(dataset.x_train[:n])


def test_paper_augmentation_moves_but_keeps_garments(dataset):
    x = _images(dataset)
    aug = augmenter(PRESETS["paper"])
    a = np.asarray(aug(x, training=True))
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1.0 + 1e-6
    diff = np.abs(a - np.asarray(x)).mean(axis=(1, 2, 3))
    assert (diff > 0).all()  # every image was transformed
    # One resampling keeps the garment's overall brightness (three chained ones lost ~10%).
    ratio = a.sum(axis=(1, 2, 3)) / np.asarray(x).sum(axis=(1, 2, 3))
    assert np.median(ratio) > 0.85
    assert np.array_equal(np.asarray(aug(x, training=False)), np.asarray(x))


def test_pure_shift_moves_whole_pixels(dataset):
    x = _images(dataset, 4)
    a = np.asarray(augmenter(preset("paper", rotation_deg=0.0, zoom=0.0))(x, training=True))
    values = set(np.unique(np.asarray(x)).tolist()) | {0.0}
    assert set(np.unique(a).tolist()) <= values


def test_no_augmentation_gives_none():
    assert augmenter(preset("paper", rotation_deg=0.0, shift=0.0, zoom=0.0)) is None


def test_random_erase_zeroes_one_rectangle():
    x = np.ones((8, 28, 28, 1), np.float32)
    out = np.asarray(random_erase(x, 1.0))[..., 0]
    for img in out:
        ys, xs = np.nonzero(img == 0)
        assert len(ys) > 0
        # The erased pixels form exactly their bounding rectangle.
        assert len(ys) == (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
    assert np.array_equal(np.asarray(random_erase(x, 0.0)), x)


def test_datasets_shapes_and_labels(dataset):
    cfg = preset("fast", batch_size=32)
    xb, yb = next(iter(train_dataset(dataset.x_train[:100], dataset.y_train[:100], cfg)))
    assert xb.shape == (32, 28, 28, 1) and xb.dtype.name == "float32" and yb.shape == (32,)
    xb, yb = next(iter(train_dataset(dataset.x_train[:100], dataset.y_train[:100], cfg, one_hot=True)))
    assert yb.shape == (32, 10) and np.allclose(np.asarray(yb).sum(1), 1)
    xe, ye = next(iter(eval_dataset(dataset.x_test[:10], dataset.y_test[:10], batch_size=10)))
    assert np.allclose(np.asarray(xe)[..., 0] * 255, dataset.x_test[:10]) and np.array_equal(ye, dataset.y_test[:10])


def test_best_preset_pipeline_builds_in_graph_mode(dataset):
    """Affine + flip + erasing + one-hot labels inside tf.data (static shapes survive the affine op)."""
    cfg = preset("best", batch_size=16, rotation_deg=5.0)
    xb, yb = next(iter(train_dataset(dataset.x_train[:64], dataset.y_train[:64], cfg, one_hot=True)))
    assert xb.shape == (16, 28, 28, 1) and yb.shape == (16, 10)


def test_photo_augment_changes_the_chosen_share_and_keeps_the_range(dataset):
    x = _images(dataset, 32)
    a = np.asarray(photo_augment(x, 1.0))
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1.0 + 1e-6
    assert (np.abs(a - np.asarray(x)).mean(axis=(1, 2, 3)) > 0).all()  # every image was changed
    # Like the photo pipeline's last step, the brightest pixel of each image is 1.
    assert np.allclose(a.max(axis=(1, 2, 3)), 1.0, atol=1e-5)
    assert np.array_equal(np.asarray(photo_augment(x, 0.0)), np.asarray(x))


def test_photo_preset_pipeline_builds_in_graph_mode(dataset):
    cfg = preset("photo", batch_size=16)
    assert cfg.photo_prob > 0 and PRESETS["best"].photo_prob == 0  # the other presets are unchanged
    xb, yb = next(iter(train_dataset(dataset.x_train[:64], dataset.y_train[:64], cfg, one_hot=True)))
    assert xb.shape == (16, 28, 28, 1) and yb.shape == (16, 10)
