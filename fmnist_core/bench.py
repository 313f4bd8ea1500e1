"""Benchmarks: ``python -m fmnist_core bench {train,fast,predict,evaluate,app} [--json]``.

Every target measures the project's way against the naive Keras way in the same invocation and
prints a table (``--json``: one JSON object on the last line). Results and method:
docs/PERFORMANCE.md.

- ``train``: images/s of the report's CNN. Naive = augmentation layers inside the model and
  ``model.fit`` on float arrays (batch 32, float32). Project = the tf.data pipeline of
  ``fmnist_core.pipeline`` (augmentation in a parallel map, prefetch) exactly as ``train.py`` uses
  it. Each variant runs in its own fresh process (same data, same model, same number of images);
  the headline compares the *same batch size* (32, the paper preset); ``best`` adds what the
  project's fastest setting does (bigger batches in bfloat16, as the ``fast`` preset trains).
- ``fast``: wall seconds from process start until the ``fast`` preset reaches 91% test accuracy.
- ``predict``: one photo through preprocessing and the model, vs ``model.predict``.
- ``evaluate``: test-set images/s with ``evaluate.predict_proba`` vs ``model.predict``.
- ``app``: ``streamlit run`` -> Home page rendered in headless Chromium -> first prediction.
- ``tta``: time to accuracy. For each preset, wall seconds from process start (data loading
  included) to 90 ... 95% test accuracy, scored at each epoch end outside the training clock, and
  the same figures as fractions of the faithful ``paper`` recipe's 20 epochs timed on a slice of
  this machine in the same invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import bench_teach as _bench_teach

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("train", "fast", "predict", "evaluate", "app", "tta")
TTA_GOALS = (0.90, 0.91, 0.92, 0.93, 0.94, 0.945, 0.95)

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


def cpu_peak_gflops() -> dict[str, Any]:
    """A paper estimate of this CPU's peak: cores x clock x FLOP/cycle (AVX-512 FMA).

    Clock: the TSC rate (BogoMIPS / 2 on Linux), the base clock; boost clocks in a VM are unknown.
    FLOP/cycle per core: 2 FMA pipes x 16 float32 lanes (512-bit) x 2 (multiply + add) = 64 when the
    CPU has AVX-512 (Zen 4 splits 512-bit ops into two 256-bit halves: 32); bfloat16 dot products
    (VDPBF16PS) do twice the float32 work per instruction.
    """
    info: dict[str, Any] = {"cores": os.cpu_count() or 1, "model": "", "family": None}
    from .train import cpuinfo_text

    text = cpuinfo_text()
    mhz = None
    for line in text.splitlines():
        key, _, val = line.partition(":")
        key, val = key.strip(), val.strip()
        if key == "model name" and not info["model"]:
            info["model"] = val
        elif key == "cpu family" and info["family"] is None:
            info["family"] = int(val)
        elif key == "bogomips" and mhz is None:
            mhz = float(val) / 2
    flags = text
    avx512 = "avx512f" in flags
    amd = "AuthenticAMD" in text
    # AMD family 25 = Zen 3/4 (512-bit ops in two halves), 26 = Zen 5 (full 512-bit datapath).
    per_cycle = 64 if avx512 and not (amd and info["family"] == 25) else 32
    ghz = (mhz or 2500.0) / 1000
    fp32 = info["cores"] * ghz * per_cycle
    info.update(
        ghz=round(ghz, 3),
        flop_per_cycle_fp32=per_cycle,
        peak_fp32_gflops=round(fp32, 1),
        peak_bf16_gflops=round(2 * fp32, 1) if "avx512_bf16" in flags or "amx_bf16" in flags else None,
    )
    return info


# ---------------------------------------------------------------- helpers


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def _images_per_s(fn, n_images: int, repeats: int = 3) -> tuple[float, Any]:
    """Median images/s of ``repeats`` calls of ``fn()`` that each process ``n_images``; and its last result."""
    rates, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        rates.append(n_images / (time.perf_counter() - t))
    return statistics.median(rates), out


def _worker_cmd(target: str, spec: dict[str, Any]) -> list[str]:
    return [sys.executable, "-m", "fmnist_core", "bench", target, "--worker", json.dumps(spec)]


def _run_worker(target: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement in a fresh Python process (clean thread pools, no warm caches)."""
    # 'env' in a spec sets variables that TensorFlow reads at import (e.g. oneDNN's math mode).
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), **spec.get("env", {})}
    out = subprocess.run(_worker_cmd(target, spec), capture_output=True, text=True, env=env, cwd=ROOT)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark worker failed ({out.returncode}): {out.stderr[-1500:]}")
    return json.loads(lines[-1])


def _quiet() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


# ---------------------------------------------------------------- train

