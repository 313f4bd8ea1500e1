"""Train a model for a TrainConfig and write the run directory as it goes.

``train(config, run_dir)`` is what ``python -m fmnist_core train`` runs, in its own process when
the app starts it. It records per-epoch metrics and throttled batch progress, honours a stop
request (stop file or SIGTERM/SIGINT) within one batch, keeps the best weights by val_loss,
evaluates on the test set and writes ``model.keras`` and ``run.json`` atomically.
"""

from __future__ import annotations

import os
import signal
import time
import traceback
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from . import runs
from .config import TrainConfig
from .machine import machine_info, resolve_precision

PROGRESS_EVERY_S = 0.25  # at most four progress.json writes a second
# BatchNorm's moving averages (momentum 0.99) still hold 0.99**n of their initial values after n
# steps: 74% after 30 steps, 5% after 300, under 1% after 500. Runs shorter than this get their
# statistics re-estimated before each validation and the final test; longer runs are unchanged.
BN_REESTIMATE_BELOW_STEPS = 500
BN_REESTIMATE_IMAGES = 1024  # training images (unaugmented) whose batch statistics are averaged
TENSORBOARD_DIR = "tensorboard"  # per run: train/ and validation/ event files, so `tensorboard --logdir runs` works


_PRECISE_BN_FORWARD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def reestimate_batchnorm(model, batches) -> int:
    """Set every BatchNorm layer's moving mean and variance to the average of its batch statistics.

    ``batches`` yields image batches (or (images, labels) pairs). BatchNorm layers run in training
    mode, every other layer as at inference (dropout off), and no weight changes except the
    moving statistics, which become the plain mean over all batches ("precise BN").
    Returns the number of batches used.
    Why: after a few hundred steps the exponential moving averages still remember their initial
    values (0 and 1), so inference-mode accuracy sits near chance while training accuracy rises.
    """
    import keras
    import tensorflow as tf

    layers = list(model._flatten_layers(include_self=False, recursive=True))
    norms = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]
    drops = [layer for layer in layers if isinstance(layer, keras.layers.Dropout)]
    if not norms:
        return 0
    momenta = [layer.momentum for layer in norms]
    rates = [layer.rate for layer in drops]
    sums = [[np.zeros(layer.moving_mean.shape), np.zeros(layer.moving_variance.shape)] for layer in norms]
    n = 0
    try:
        for layer in norms:
            layer.momentum = 0.0  # each forward pass leaves exactly that batch's statistics
        for layer in drops:
            layer.rate = 0.0  # Dropout.call is the identity at rate 0, even in training mode
        # One graph for all batches (eager calls measured ~2x slower), traced with the settings above
        # and kept with the model, so the re-estimations before later validations do not trace again.
        forward = _PRECISE_BN_FORWARD.get(model)
        if forward is None:
            forward = _PRECISE_BN_FORWARD[model] = tf.function(lambda x: model(x, training=True))
        for batch in batches:
            forward(batch[0] if isinstance(batch, tuple | list) else batch)
            n += 1
            for layer, acc in zip(norms, sums, strict=True):
                acc[0] += layer.moving_mean.numpy()
                acc[1] += layer.moving_variance.numpy()
        if n:
            for layer, (mean, var) in zip(norms, sums, strict=True):
                layer.moving_mean.assign(mean / n)
                layer.moving_variance.assign(var / n)
    finally:
        for layer, m in zip(norms, momenta, strict=True):
            layer.momentum = m
        for layer, r in zip(drops, rates, strict=True):
            layer.rate = r
    return n


class UserStop(Exception):
    """Raised from the callback to leave ``fit`` at once (skipping the epoch's validation)."""


class StopFlag:
    """Set by a signal handler or a stop file; read by the Keras callback after every batch."""

    def __init__(self, run_dir: Path | None) -> None:
        self.run_dir = run_dir
        self.signalled = False

    def install_signal_handlers(self) -> None:
        def handler(signum, frame):  # noqa: ARG001
            if self.signalled:  # a second Ctrl-C means: really quit now
                raise KeyboardInterrupt
            self.signalled = True

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def __bool__(self) -> bool:
        return self.signalled or (self.run_dir is not None and runs.stop_requested(self.run_dir))


