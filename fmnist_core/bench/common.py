"""What every benchmark shares: FLOP counts, timing helpers, fresh worker processes, the report.

Each benchmark module (train.py, fast.py, ...) measures in ``measure(args)`` and formats in
``table(out)``; ``report`` runs one and prints its table, or one JSON object on the last line
with ``--json`` (an error is one line, never a traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from .. import runs
from ..registry import ModelError, load_model, resolve
from ..runs import PROJECT_ROOT

# ---------------------------------------------------------------- FLOPs


def forward_flops(model) -> int:
    """Multiply-adds x 2 of the Conv2D and Dense layers for one image (pooling, BN, ReLU ignored)."""
    total = 0
    for layer in _leaf_layers(model):
        kind = type(layer).__name__
        if kind == "Conv2D":
            kh, kw, cin, cout = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            total += 2 * h * w * cout * kh * kw * cin
        elif kind == "Dense":
            cin, cout = layer.kernel.shape
            total += 2 * cin * cout
    return int(total)


def _leaf_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            yield from _leaf_layers(layer)
        else:
            yield layer


def train_flops(model) -> int:
    """Training FLOPs per image: forward + backward ~= 3 x forward (gradients w.r.t. inputs and weights)."""
    return 3 * forward_flops(model)


# ---------------------------------------------------------------- helpers


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, nearest rank."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def images_per_s(fn, n_images: int, repeats: int = 3) -> tuple[float, Any]:
    """Median images/s of ``repeats`` calls of ``fn()`` that each process ``n_images``; and its last result."""
    rates, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        rates.append(n_images / (time.perf_counter() - t))
    return statistics.median(rates), out


def worker_cmd(target: str, spec: dict[str, Any]) -> list[str]:
    """The command line of a fresh worker process for ``bench <target> --worker SPEC``."""
    return [sys.executable, "-m", "fmnist_core", "bench", target, "--worker", json.dumps(spec)]


def run_worker(target: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement in a fresh Python process (clean thread pools, no warm caches)."""
    # 'env' in a spec sets variables that TensorFlow reads at import (e.g. oneDNN's math mode).
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(PROJECT_ROOT), **spec.get("env", {})}
    out = subprocess.run(worker_cmd(target, spec), capture_output=True, text=True, env=env, cwd=PROJECT_ROOT)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark worker failed ({out.returncode}): {out.stderr[-1500:]}")
    return json.loads(lines[-1])


def quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ start-up lines off stderr in this process (before TensorFlow is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def say(args: argparse.Namespace, msg: str) -> None:
    """A progress line on stderr, unless ``--json`` was asked for."""
    if not args.json:
        print(msg, file=sys.stderr, flush=True)


def load_model_ref(spec: str | None):
    """(ModelRef, keras model) for --model, default the shipped paper model."""
    ref = resolve(spec)
    return ref, load_model(ref.path)


def add_json_flag(p: argparse.ArgumentParser) -> None:
    """``--json``, which every benchmark takes."""
    p.add_argument("--json", action="store_true", help="one JSON object on the last line")


def add_model_flag(p: argparse.ArgumentParser) -> None:
    """``--model``, for the benchmarks that time a trained model."""
    p.add_argument("--model", help="shipped name, run id or .keras path (default: the shipped paper model)")


def add_training_flags(p: argparse.ArgumentParser) -> None:
    """``--epochs`` and ``--overrides``, for the benchmarks that train a preset."""
    p.add_argument("--epochs", type=int, help="override the preset's epochs")
    p.add_argument("--overrides", help="JSON of TrainConfig fields to change, e.g. '{\"batch_size\": 256}'")


def add_worker_flag(p: argparse.ArgumentParser) -> None:
    """The hidden ``--worker SPEC`` a benchmark passes to the fresh process it measures in."""
    p.add_argument("--worker", help=argparse.SUPPRESS)


# ---------------------------------------------------------------- report


def report(
    args: argparse.Namespace,
    measure: Callable[[argparse.Namespace], dict[str, Any]],
    table: Callable[[dict[str, Any]], str],
) -> int:
    """Run ``measure(args)``; print ``table(out)``, or one JSON object on the last line with --json."""
    try:
        out = measure(args)
    except Exception as exc:  # one line, never a traceback
        hint = " (train one or pass --model PATH)" if isinstance(exc, ModelError) else ""
        msg = f"{type(exc).__name__}: {exc}{hint}"
        if args.json:
            print(json.dumps({"target": args.target, "error": msg}))
        print(f"error: {msg}", file=sys.stderr)
        return 1
    out["loaded_machine"] = load_note()
    if args.json:
        print(json.dumps(out, default=str))
    else:
        print(table(out))
    return 0


def load_note() -> str | None:
    """Say so when another training run was active (its numbers would be lower than this machine gives)."""
    try:
        busy = [r.run_id for r in runs.list_runs(runs.default_runs_root()) if r.status in ("running", "stopping")]
    except Exception:
        return None
    return f"training run(s) active during the benchmark: {', '.join(busy)}" if busy else None