# Variants measured by `bench train` (all: the paper CNN, same images, same count of images).
# kind 'naive': Keras' RandomRotation/Translation/Zoom inside the model, model.fit on float32 arrays.
# kind 'project': fmnist_core.pipeline.train_dataset (as train.py), model without augmentation.
# TensorFlow (>= 2.13) passes this to oneDNN: float32 convolutions and matmuls may run in bfloat16.
FPMATH_BF16 = {"TF_SET_ONEDNN_FPMATH_MODE": "BF16"}
HEADLINE = {
    "baseline": {"kind": "naive", "batch": 32},
    "project": {"kind": "project", "batch": 32},
    # Batch 256 in the precision the fast preset picks on this CPU: bfloat16 where the CPU has
    # bf16 instructions, float32 on AVX2-only CPUs (where bf16 is emulated and several times slower).
    "best": {"kind": "project", "batch": 256, "precision": "auto"},
}
ABLATION = {
    "naive b32 fp32 (aug in model, fit on arrays)": {"kind": "naive", "batch": 32},
    "naive b32, project's RandomAffine in the model": {"kind": "naive", "batch": 32, "aug": "project"},
    "naive b32, no augmentation at all": {"kind": "naive", "batch": 32, "augment": False},
    "pipeline b32, serial map, no prefetch": {"kind": "project", "batch": 32, "parallel": False, "prefetch": False},
    "pipeline b32, parallel map, no prefetch": {"kind": "project", "batch": 32, "prefetch": False},
    "pipeline b32 (paper preset as trained)": {"kind": "project", "batch": 32},
    "pipeline b32, intra=2 inter=1 threads": {"kind": "project", "batch": 32, "intra": 2, "inter": 1},
    "pipeline b32, intra=1 inter=1 threads": {"kind": "project", "batch": 32, "intra": 1, "inter": 1},
    "pipeline b32, steps_per_execution=8": {"kind": "project", "batch": 32, "spe": 8},
    "pipeline b32 bf16": {"kind": "project", "batch": 32, "precision": "mixed_bfloat16"},
    "pipeline b128 fp32": {"kind": "project", "batch": 128},
    "pipeline b128 bf16": {"kind": "project", "batch": 128, "precision": "mixed_bfloat16"},
    "pipeline b256 fp32": {"kind": "project", "batch": 256},
    "pipeline b256 bf16": {"kind": "project", "batch": 256, "precision": "mixed_bfloat16"},
    # float32 model, but oneDNN may compute float32 convolutions and matmuls in bfloat16 inside.
    "pipeline b32, oneDNN fpmath bf16": {"kind": "project", "batch": 32, "env": FPMATH_BF16},
    "pipeline b128, oneDNN fpmath bf16": {"kind": "project", "batch": 128, "env": FPMATH_BF16},
    "naive b128 fp32": {"kind": "naive", "batch": 128},
}


def keras_augmenter(config):
    """The report's augmentation as a Keras user writes it: three chained preprocessing layers."""
    import keras

    L = keras.layers
    fill = {"fill_mode": "constant", "fill_value": 0.0}
    return keras.Sequential(
        [
            L.RandomRotation(config.rotation_deg / 360.0, **fill),
            L.RandomTranslation(config.shift, config.shift, **fill),
            L.RandomZoom(config.zoom, **fill),
        ],
        name="keras_augment",
    )


