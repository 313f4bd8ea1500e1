"""Short runs evaluate correctly: BatchNorm statistics are re-estimated before validation and test.

Without it a run of a few hundred steps scores near chance (10%) in inference mode while its
training accuracy rises, because BatchNorm's moving averages (momentum 0.99) still hold their
initial values (mean 0, variance 1).
"""

from __future__ import annotations

import json

import numpy as np

from fmnist_core import runs
from fmnist_core.train import BN_REESTIMATE_BELOW_STEPS, reestimate_batchnorm


def _batch_statistics_output(model, x):
    """The model's output with BatchNorm on the batch's own statistics and dropout off (nothing kept)."""
    import keras

    saved = model.get_weights()
    drops = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    rates = [layer.rate for layer in drops]
    for layer in drops:
        layer.rate = 0.0
    out = model(x, training=True).numpy()
    for layer, r in zip(drops, rates, strict=True):
        layer.rate = r
    model.set_weights(saved)  # undo the moving-average update that call made
    return out


def test_reestimated_statistics_make_inference_equal_batch_statistics(dataset):
    """One batch: afterwards inference mode computes exactly what training mode computes on it."""
    import keras

    from fmnist_core.model import build

    keras.utils.set_random_seed(0)
    model = build("paper_cnn")
    x = (dataset.x_train[:64] / 255.0).astype("float32")[..., None]
    reference = _batch_statistics_output(model, x)
    before = model(x, training=False).numpy()
    assert not np.allclose(before, reference, atol=1e-3)  # initial moving statistics (0, 1) are wrong
    trainable = [w.numpy().copy() for w in model.trainable_weights]
    assert reestimate_batchnorm(model, [x]) == 1
    np.testing.assert_allclose(model(x, training=False).numpy(), reference, atol=2e-5)
    for w, w0 in zip(model.trainable_weights, trainable, strict=True):
        np.testing.assert_array_equal(w.numpy(), w0)  # no weight update, only moving statistics
    bn = model.get_layer("bn1")
    assert bn.momentum == 0.99 and model.get_layer("drop1").rate == 0.2  # settings restored


def test_statistics_are_the_mean_over_batches(dataset):
    """Several batches (as (images, labels) pairs): the plain average of each batch's statistics."""
    from fmnist_core.model import build

    model = build("wide_cnn")
    x = (dataset.x_train[:96] / 255.0).astype("float32")[..., None]
    parts = [x[:32], x[32:64], x[64:]]
    single = []
    for part in parts:
        reestimate_batchnorm(model, [part])
        bn = model.get_layer("bn11")
        single.append((bn.moving_mean.numpy().copy(), bn.moving_variance.numpy().copy()))
    assert reestimate_batchnorm(model, [(p, None) for p in parts]) == 3
    bn = model.get_layer("bn11")
    np.testing.assert_allclose(bn.moving_mean.numpy(), np.mean([m for m, _ in single], 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), np.mean([v for _, v in single], 0), rtol=1e-5, atol=1e-6)


def test_short_run_evaluates_like_it_trains(tiny_run, dataset):
    """The shared tiny run (50 steps): validation and test accuracy are as high as training accuracy.

    Before the fix this run validated at ~10% beside ~64% training accuracy. Compared with the
    run's own training accuracy on the same images, not with a learned threshold.
    """
    from fmnist_core.config import TrainConfig
    from fmnist_core.data import stratified_split
    from fmnist_core.evaluate import predict_proba
    from fmnist_core.registry import load_model

    result = json.loads((tiny_run / "run.json").read_text())
    assert result["steps"] < BN_REESTIMATE_BELOW_STEPS
    assert result["bn_reestimated"] == result["epochs_completed"]  # before every validation
    train_acc = runs.read_jsonl(tiny_run / "metrics.jsonl")[-1]["accuracy"]
    # The check can only fail if the run learned something: 50 steps of Adam reach ~0.65 (10% is chance).
    assert train_acc > 0.4, train_acc
    config = TrainConfig.from_dict(result["config"])
    tr, _ = stratified_split(dataset.y_train, config.val_fraction, config.seed, config.limit)
    model = load_model(tiny_run / "model.keras")
    eval_acc = np.mean(predict_proba(model, dataset.x_train[tr]).argmax(1) == dataset.y_train[tr])
    # Inference mode on the training images, with the final weights and no dropout, does at least
    # as well as the running training accuracy of the last epoch (dropout on, weights still moving).
    assert eval_acc >= train_acc - 0.05, (eval_acc, train_acc)
    val_acc = result["history"][-1]["val_accuracy"]
    assert val_acc >= train_acc - 0.15 and result["test_accuracy"] >= train_acc - 0.15, (val_acc, result, train_acc)


def test_long_runs_keep_their_moving_averages(tmp_path, dataset):
    """The trainer's callback re-estimates before validation only while the run is short."""
    from fmnist_core.config import preset
    from fmnist_core.model import build
    from fmnist_core.train import StopFlag, make_recorder

    model = build("paper_cnn")
    x = (dataset.x_train[:32] / 255.0).astype("float32")[..., None]
    recorder = make_recorder(tmp_path, StopFlag(None), 48_000, preset("paper"), bn_batches=[x])
    recorder.set_model(model)
    recorder.on_epoch_begin(0)
    bn = model.get_layer("bn1")
    initial = bn.moving_mean.numpy().copy()
    recorder.steps_done = BN_REESTIMATE_BELOW_STEPS  # e.g. the paper preset: 1,500 steps per epoch
    recorder.on_test_begin()
    assert recorder.bn_reestimated == 0 and np.array_equal(bn.moving_mean.numpy(), initial)
    recorder.steps_done = BN_REESTIMATE_BELOW_STEPS - 1
    recorder.on_test_begin()
    assert recorder.bn_reestimated == 1 and not np.array_equal(bn.moving_mean.numpy(), initial)
