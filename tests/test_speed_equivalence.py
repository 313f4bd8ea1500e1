"""Speed never silently changes results: the project's training input is the plain Keras loop's.

The project feeds ``model.fit`` from a tf.data pipeline (parallel map, prefetch); the naive way
(what ``bench train`` times as its baseline) fits on arrays. Given the same images in the same order
and the same starting weights, both must compute the same training, step for step. bfloat16 vs
float32 is tested in test_precision.py. No timing here: speed is measured by ``python -m fmnist_core bench``.

(Earlier versions compared the accuracy of separate short trainings; what a few hundred noisy steps
learn is not certain enough to assert, and the runs cost minutes on the slow CPU.)
"""

from __future__ import annotations

import numpy as np


def _without_dropout(model):
    """Dropout draws random masks that two fits cannot share; the arithmetic under test is the rest."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
    return model


def test_pipeline_trains_like_the_plain_keras_loop(dataset):
    import keras

    from fmnist_core.config import preset
    from fmnist_core.model import build
    from fmnist_core.pipeline import train_dataset
    from fmnist_core.train import compile_for_training

    x, y = dataset.x_train[:256], dataset.y_train[:256]
    config = preset("paper", augment=False, batch_size=32)
    # The pipeline's own (seeded, shuffled) order, read out as arrays for the plain loop. Its shuffle
    # seed combines with TensorFlow's global seed, so that is fixed the same way before each use.
    keras.utils.set_random_seed(0)
    batches = [(xb.numpy(), yb.numpy()) for xb, yb in train_dataset(x, y, config)]
    xs, ys = np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
    assert xs.dtype == np.float32 and xs.shape == (256, 28, 28, 1) and xs.min() >= 0 and xs.max() <= 1
    np.testing.assert_array_equal(np.sort(ys), np.sort(y))  # every image once, none twice

    keras.utils.set_random_seed(0)
    start = build("paper_cnn").get_weights()
    results = {}
    for path in ("pipeline", "arrays"):
        model = _without_dropout(build("paper_cnn"))
        model.set_weights(start)
        compile_for_training(model, config, steps_per_epoch=len(batches))
        if path == "pipeline":
            keras.utils.set_random_seed(0)
            hist = model.fit(train_dataset(x, y, config), epochs=1, verbose=0)
        else:  # the naive loop: arrays already in [0, 1], Keras batches them without shuffling
            hist = model.fit(xs, ys, batch_size=32, epochs=1, shuffle=False, verbose=0)
        results[path] = (hist.history["loss"][0], model.get_weights())
    (loss_p, w_p), (loss_a, w_a) = results["pipeline"], results["arrays"]
    assert abs(loss_p - loss_a) < 1e-3 * loss_a, (loss_p, loss_a)
    # The weights moved alike: their difference is tiny beside how far training moved them. (Not
    # element-wise: Adam's update is ~lr x sign(gradient), so float round-off in a near-zero gradient
    # can flip single weights. The same 8 batches in another order differ by far more.)
    moved = np.sqrt(sum(np.sum((a - s0) ** 2) for a, s0 in zip(w_a, start, strict=True)))
    apart = np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(w_p, w_a, strict=True)))
    assert moved > 0.1 and apart < 0.02 * moved, (apart, moved)


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
