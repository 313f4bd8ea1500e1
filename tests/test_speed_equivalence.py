"""Speed never silently changes results: the fast paths learn and predict like the faithful ones.

Small real runs (a few hundred images): the project's tf.data pipeline vs the plain Keras loop
(augmentation layers in the model, ``fit`` on arrays), and bfloat16 vs float32 on the same weights.
No timing here: speed is measured by ``python -m fmnist_core bench``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

N_TRAIN = 3000  # stratified training images per run
N_TEST = 1000
EPOCHS = 3
BATCH = 32  # 282 steps: enough for BatchNorm's moving statistics to settle (measured: 200 were not)


def _subset(dataset):
    from fmnist_core.data import stratified_split

    idx, _ = stratified_split(dataset.y_train, 0.1, seed=0, limit=N_TRAIN + N_TRAIN // 9 + 1)
    idx = idx[:N_TRAIN]
    return dataset.x_train[idx], dataset.y_train[idx]


def _compile(model):
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )


def _faithful(dataset, seed: int, augment: bool = False) -> float:
    """The naive Keras loop (as `bench train` times it): Keras' augmentation layers first in the model."""
    import keras

    from fmnist_core.bench import keras_augmenter
    from fmnist_core.config import preset
    from fmnist_core.model import build

    keras.utils.set_random_seed(seed)
    config = preset("paper", seed=seed)
    core = build("paper_cnn")
    aug = [keras_augmenter(config)] if augment else []
    model = keras.Sequential([keras.Input((28, 28, 1)), *aug, core])
    _compile(model)
    x, y = _subset(dataset)
    hist = model.fit((x / 255.0).astype("float32")[..., None], y, batch_size=BATCH, epochs=EPOCHS, verbose=0)
    return float(hist.history["accuracy"][-1])


def _project(dataset, seed: int, precision: str = "float32", batch_size: int = BATCH, augment: bool = False) -> float:
    """The project's path: fmnist_core.pipeline.train_dataset (parallel augmentation + prefetch)."""
    import keras

    from fmnist_core.config import preset
    from fmnist_core.model import build
    from fmnist_core.pipeline import train_dataset

    keras.utils.set_random_seed(seed)
    config = preset("paper", seed=seed, batch_size=batch_size, augment=augment)
    model = build("paper_cnn", dtype=precision)
    _compile(model)
    x, y = _subset(dataset)
    hist = model.fit(train_dataset(x, y, config), epochs=EPOCHS, verbose=0)
    return float(hist.history["accuracy"][-1])


@pytest.mark.slow
def test_pipeline_learns_like_the_plain_keras_loop(dataset):
    # Without augmentation: with 400 images and a few hundred steps the augmented runs of either
    # path stay at chance level (measured), which would make the comparison meaningless.
    # Noise between two seeds of the faithful path sets the tolerance (never below 5 points).
    faithful = [_faithful(dataset, s) for s in (1, 2)]
    project = _project(dataset, 1)
    noise = abs(faithful[0] - faithful[1])
    tolerance = max(0.05, 2 * noise)
    # Training accuracy of the last epoch: on short runs the report's CNN scores near chance in
    # eval mode (BatchNorm running averages and dropout variance shift lag the weights), so the
    # test set cannot tell the paths apart; the accuracy the optimiser reached can.
    assert min(faithful) > 0.6, f"the faithful path did not learn: {faithful}"
    assert abs(project - np.mean(faithful)) <= tolerance, (project, faithful, tolerance)


@pytest.mark.slow
def test_bfloat16_training_learns_like_float32(dataset):
    fp32 = _project(dataset, 3)
    bf16 = _project(dataset, 3, precision="mixed_bfloat16")
    assert fp32 > 0.6 and bf16 > 0.6, (fp32, bf16)
    assert abs(fp32 - bf16) <= 0.06, (fp32, bf16)


def test_bfloat16_model_predicts_like_float32_with_the_same_weights(tiny_run, dataset):
    """The fast (bf16) forward pass gives the same classes as float32 for the trained weights."""
    from fmnist_core.evaluate import predict_proba
    from fmnist_core.model import with_dtype
    from fmnist_core.registry import load_model

    fp32 = load_model(tiny_run / "model.keras")
    architecture = json.loads((tiny_run / "run.json").read_text())["architecture"]
    bf16 = with_dtype(fp32, architecture, "mixed_bfloat16")
    x = dataset.x_test[:N_TEST]
    p32, p16 = predict_proba(fp32, x), predict_proba(bf16, x)
    assert p16.dtype == np.float32 and np.allclose(p16.sum(1), 1, atol=1e-3)
    assert np.mean(p32.argmax(1) == p16.argmax(1)) >= 0.97
    assert np.max(np.abs(p32 - p16)) < 0.1


def test_pipeline_variants_feed_the_same_images(dataset):
    """Without augmentation the benchmark's ablation switches (parallel, prefetch) change nothing."""
    from fmnist_core.config import preset
    from fmnist_core.pipeline import train_dataset

    x, y = dataset.x_train[:256], dataset.y_train[:256]
    config = preset("paper", augment=False, batch_size=64)
    a = [(xb.numpy(), yb.numpy()) for xb, yb in train_dataset(x, y, config)]
    b = [(xb.numpy(), yb.numpy()) for xb, yb in train_dataset(x, y, config, parallel=False, prefetch=False)]
    assert len(a) == len(b) == 4
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)
        assert xa.dtype == np.float32 and xa.shape[1:] == (28, 28, 1) and xa.min() >= 0 and xa.max() <= 1