def make_recorder(run_dir: Path, stop: StopFlag, n_train: int, config: TrainConfig, bn_batches=None):
    """The Keras callback that writes metrics/progress, stops on request and keeps best weights.

    With ``bn_batches`` (training images, see ``reestimate_batchnorm``) it re-estimates the
    BatchNorm statistics before each validation while fewer than BN_REESTIMATE_BELOW_STEPS steps ran.
    """
    import keras

    class RunRecorder(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.steps = int(np.ceil(n_train / config.batch_size))
            self.history: list[dict[str, Any]] = []
            self.best_val_loss = np.inf
            self.best_weights = None
            self.best_epoch: int | None = None
            self.stopped_by_user = False
            self.t_train = time.time()
            self.images_seen = 0
            self.steps_done = 0
            self.bn_reestimated = 0  # validations that ran on re-estimated BatchNorm statistics

        def _progress(self, epoch: int, batch: int, phase: str, force: bool = False) -> None:
            now = time.time()
            if not force and now - getattr(self, "_last", 0) < PROGRESS_EVERY_S:
                return
            self._last = now
            elapsed = now - self.t_train
            done = epoch * self.steps + batch
            total = config.epochs * self.steps
            rate = self.images_seen / elapsed if elapsed > 0 else 0.0
            eta = (total - done) * config.batch_size / rate if rate > 0 else None
            runs.write_json_atomic(
                run_dir / "progress.json",
                {
                    "epoch": epoch + 1,
                    "epochs": config.epochs,
                    "batch": batch,
                    "batches": self.steps,
                    "phase": phase,
                    "images_per_s": round(rate, 1),
                    "elapsed_s": round(elapsed, 1),
                    "eta_s": None if eta is None else round(eta, 1),
                    "updated_at": now,
                },
            )

        def on_epoch_begin(self, epoch, logs=None):
            self.t_epoch = time.time()
            self.epoch = epoch
            self._progress(epoch, 0, "train", force=True)

        def on_train_batch_end(self, batch, logs=None):
            self.images_seen += config.batch_size
            self.steps_done += 1
            self._progress(self.epoch, batch + 1, "train")
            if stop:
                self.stopped_by_user = True
                raise UserStop

        def on_test_begin(self, logs=None):
            self._progress(self.epoch, self.steps, "validate", force=True)
            if bn_batches is not None and self.steps_done < BN_REESTIMATE_BELOW_STEPS:
                reestimate_batchnorm(self.model, bn_batches)
                self.bn_reestimated += 1

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            lr = self.model.optimizer.learning_rate
            rec = {
                "epoch": epoch + 1,
                "loss": float(logs.get("loss", np.nan)),
                "accuracy": float(logs.get("accuracy", np.nan)),
                "val_loss": float(logs.get("val_loss", np.nan)),
                "val_accuracy": float(logs.get("val_accuracy", np.nan)),
                "lr": float(np.asarray(lr.numpy() if hasattr(lr, "numpy") else lr)),
                "seconds": round(time.time() - self.t_epoch, 2),
            }
            self.history.append(rec)
            runs.append_jsonl(run_dir / "metrics.jsonl", rec)
            if rec["val_loss"] < self.best_val_loss:
                self.best_val_loss = rec["val_loss"]
                self.best_epoch = epoch + 1
                self.best_weights = self.model.get_weights()

    return RunRecorder()


def optimizer_for(config: TrainConfig, steps_per_epoch: int):
    """Adam with a constant rate (the report) or a one-cycle schedule (warm-up, cosine decay)."""
    import keras

    lr: Any = config.learning_rate
    if config.lr_schedule == "onecycle":
        total = max(1, config.epochs * steps_per_epoch)
        warm = max(1, int(0.15 * total))
        lr = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=config.learning_rate / 10,
            decay_steps=total - warm,
            alpha=0.01,
            warmup_target=config.learning_rate,
            warmup_steps=warm,
        )
    return keras.optimizers.Adam(learning_rate=lr)