def measure_train(spec: dict[str, Any]) -> dict[str, Any]:
    """One training-throughput measurement in this process; ``spec`` as in HEADLINE/ABLATION.

    Times ``spec['images']`` images after ``spec['warmup_images']`` of warm-up (tracing, oneDNN
    kernel selection, tf.data autotuning), from Keras batch-end callbacks.
    """
    _quiet()
    from .train import configure_threads

    configure_threads(spec.get("intra"), spec.get("inter"))
    import keras
    import numpy as np

    from .config import preset
    from .data import load_dataset
    from .model import build
    from .pipeline import augmenter, train_dataset

    batch = int(spec.get("batch", 32))
    precision = spec.get("precision", "float32")
    if precision == "auto":
        from .train import resolve_precision

        precision = resolve_precision(preset("fast", batch_size=batch))
    config = preset("paper", batch_size=batch, augment=spec.get("augment", True))
    # At least one untimed step (it traces the graph) and one timed step; tiny sizes are for tests.
    warm = max(1, int(spec.get("warmup_images", 1600)) // batch)
    steps = max(1, int(spec.get("images", 9600)) // batch)
    n = (warm + steps) * batch
    ds = load_dataset("fashion")
    reps = -(-n // len(ds.x_train))
    x = np.concatenate([ds.x_train] * reps)[:n]
    y = np.concatenate([ds.y_train] * reps)[:n]
    keras.utils.set_random_seed(0)

    times: dict[int, float] = {}

    class BatchClock(keras.callbacks.Callback):
        def on_train_batch_end(self, b, logs=None):
            times[b] = time.perf_counter()

    core = build("paper_cnn", dtype=precision)
    compile_kw = {
        "optimizer": keras.optimizers.Adam(1e-3),
        "loss": keras.losses.SparseCategoricalCrossentropy(),
        "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        "steps_per_execution": int(spec.get("spe", 1)),
    }
    if spec["kind"] == "naive":
        # The plain Keras way: random layers as the first layers of the model, arrays in. By
        # default Keras' own three layers (what a Keras user writes); 'aug': 'project' puts the
        # project's single RandomAffine there instead, to separate that lever from the pipeline.
        aug = None
        if config.augment:
            aug = augmenter(config, seed=config.seed) if spec.get("aug") == "project" else keras_augmenter(config)
        model = keras.Sequential([keras.Input((28, 28, 1)), *([aug] if aug else []), core])
        model.compile(**compile_kw)
        xf = (x.astype("float32") / 255.0)[..., None]
        model.fit(xf, y, batch_size=batch, epochs=1, shuffle=True, verbose=0, callbacks=[BatchClock()])
    else:
        model = core
        model.compile(**compile_kw)
        data = train_dataset(x, y, config, parallel=spec.get("parallel", True), prefetch=spec.get("prefetch", True))
        model.fit(data, epochs=1, verbose=0, callbacks=[BatchClock()])
    ks = sorted(k for k in times if k >= warm - 1)
    first, last = ks[0], ks[-1]
    rate = (last - first) * batch / (times[last] - times[first])
    flops = train_flops(core)
    return {
        **spec,
        "batch": batch,
        "precision": precision,
        "images_timed": (last - first) * batch,
        "images_per_s": round(rate, 1),
        "train_mflop_per_image": round(flops / 1e6, 1),
        "gflops": round(rate * flops / 1e9, 1),
    }


def bench_train(args: argparse.Namespace) -> dict[str, Any]:
    sizes = {"images": args.images, "warmup_images": args.warmup_images}
    rows: dict[str, dict[str, Any]] = {}
    variants = dict(HEADLINE)
    if args.ablation:
        variants.update(ABLATION)
    # Alternate baseline and project for each repeat so drifting machine load hits both alike.
    for r in range(args.repeats):
        for name, spec in variants.items():
            if r > 0 and name not in HEADLINE:
                continue
            res = _run_worker("train", {**spec, **sizes})
            rows.setdefault(name, {**res, "runs": []})["runs"].append(res["images_per_s"])
            _say(args, f"  {name:48s} {res['images_per_s']:8.1f} images/s  {res['gflops']:6.1f} GFLOP/s")
    for row in rows.values():
        row["images_per_s"] = round(statistics.median(row["runs"]), 1)
        row["gflops"] = round(row["images_per_s"] * row["train_mflop_per_image"] / 1e3, 1)
    base, proj, best = rows["baseline"], rows["project"], rows["best"]
    peak = cpu_peak_gflops()
    out = {
        "target": "train",
        "model": "paper_cnn ('same' padding)",
        "train_mflop_per_image": proj["train_mflop_per_image"],
        "forward_mflop_per_image": round(proj["train_mflop_per_image"] / 3, 1),
        "batch_size": 32,
        "baseline_images_per_s": base["images_per_s"],
        "project_images_per_s": proj["images_per_s"],
        "ratio": round(proj["images_per_s"] / base["images_per_s"], 2),
        "gflops": proj["gflops"],
        "baseline_gflops": base["gflops"],
        "best_setting": f"pipeline, batch 256, {best['precision']} (how the fast preset trains on this CPU)",
        "best_images_per_s": best["images_per_s"],
        "best_ratio": round(best["images_per_s"] / base["images_per_s"], 2),
        "best_gflops": best["gflops"],
        "cpu": peak,
        "fraction_of_fp32_peak": round(proj["gflops"] / peak["peak_fp32_gflops"], 3),
        "images_timed": base["images_timed"],
        "repeats": args.repeats,
        "rows": {
            k: {f: v.get(f) for f in ("images_per_s", "gflops", "runs", "batch", "precision")} for k, v in rows.items()
        },
    }
    return out


def _say(args: argparse.Namespace, msg: str) -> None:
    if not args.json:
        print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- fast


def worker_fast(spec: dict[str, Any]) -> None:
    """Train a preset (``fast`` unless ``spec['preset']``) and print one JSON line per epoch with the
    test accuracy, the time, and the seconds spent scoring so far (not training time).

    ``spec['budget_s']`` stops the run (best weights kept, as a Stop click does) once that many
    seconds of training have passed since ``spec['t0']``, the parent's start clock.
    """
    _quiet()
    from .data import load_dataset

    ds = load_dataset("fashion")
    import keras
    import numpy as np
    import tensorflow as tf

    from . import runs
    from .config import preset
    from .pipeline import to_float
    from .train import train

    overrides = {"epochs": spec.get("epochs"), "limit": spec.get("limit"), "seed": spec.get("seed")}
    config = preset(spec.get("preset", "fast"), **{**overrides, **spec.get("overrides", {})})
    x_test, y_test = ds.x_test, ds.y_test
    t0, budget = spec.get("t0", time.time()), spec.get("budget_s")
    scoring = [0.0]  # seconds spent on the per-epoch test scoring: excluded from time-to-accuracy
    run_dir: list[Path] = []

    class TestEachEpoch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if budget and time.time() - t0 - scoring[0] > budget and run_dir:
                runs.request_stop(run_dir[0])  # the trainer stops after this batch, keeping the best

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


def _run_preset_worker(args: argparse.Namespace, spec: dict[str, Any]) -> tuple[list[dict], dict, float]:
    """Run ``worker_fast`` in a fresh process; (epoch records, final record, wall seconds).

    Each epoch record's ``seconds`` is wall time since the process was started, less the time
    spent scoring the test set at earlier epoch ends (the clock a user's run would see).
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    t0 = time.time()  # the clock starts before Python, TensorFlow and the data are loaded
    spec = {**spec, "t0": t0}
    proc = subprocess.Popen(
        _worker_cmd("fast", spec), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT
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
        _say(
            args,
            f"  {spec.get('preset', 'fast')} epoch {rec['epoch']}: {rec['test_accuracy']:.2%} at {rec['seconds']:.1f} s",
        )
    err = proc.stderr.read() if proc.stderr else ""
    proc.wait()
    wall = round(time.time() - t0, 1)
    if proc.returncode != 0 or final is None:
        raise RuntimeError(f"training failed ({proc.returncode}): {err[-1500:]}")
    return epochs, final, wall


def bench_fast(args: argparse.Namespace) -> dict[str, Any]:
    spec = {"epochs": args.epochs, "limit": args.limit, "overrides": json.loads(args.overrides or "{}")}
    epochs, final, seconds_total = _run_preset_worker(args, spec)
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


# ---------------------------------------------------------------- tta (time to accuracy)


def paper_reference(quick: bool) -> dict[str, Any]:
    """Seconds of the faithful ``paper`` recipe's 20 epochs here, from timed steps on this machine.

    Times 100 training steps of the paper preset (batch 32, its augmentation; 20 with ``quick``)
    after warm-up, with ``estimate.measure_speed`` (not cached: this is a benchmark), and scales
    the speed to 20 epochs of 48,000 images (the 80% split) plus validation of 12,000 at about a
    third of a training step each: the denominator of every fraction in ``tta``.
    """
    from .config import preset
    from .estimate import measure_speed

    steps = 20 if quick else 100
    measured = measure_speed(preset("paper"), steps=steps, cache=False)
    ips = float(measured["images_per_s"])
    n_train, n_val = 48_000, 12_000
    epoch_s = n_train / ips + n_val / (3 * ips)  # validation: forward only, ~1/3 of a training step
    return {
        "timed_steps": measured["steps"],
        "train_images_per_s": round(ips, 1),
        "load_during_measurement": measured["load"],
        "epoch_s": round(epoch_s, 1),
        "twenty_epochs_s": round(20 * epoch_s, 1),
    }


def time_to_goals(epochs: list[dict[str, Any]], reference_s: float) -> dict[str, dict[str, Any] | None]:
    """For each goal in ``TTA_GOALS``: the first epoch record at or above it (seconds, epoch, and
    seconds as a fraction of ``reference_s``), or None if no epoch reached it."""
    reached: dict[str, dict[str, Any] | None] = {}
    for goal in TTA_GOALS:
        hit = next((e for e in epochs if e["test_accuracy"] >= goal), None)
        reached[f"{goal:.3f}".rstrip("0")] = (
            None
            if hit is None
            else {
                "seconds": hit["seconds"],
                "epoch": hit["epoch"],
                "fraction_of_paper_20_epochs": round(hit["seconds"] / reference_s, 4),
            }
        )
    return reached


def bench_tta(args: argparse.Namespace) -> dict[str, Any]:
    """Time to 90 ... 95% test accuracy for each preset, and as a fraction of the paper's 20 epochs."""
    from .train import machine_info

    _say(args, "paper reference: one epoch of the report's recipe on a slice ...")
    ref = paper_reference(args.quick)
    _say(args, f"  paper: {ref['train_images_per_s']:,.0f} images/s -> 20 epochs = {ref['twenty_epochs_s']:,.0f} s")
    presets = []
    for name in args.preset or ["fast", "best"]:
        for seed in args.seed or [None]:
            spec: dict[str, Any] = {"preset": name, "seed": seed, "budget_s": args.budget}
            # Time a variant of a preset, e.g. another architecture (was silently ignored before).
            spec["overrides"] = json.loads(args.overrides or "{}")
            if args.epochs:
                spec["epochs"] = args.epochs
            if args.quick:
                spec.update({"limit": 1000, "epochs": 1})
            epochs, final, wall = _run_preset_worker(args, spec)
            reached = time_to_goals(epochs, ref["twenty_epochs_s"])
            presets.append(
                {
                    "preset": name,
                    "seed": final["config"]["seed"],
                    "final_test_accuracy": final["test_accuracy"],  # with test-time flips if the preset has them
                    "epochs_completed": final.get("epochs_completed"),
                    "seconds_total": wall,
                    "fraction_total": round(wall / ref["twenty_epochs_s"], 4),
                    "reached": reached,
                    "epochs": epochs,
                    "precision_used": final["precision_used"],
                    "budget_s": args.budget,
                    "overrides": spec["overrides"],
                    "architecture": final["config"]["architecture"],
                }
            )
    return {
        "target": "tta",
        "quick": bool(args.quick),
        "cpu": f"{machine_info().get('cpu')} ({machine_info().get('isa')})",
        "paper_reference": ref,
        "presets": presets,
    }


# ---------------------------------------------------------------- predict / evaluate


def _load(spec: str | None):
    """(ModelRef, keras model) for --model, default the shipped paper model."""
    from .registry import load_model, resolve

    ref = resolve(spec)
    return ref, load_model(ref.path)


def _photo(image28):
    """A test image as a 'product photo': 8x larger, dark garment on a white background, RGB."""
    from PIL import Image

    img = Image.fromarray(255 - image28, "L").resize((224, 224), Image.Resampling.BILINEAR)
    return img.convert("RGB")


def phone_photo_jpeg(image28, width: int = 4000, height: int = 3000, seed: int = 0) -> bytes:
    """A synthetic 12 MP phone photo (JPEG bytes): a test garment, dark, on a textured wooden-ish floor.

    Made here (no network, no dev photos needed): a smooth brown background with grain stripes,
    uneven light and sensor noise, the garment upscaled into the middle third.
    """
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    small_h, small_w = height // 8, width // 8  # build at 1/8 and upscale: fast, and grain stays smooth
    yy, xx = np.mgrid[0:small_h, 0:small_w].astype(np.float32)
    grain = 0.5 + 0.5 * np.sin(yy / 3.0 + 2.0 * np.sin(xx / 40.0))
    light = 0.8 + 0.2 * xx / small_w
    bg = np.stack([150 + 40 * grain, 110 + 30 * grain, 70 + 20 * grain], axis=2) * light[..., None]
    side = int(min(small_h, small_w) * 0.7)
    g = np.asarray(Image.fromarray(image28, "L").resize((side, side), Image.Resampling.BICUBIC), np.float32) / 255
    y0, x0 = (small_h - side) // 2, (small_w - side) // 2
    patch = bg[y0 : y0 + side, x0 : x0 + side]
    bg[y0 : y0 + side, x0 : x0 + side] = patch * (1 - g[..., None]) + g[..., None] * np.array([40, 45, 60])
    bg += rng.normal(0, 4, bg.shape)
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8), "RGB").resize(
        (width, height), Image.Resampling.BILINEAR
    )
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def bench_predict(args: argparse.Namespace) -> dict[str, Any]:
    _quiet()
    import numpy as np

    from .data import load_dataset
    from .predict import Predictor
    from .preprocess import prepare_any
    from .registry import resolve

    ds = load_dataset("fashion")
    photos = [_photo(ds.x_test[i]) for i in range(20)]
    predictor = Predictor(resolve(args.model))
    model = predictor.model

    # The product-photo path (the dataset's steps, no segmentation) against model.predict, as before;
    # segmentation is timed on its own below (it costs far more than the model).
    def project(img):
        return predictor.predict_image(img, method="none").probs

    def naive(img):
        x = prepare_any(img, method="none").image.astype("float32").reshape(1, 28, 28, 1) / 255.0
        return model.predict(x, verbose=0)[0]

    def model_only(img):  # noqa: ARG001
        return predictor.probabilities(ds.x_test[:1])

    def timed(fn, calls):
        for i in range(10):  # warm-up: tracing and first-call allocation
            fn(photos[i % len(photos)])
        out = []
        for i in range(calls):
            t = time.perf_counter()
            fn(photos[i % len(photos)])
            out.append((time.perf_counter() - t) * 1e3)
        return out

    # Same answers both ways (the fast path must not change results).
    agree = all(int(np.argmax(project(p))) == int(np.argmax(naive(p))) for p in photos[:5])
    fast = timed(project, args.calls)
    slow = timed(naive, max(20, args.calls // 3))
    core = timed(model_only, args.calls)
    prep = timed(lambda img: prepare_any(img, method="none"), args.calls)
    segmented = timed(lambda img: predictor.predict_image(img), max(10, args.calls // 10))
    # A 12-megapixel phone photo, as uploaded: decode + every preprocessing step incl. segmentation.
    from .preprocess import load_image

    jpeg = phone_photo_jpeg(ds.x_test[0])
    phone = []
    for i in range(max(6, args.calls // 20) + 1):
        t = time.perf_counter()
        prepare_any(load_image(jpeg))
        if i:  # the first call warms up OpenCV
            phone.append((time.perf_counter() - t) * 1e3)
    p50, naive_p50 = _pct(fast, 50), _pct(slow, 50)
    return {
        "target": "predict",
        "model": str(predictor.ref.path),
        "input": "224x224 RGB photo (a test image, dark on white); 4000x3000 JPEG phone photo (synthetic)",
        "calls": args.calls,
        "p50_ms": round(p50, 2),
        "p95_ms": round(_pct(fast, 95), 2),
        "naive_p50_ms": round(naive_p50, 2),
        "naive_p95_ms": round(_pct(slow, 95), 2),
        "ratio": round(naive_p50 / p50, 1),
        "model_only_p50_ms": round(_pct(core, 50), 2),
        "preprocess_p50_ms": round(_pct(prep, 50), 2),
        "segmented_p50_ms": round(_pct(segmented, 50), 2),
        "phone_12mp_preprocess_p50_ms": round(_pct(phone, 50), 1),
        "phone_12mp_preprocess_p95_ms": round(_pct(phone, 95), 1),
        "phone_12mp_calls": len(phone),
        "same_answers": agree,
    }


def bench_evaluate(args: argparse.Namespace) -> dict[str, Any]:
    _quiet()
    import numpy as np

    from .data import load_dataset
    from .evaluate import predict_proba

    ds = load_dataset("fashion")
    ref, model = _load(args.model)
    x = ds.x_test[: args.limit] if args.limit else ds.x_test
    predict_proba(model, x[:2000])  # warm-up: tracing for the batch shapes
    rate, probs = _images_per_s(lambda: predict_proba(model, x), len(x))
    # The same forward pass traced once (Predictor's tf.function): what a compiled predict_proba gives.
    from .predict import Predictor

    pred = Predictor(ref)
    traced, _ = _images_per_s(lambda: [pred.probabilities(x[i : i + 1000]) for i in range(0, len(x), 1000)], len(x))
    xf = (x.astype("float32") / 255.0)[..., None]
    model.predict(xf[:256], verbose=0)
    t = time.perf_counter()
    naive_probs = model.predict(xf, verbose=0)  # Keras' default: batch 32
    naive = len(x) / (time.perf_counter() - t)
    bf16 = _evaluate_bf16(ref, model, x, ds.y_test[: len(x)], probs)
    return {
        **bf16,
        "target": "evaluate",
        "model": str(ref.path),
        "images": int(len(x)),
        "images_per_s": round(rate, 1),
        "naive_images_per_s": round(naive, 1),
        "ratio": round(rate / naive, 2),
        "traced_images_per_s": round(traced, 1),
        "forward_gflops": round(rate * forward_flops(model) / 1e9, 1),
        "test_accuracy": round(float(np.mean(probs.argmax(1) == ds.y_test[: len(x)])), 4),
        "same_predictions": bool(np.array_equal(probs.argmax(1), naive_probs.argmax(1))),
    }


def _evaluate_bf16(ref, model, x, y, probs_fp32) -> dict[str, Any]:
    """The lever the app does not use: the same weights in a bfloat16 copy of the network.

    Measured to show what 8,000 images/s would cost: speed, and how many of the test predictions
    change against float32. Only for plain architectures (a TTA wrapper is skipped).
    """
    import numpy as np

    from .evaluate import predict_proba
    from .model import BUILDERS, with_dtype

    config = ref.meta().get("config", {})
    arch = config.get("architecture")
    if arch not in BUILDERS or config.get("tta_flip"):
        return {"bf16_images_per_s": None, "bf16_note": f"skipped: not a plain {'/'.join(BUILDERS)} model"}
    twin = with_dtype(model, arch, "mixed_bfloat16")
    try:
        predict_proba(twin, x[:2000])  # warm-up
    except Exception as exc:  # an optional lever: oneDNN may have no bfloat16 kernels on this CPU
        return {"bf16_images_per_s": None, "bf16_note": f"skipped: bfloat16 does not run here ({type(exc).__name__})"}
    rate, p = _images_per_s(lambda: predict_proba(twin, x), len(x))
    return {
        "bf16_images_per_s": round(rate, 1),
        "bf16_changed_predictions": int(np.sum(p.argmax(1) != probs_fp32.argmax(1))),
        "bf16_test_accuracy": round(float(np.mean(p.argmax(1) == y)), 4),
    }


# ---------------------------------------------------------------- app


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
WAIT_DONE = "() => document.querySelector('[data-testid=\"stApp\"]') && !document.querySelector('[data-testid=\"stStatusWidget\"]')"


def bench_app(args: argparse.Namespace) -> dict[str, Any]:
    import urllib.request

    from playwright.sync_api import sync_playwright

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if args.runs_dir:
        env["FMNIST_RUNS_DIR"] = str(Path(args.runs_dir).resolve())
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    notes: list[str] = []
    out: dict[str, Any] = {"target": "app", "home_s": None, "first_prediction_s": None}
    with sync_playwright() as p:
        # The browser is started first: the clock measures the app, not Chromium's launch.
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(120_000)
        log = tempfile.TemporaryFile()
        t0 = time.time()
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            while True:
                try:
                    with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    if proc.poll() is not None or time.time() - t0 > 120:
                        raise RuntimeError("streamlit did not start") from None
                    time.sleep(0.05)
            out["server_up_s"] = round(time.time() - t0, 2)
            page.goto(url)
            page.get_by_text("Fashion-MNIST CNN Studio").first.wait_for()
            page.wait_for_function(WAIT_DONE)
            out["home_s"] = round(time.time() - t0, 2)
            if args.screenshot:
                page.screenshot(path=str(Path(args.screenshot).with_suffix(".home.png")), full_page=True)
            out.update(_first_prediction(page, url, t0, notes))
            if args.screenshot:
                page.screenshot(path=args.screenshot, full_page=True)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            browser.close()
    out["notes"] = notes
    return out


def _first_prediction(page, url: str, t0: float, notes: list[str]) -> dict[str, Any]:
    """Open the Predict page, choose "Test image", press its random-image button, wait for the probabilities."""
    import re

    page.goto(url + "/Predict")
    page.locator('[data-testid="stMain"] h1').first.wait_for()  # the page's title is drawn
    page.wait_for_function(WAIT_DONE)
    t_page = time.time()
    button = page.get_by_role("button", name=re.compile("random", re.I))
    source = page.locator("[data-testid='stRadio']").first.get_by_text("Test image", exact=True)
    try:
        source.wait_for(timeout=15_000)  # drawn a moment after the title
    except Exception:  # Playwright's TimeoutError: a page without that choice
        pass
    for _ in range(3 if source.count() else 0):  # a click can be lost while the page still settles
        source.click()
        try:
            button.first.wait_for(timeout=5_000)
            break
        except Exception:  # Playwright's TimeoutError: not there yet
            continue
    if button.count() == 0:
        notes.append("Predict page has no 'random test image' button yet: first prediction not measured")
        return {"predict_page_s": round(t_page - t0, 2)}
    button.first.click()
    # The prediction is drawn as a metric ("Prediction: <class>, NN.N% confident") in the main area;
    # a bare percentage would also match the sidebar's test accuracy.
    page.locator('[data-testid="stMain"] [data-testid="stMetric"]').first.wait_for(timeout=60_000)
    page.wait_for_function(WAIT_DONE)
    return {"predict_page_s": round(t_page - t0, 2), "first_prediction_s": round(time.time() - t0, 2)}


# ---------------------------------------------------------------- CLI


def _table(out: dict[str, Any]) -> str:
    t = out["target"]
    if t == "tta":
        ref = out["paper_reference"]
        lines = [
            f"time to accuracy on {out['cpu']}"
            + (" (quick: tiny runs, accuracy means nothing)" if out["quick"] else ""),
            f"  paper recipe, 20 epochs here: {ref['twenty_epochs_s']:,.0f} s "
            f"({ref['train_images_per_s']:,.0f} images/s over {ref['timed_steps']} timed steps of batch 32)",
        ]
        for p in out["presets"]:
            hits = ", ".join(
                f"{g}: {h['seconds']:.0f} s ({h['fraction_of_paper_20_epochs']:.3f}x)"
                for g, h in p["reached"].items()
                if h is not None
            )
            lines.append(
                f"  {p['preset']} seed {p['seed']}: final {p['final_test_accuracy']:.2%} after {p['seconds_total']:.0f} s "
                f"({p['fraction_total']:.3f}x); reached {hits or 'none of 90-95%'}"
            )
        return "\n".join(lines)
    if t == "train":
        lines = [
            f"paper CNN training, {out['train_mflop_per_image']} MFLOP per image (3 x forward), batch 32, float32",
            f"  naive Keras loop   {out['baseline_images_per_s']:9.1f} images/s  {out['baseline_gflops']:6.1f} GFLOP/s",
            f"  project pipeline   {out['project_images_per_s']:9.1f} images/s  {out['gflops']:6.1f} GFLOP/s"
            f"  x{out['ratio']:.2f}",
            f"  best ({out['best_setting']}): {out['best_images_per_s']:.1f} images/s, "
            f"{out['best_gflops']:.1f} GFLOP/s, x{out['best_ratio']:.2f}",
            f"  CPU peak estimate {out['cpu']['peak_fp32_gflops']} GFLOP/s fp32 "
            f"({out['cpu']['cores']} cores x {out['cpu']['ghz']} GHz x {out['cpu']['flop_per_cycle_fp32']} FLOP/cycle)",
        ]
        if len(out["rows"]) > 3:
            lines.append("  ablation:")
            lines += [
                f"    {k:48s} {v['images_per_s']:8.1f} images/s {v['gflops']:6.1f} GFLOP/s"
                for k, v in out["rows"].items()
            ]
        return "\n".join(lines)
    if t == "fast":
        s91 = f"{out['seconds_to_91']:.1f} s (epoch {out['epoch_reached']})" if out["seconds_to_91"] else "not reached"
        return (
            f"fast preset: {out['goal_accuracy']:.0%} test accuracy after {s91}; final test accuracy "
            f"{out['test_accuracy']:.2%}, {out['seconds_total']:.1f} s in all (data loading included)"
        )
    if t == "predict":
        return (
            f"one photo -> prediction: p50 {out['p50_ms']:.2f} ms, p95 {out['p95_ms']:.2f} ms "
            f"(preprocess {out['preprocess_p50_ms']:.2f} ms, model {out['model_only_p50_ms']:.2f} ms); "
            f"model.predict way p50 {out['naive_p50_ms']:.2f} ms: x{out['ratio']:.1f} (no segmentation); "
            f"with segmentation p50 {out['segmented_p50_ms']:.1f} ms; a 12 MP phone photo (JPEG, decode + "
            f"segmentation + steps) p50 {out['phone_12mp_preprocess_p50_ms']:.0f} ms"
        )
    if t == "evaluate":
        return (
            f"test set ({out['images']:,} images): {out['images_per_s']:,.0f} images/s; model.predict "
            f"{out['naive_images_per_s']:,.0f} images/s: x{out['ratio']:.2f}; traced forward "
            f"(Predictor) {out['traced_images_per_s']:,.0f} images/s"
            + (
                f"; not used: a bfloat16 copy {out['bf16_images_per_s']:,.0f} images/s, "
                f"{out['bf16_changed_predictions']} of {out['images']:,} predictions changed "
                f"(accuracy {out['bf16_test_accuracy']:.2%})"
                if out.get("bf16_images_per_s")
                else ""
            )
        )
    fp = out.get("first_prediction_s")
    return f"app: Home rendered after {out['home_s']} s; first prediction after {fp if fp is not None else '-'} s" + (
        "".join(f"\n  note: {n}" for n in out.get("notes", []))
    )


def cmd_bench(args: argparse.Namespace) -> int:
    """Run one benchmark target; print a table, or one JSON object on the last line with --json."""
    if args.worker:
        spec = json.loads(args.worker)
        if args.target == "train":
            print(json.dumps(measure_train(spec)), flush=True)
        elif args.target == "fast":
            worker_fast(spec)
        return 0
    run = {
        "train": bench_train,
        "fast": bench_fast,
        "predict": bench_predict,
        "evaluate": bench_evaluate,
        "app": bench_app,
        "tta": bench_tta,
    }[args.target]
    try:
        out = run(args)
    except Exception as exc:  # one line, never a traceback
        from .registry import ModelError

        hint = " (train one or pass --model PATH)" if isinstance(exc, ModelError) else ""
        msg = f"{type(exc).__name__}: {exc}{hint}"
        if args.json:
            print(json.dumps({"target": args.target, "error": msg}))
        print(f"error: {msg}", file=sys.stderr)
        return 1
    out["loaded_machine"] = _load_note()
    if args.json:
        print(json.dumps(out, default=str))
    else:
        print(_table(out))
    return 0


def _load_note() -> str | None:
    """Say so when another training run was active (its numbers would be lower than this machine gives)."""
    try:
        from . import runs

        busy = [r.run_id for r in runs.list_runs(runs.default_runs_root()) if r.status in ("running", "stopping")]
    except Exception:
        return None
    return f"training run(s) active during the benchmark: {', '.join(busy)}" if busy else None


def add_parser(sub) -> None:
    """Add ``bench`` to the CLI's subparsers (called by ``fmnist_core.__main__``)."""
    b = sub.add_parser("bench", help="measure speed against the naive Keras way (see docs/PERFORMANCE.md)")
    b.add_argument("target", choices=TARGETS)
    b.add_argument("--json", action="store_true", help="one JSON object on the last line")
    g = b.add_argument_group("train")
    g.add_argument("--images", type=int, default=9600, help="images timed per variant (default 9600 = 300 steps of 32)")
    g.add_argument("--warmup-images", type=int, default=1600, help="images run before timing starts")
    g.add_argument("--repeats", type=int, default=1, help="repeat naive/project/best, report the median")
    g.add_argument("--ablation", action="store_true", help="also measure every lever on its own")
    f = b.add_argument_group("fast")
    f.add_argument("--epochs", type=int, help="override the fast preset's epochs")
    f.add_argument("--limit", type=int, help="train on N images only (fast) / evaluate N test images (evaluate)")
    f.add_argument("--overrides", help="JSON of TrainConfig fields to change, e.g. '{\"batch_size\": 256}'")
    f.add_argument("--goal", type=float, default=0.91, help="test accuracy to reach (default 0.91)")
    m = b.add_argument_group("predict, evaluate, app")
    m.add_argument("--model", help="shipped name, run id or .keras path (default: the shipped paper model)")
    m.add_argument("--calls", type=int, default=300, help="timed single-image predictions")
    m.add_argument("--runs-dir", help="runs folder the app should use (app)")
    m.add_argument("--screenshot", help="save the final page as PNG (app)")
    t = b.add_argument_group("tta")
    t.add_argument("--preset", action="append", help="preset to time (repeatable; default: fast and best)")
    t.add_argument("--seed", action="append", type=int, help="seed (repeatable: one run per seed and preset)")
    t.add_argument("--budget", type=float, help="stop each run after this many seconds of training (best kept)")
    t.add_argument(
        "--quick", action="store_true", help="tiny runs (1,000 images, 1 epoch): checks the tool, not accuracy"
    )
    b.add_argument("--worker", help=argparse.SUPPRESS)
    b.set_defaults(func=cmd_bench)
    _bench_teach.register(sub, "bench-teach")
