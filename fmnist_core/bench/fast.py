"""``bench fast``: wall seconds from process start until the ``fast`` preset reaches 91% test accuracy.

Also the worker every time-to-accuracy benchmark trains in (``run_preset_worker``; tta.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from ..runs import PROJECT_ROOT
from .common import add_json_flag, add_training_flags, add_worker_flag, quiet_tensorflow, report, say, worker_cmd


def worker_fast(spec: dict[str, Any]) -> None:
    """Train a preset (``fast`` unless ``spec['preset']``) and print one JSON line per epoch with the
    test accuracy, the time, and the seconds spent scoring so far (not training time).

    ``spec['budget_s']`` stops the run (best weights kept, as a Stop click does) once that many
    seconds of training have passed since ``spec['t0']``, the parent's start clock.
    """
    quiet_tensorflow()
    from ..data import load_dataset

    ds = load_dataset("fashion")
    import keras
    import numpy as np
    import tensorflow as tf

    from .. import runqueue
    from ..config import preset
    from ..pipeline import to_float
    from ..train import train

    overrides = {"epochs": spec.get("epochs"), "limit": spec.get("limit"), "seed": spec.get("seed")}
    config = preset(spec.get("preset", "fast"), **{**overrides, **spec.get("overrides", {})})
    x_test, y_test = ds.x_test, ds.y_test
    t0, budget = spec.get("t0", time.time()), spec.get("budget_s")
    scoring = [0.0]  # seconds spent on the per-epoch test scoring: excluded from time-to-accuracy
    run_dir: list[Path] = []

    class TestEachEpoch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if budget and time.time() - t0 - scoring[0] > budget and run_dir:
                runqueue.request_stop(run_dir[0])  # the trainer stops after this batch, keeping the best

        def on_epoch_end(self, epoch, logs=None):
            start = time.time()
            if not hasattr(self, "fn"):  # a traced forward pass: eager calls are several times slower
                self.fn = tf.function(lambda b: self.model(b, training=False))

            def proba(x):
                return np.concatenate([np.asarray(self.fn(to_float(x[i : i + 1000]))) for i in range(0, len(x), 1000)])

            probs = proba(x_test)
            if config.tta_flip:  # score what the saved model will answer: the mean with the mirror image
                probs = (probs + proba(x_test[:, :, ::-1])) / 2
            acc = float(np.mean(probs.argmax(1) == y_test))
            scoring[0] += time.time() - start
            rec = {"epoch": epoch + 1, "test_accuracy": acc, "t": start, "scoring_s": scoring[0]}
            print(json.dumps(rec), flush=True)

    with tempfile.TemporaryDirectory(prefix="fmnist-bench-") as tmp:
        run_dir.append(Path(tmp) / "run")
        result = train(config, run_dir[0], data=ds, callbacks=[TestEachEpoch()])
    print(
        json.dumps(
            {
                "final": True,
                "test_accuracy": result["test_accuracy"],
                "precision_used": result["precision_used"],
                "config": config.to_dict(),
                "train_images_per_s": result["images_per_s"],
                "epochs_completed": result.get("epochs_completed"),
                "scoring_s": scoring[0],
                "t": time.time(),
            }
        ),
        flush=True,
    )


def run_preset_worker(args: argparse.Namespace, spec: dict[str, Any]) -> tuple[list[dict], dict, float]:
    """Run ``worker_fast`` in a fresh process; (epoch records, final record, wall seconds).

    Each epoch record's ``seconds`` is wall time since the process was started, less the time
    spent scoring the test set at earlier epoch ends (the clock a user's run would see).
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(PROJECT_ROOT)}
    t0 = time.time()  # the clock starts before Python, TensorFlow and the data are loaded
    spec = {**spec, "t0": t0}
    proc = subprocess.Popen(
        worker_cmd("fast", spec), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=PROJECT_ROOT
    )
    epochs: list[dict[str, Any]] = []
    final: dict[str, Any] | None = None
    assert proc.stdout is not None
    for line in proc.stdout:
        if not line.startswith("{"):
            continue
        rec = json.loads(line)
        t = rec.pop("t")
        if rec.get("final"):
            final = rec
            continue
        # Scoring of earlier epochs is not training time; this epoch's own starts at t.
        earlier = epochs[-1]["scoring_s"] if epochs else 0.0
        rec["seconds"] = round(t - t0 - earlier, 1)
        epochs.append(rec)
        say(
            args,
            f"  {spec.get('preset', 'fast')} epoch {rec['epoch']}: {rec['test_accuracy']:.2%} at {rec['seconds']:.1f} s",
        )
    err = proc.stderr.read() if proc.stderr else ""
    proc.wait()
    wall = round(time.time() - t0, 1)
    if proc.returncode != 0 or final is None:
        raise RuntimeError(f"training failed ({proc.returncode}): {err[-1500:]}")
    return epochs, final, wall


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Seconds from process start until the fast preset reaches ``--goal`` test accuracy."""
    spec = {"epochs": args.epochs, "limit": args.limit, "overrides": json.loads(args.overrides or "{}")}
    epochs, final, seconds_total = run_preset_worker(args, spec)
    hit = next((e for e in epochs if e["test_accuracy"] >= args.goal), None)
    return {
        "target": "fast",
        "goal_accuracy": args.goal,
        "seconds_to_91": hit["seconds"] if hit else None,
        "epoch_reached": hit["epoch"] if hit else None,
        "test_accuracy": final["test_accuracy"],
        "seconds_total": seconds_total,
        "epochs": epochs,
        "precision_used": final["precision_used"],
        "train_images_per_s": final["train_images_per_s"],
        "config": final["config"],
    }


def table(out: dict[str, Any]) -> str:
    """The human-readable summary of ``out``."""
    s91 = f"{out['seconds_to_91']:.1f} s (epoch {out['epoch_reached']})" if out["seconds_to_91"] else "not reached"
    return (
        f"fast preset: {out['goal_accuracy']:.0%} test accuracy after {s91}; final test accuracy "
        f"{out['test_accuracy']:.2%}, {out['seconds_total']:.1f} s in all (data loading included)"
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bench fast`` to the bench command's subparsers."""
    p = sub.add_parser("fast", help="seconds until the fast preset reaches 91%% test accuracy")
    add_json_flag(p)
    add_training_flags(p)
    p.add_argument("--limit", type=int, help="train on N images only")
    p.add_argument("--goal", type=float, default=0.91, help="test accuracy to reach (default 0.91)")
    add_worker_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark (or, with ``--worker``, the training worker in this process)."""
    if args.worker:
        worker_fast(json.loads(args.worker))
        return 0
    return report(args, measure, table)