def compile_for_training(model, config: TrainConfig, steps_per_epoch: int) -> None:
    """Compile with the config's optimiser, loss and metric (one-hot labels under label smoothing).

    Shared by ``train`` and the speed measurement of ``estimate``, so both time the same step.
    """
    import keras

    if config.label_smoothing > 0:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
        metric = keras.metrics.CategoricalAccuracy(name="accuracy")
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
        metric = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    model.compile(optimizer=optimizer_for(config, steps_per_epoch), loss=loss, metrics=[metric])


def export_model(trained, config: TrainConfig):
    """A float32 copy of the trained weights (plus flip TTA if configured), compiled for eval.

    Training may run in bfloat16; the shipped file is always float32 with the report's sparse
    loss and metric, so plain ``keras.models.load_model`` + ``evaluate`` work on it.
    """
    from .model import compile_for_eval, with_dtype, with_flip_tta

    model = with_dtype(trained, config.architecture, "float32")
    if config.tta_flip:
        model = with_flip_tta(model)
    compile_for_eval(model, config.learning_rate)
    return model


def write_model_graph(model, log_dir: Path) -> None:
    """The forward pass's op graph, for TensorBoard's Graphs tab.

    Keras 3's TensorBoard callback writes only the conceptual graph (the layers): its train
    function is a Python function around the traced step, which it cannot write.
    """
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False))
    graph = fn.get_concrete_function(tf.TensorSpec([None, 28, 28, 1], tf.float32)).graph
    writer = tf.summary.create_file_writer(str(Path(log_dir) / "train"))
    with writer.as_default():
        tf.summary.graph(graph)
    writer.close()


