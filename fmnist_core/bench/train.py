"""``bench train``: images/s of the report's CNN, the project's pipeline against the naive Keras way.

Naive = augmentation layers inside the model and ``model.fit`` on float arrays (batch 32, float32).
Project = the tf.data pipeline of ``fmnist_core.pipeline`` (augmentation in a parallel map,
prefetch) exactly as ``train.py`` uses it. Each variant runs in its own fresh process (same data,
same model, same number of images); the headline compares the *same batch size* (32, the paper
preset); ``best`` adds what the project's fastest setting does (bigger batches in bfloat16, as the
``fast`` preset trains).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from ..machine import cpu_peak_gflops
from .common import add_json_flag, add_worker_flag, quiet_tensorflow, report, run_worker, say, train_flops

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
    quiet_tensorflow()
    from ..machine import configure_threads

    configure_threads(spec.get("intra"), spec.get("inter"))
    import keras
    import numpy as np

    from ..augment import augmenter
    from ..config import preset
    from ..data import load_dataset
    from ..model import build
    from ..pipeline import train_dataset

    batch = int(spec.get("batch", 32))
    precision = spec.get("precision", "float32")
    if precision == "auto":
        from ..machine import resolve_precision

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


def measure(args: argparse.Namespace) -> dict[str, Any]:
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
            res = run_worker("train", {**spec, **sizes})
            rows.setdefault(name, {**res, "runs": []})["runs"].append(res["images_per_s"])
            say(args, f"  {name:48s} {res['images_per_s']:8.1f} images/s  {res['gflops']:6.1f} GFLOP/s")
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


def table(out: dict[str, Any]) -> str:
    """The human-readable summary of ``out``."""
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
            f"    {k:48s} {v['images_per_s']:8.1f} images/s {v['gflops']:6.1f} GFLOP/s" for k, v in out["rows"].items()
        ]
    return "\n".join(lines)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bench train`` to the bench command's subparsers."""
    p = sub.add_parser("train", help="training images/s: project pipeline vs naive Keras loop")
    add_json_flag(p)
    p.add_argument("--images", type=int, default=9600, help="images timed per variant (default 9600 = 300 steps of 32)")
    p.add_argument("--warmup-images", type=int, default=1600, help="images run before timing starts")
    p.add_argument("--repeats", type=int, default=1, help="repeat naive/project/best, report the median")
    p.add_argument("--ablation", action="store_true", help="also measure every lever on its own")
    add_worker_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark (or, with ``--worker``, one measurement in this process)."""
    if args.worker:
        print(json.dumps(measure_train(json.loads(args.worker))), flush=True)
        return 0
    return report(args, measure, table)