def save_model_atomic(model, path: Path) -> None:
    """Save to a temp file in the same folder, check it loads, then rename over ``path``."""
    import keras

    tmp = path.with_name(f".{path.stem}.tmp.keras")
    try:
        model.save(tmp)
        keras.models.load_model(tmp, compile=False, safe_mode=True)  # never ship an unreadable file
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def train(
    config: TrainConfig,
    run_dir: Path,
    verbose: int = 0,
    data=None,
    install_signals: bool = False,
    callbacks: list[Any] | None = None,
) -> dict[str, Any]:
    """Run one training as described in the module docstring; return the run.json contents.

    ``data`` may be a preloaded ``fmnist_core.data.Dataset`` (tests); else it is loaded.
    ``callbacks`` are extra Keras callbacks (the benchmark's per-epoch test evaluation).
    Raises on failure after writing status 'failed' with the error text.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    runs.write_json_atomic(run_dir / "config.json", config.to_dict())
    status = runs.read_json(run_dir / "status.json", {}) or {}
    if "created_at" not in status:
        runs.set_status(run_dir, "queued", created_at=time.time())
    stop = StopFlag(run_dir)
    if install_signals:
        stop.install_signal_handlers()
    try:
        with runs.train_lock(run_dir.resolve().parent):
            runs.set_status(run_dir, "running", pid=os.getpid(), started_at=time.time(), error=None)
            result = _train_locked(config, run_dir, verbose, data, stop, callbacks)
    except runs.RunBusyError as exc:
        runs.set_status(run_dir, "failed", ended_at=time.time(), error=str(exc))
        raise
    except BaseException as exc:
        msg = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
        runs.set_status(run_dir, "failed", ended_at=time.time(), error=msg, traceback=traceback.format_exc())
        raise
    runs.set_status(run_dir, result["status"], ended_at=time.time())
    return result


def _train_locked(
    config: TrainConfig, run_dir: Path, verbose: int, data, stop: StopFlag, extra_callbacks: list[Any] | None = None
) -> dict[str, Any]:
    t0 = time.time()
    from .data import load_dataset, stratified_split

    ds = data if data is not None else load_dataset(config.dataset)
    tr, va = stratified_split(ds.y_train, config.val_fraction, config.seed, config.limit)

    import keras

    from .evaluate import file_fingerprint, predict_proba, report, save_scores
    from .model import build, parameter_count
    from .pipeline import eval_dataset, train_dataset

    keras.utils.set_random_seed(config.seed)
    precision = resolve_precision(config)
    one_hot = config.label_smoothing > 0
    train_ds = train_dataset(ds.x_train[tr], ds.y_train[tr], config, one_hot=one_hot)
    val_ds = eval_dataset(ds.x_train[va], ds.y_train[va], one_hot=one_hot)
    steps = int(np.ceil(len(tr) / config.batch_size))
    bn_idx = tr[:BN_REESTIMATE_IMAGES]
    bn_batches = eval_dataset(ds.x_train[bn_idx], ds.y_train[bn_idx], batch_size=config.batch_size)

    model = build(config.architecture, dtype=precision, dropout=config.dropout)
    compile_for_training(model, config, steps)

    recorder = make_recorder(run_dir, stop, len(tr), config, bn_batches=bn_batches)
    # Per-epoch loss, accuracy, val_*, learning rate and the model graph (Keras' conceptual graph
    # and the traced train step), written by TensorFlow's own summary ops: no tensorboard package
    # needed to write them, only to view them. Epoch-level only (no profiler, no histograms).
    tensorboard = keras.callbacks.TensorBoard(
        log_dir=str(run_dir / TENSORBOARD_DIR), write_graph=True, update_freq="epoch", profile_batch=0
    )
    write_model_graph(model, run_dir / TENSORBOARD_DIR)
    callbacks: list[Any] = [recorder, tensorboard, *(extra_callbacks or [])]
    if config.patience:
        # The report: early stopping on val_loss, patience 5; the recorder restores the best.
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience))
    t_fit = time.time()
    try:
        if not stop:
            model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, callbacks=callbacks, verbose=verbose)
    except UserStop:
        # The partial epoch is not recorded; the best complete epoch is restored below. fit left
        # without on_train_end: close the event files here so the epochs written so far are kept.
        tensorboard.on_train_end()
    fit_seconds = time.time() - t_fit
    stopped = recorder.stopped_by_user or bool(stop)
    if recorder.best_weights is not None:
        model.set_weights(recorder.best_weights)  # its BatchNorm statistics are those it validated with
    elif 0 < recorder.steps_done < BN_REESTIMATE_BELOW_STEPS:
        reestimate_batchnorm(model, bn_batches)  # stopped before any validation: a short run

    runs.write_json_atomic(
        run_dir / "progress.json",
        {**(runs.read_json(run_dir / "progress.json", {}) or {}), "phase": "evaluate", "updated_at": time.time()},
    )
    final = export_model(model, config)
    probs = predict_proba(final, ds.x_test)
    result: dict[str, Any] = {
        "format": 1,
        "run_id": run_dir.name,
        "status": "stopped" if stopped else "finished",
        "dataset": config.dataset,
        "class_names": list(ds.class_names),
        "input_shape": [28, 28, 1],
        "input_range": [0, 1],
        "input_dtype": "float32",
        "architecture": config.architecture,
        "params": parameter_count(final),
        "config": config.to_dict(),
        "seed": config.seed,
        "precision_used": precision,
        "n_train": int(len(tr)),
        "n_val": int(len(va)),
        "epochs_completed": len(recorder.history),
        "best_epoch": recorder.best_epoch,
        "best_val_loss": None if recorder.best_epoch is None else float(recorder.best_val_loss),
        "steps": recorder.steps_done,
        "bn_reestimated": recorder.bn_reestimated,
        "history": recorder.history,
        "train_seconds": round(fit_seconds, 1),
        "images_per_s": round(recorder.images_seen / fit_seconds, 1) if fit_seconds > 0 else None,
        "total_seconds": None,
        "machine": machine_info(),
        "data_folder": str(ds.folder),
        **report(ds.y_test, probs, ds.class_names),
    }
    save_model_atomic(final, run_dir / "model.keras")
    # The Evaluate page (and Inside) then open this run without scoring the test set again.
    save_scores(file_fingerprint(run_dir / "model.keras"), config.dataset, probs)
    result["total_seconds"] = round(time.time() - t0, 1)
    result["finished_at"] = time.time()
    runs.write_json_atomic(run_dir / "run.json", result)
    return result
