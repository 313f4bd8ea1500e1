"""``bench evaluate``: test-set images/s with ``evaluate.predict_proba`` vs ``model.predict``."""

from __future__ import annotations

import argparse
import time
from typing import Any

from .common import add_json_flag, add_model_flag, forward_flops, images_per_s, load_model_ref, quiet_tensorflow, report


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Test-set images/s with ``evaluate.predict_proba`` against ``model.predict``."""
    quiet_tensorflow()
    import numpy as np

    from ..data import load_dataset
    from ..evaluate import predict_proba

    ds = load_dataset("fashion")
    ref, model = load_model_ref(args.model)
    x = ds.x_test[: args.limit] if args.limit else ds.x_test
    predict_proba(model, x[:2000])  # warm-up: tracing for the batch shapes
    rate, probs = images_per_s(lambda: predict_proba(model, x), len(x))
    # The same forward pass traced once (Predictor's tf.function): what a compiled predict_proba gives.
    from ..predict import Predictor

    pred = Predictor(ref)
    traced, _ = images_per_s(lambda: [pred.probabilities(x[i : i + 1000]) for i in range(0, len(x), 1000)], len(x))
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

    from ..evaluate import predict_proba
    from ..model import BUILDERS, with_dtype

    config = ref.meta().get("config", {})
    arch = config.get("architecture")
    if arch not in BUILDERS or config.get("tta_flip"):
        return {"bf16_images_per_s": None, "bf16_note": f"skipped: not a plain {'/'.join(BUILDERS)} model"}
    twin = with_dtype(model, arch, "mixed_bfloat16")
    try:
        predict_proba(twin, x[:2000])  # warm-up
    except Exception as exc:  # an optional lever: oneDNN may have no bfloat16 kernels on this CPU
        return {"bf16_images_per_s": None, "bf16_note": f"skipped: bfloat16 does not run here ({type(exc).__name__})"}
    rate, p = images_per_s(lambda: predict_proba(twin, x), len(x))
    return {
        "bf16_images_per_s": round(rate, 1),
        "bf16_changed_predictions": int(np.sum(p.argmax(1) != probs_fp32.argmax(1))),
        "bf16_test_accuracy": round(float(np.mean(p.argmax(1) == y)), 4),
    }


def table(out: dict[str, Any]) -> str:
    """The human-readable summary of ``out``."""
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


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bench evaluate`` to the bench command's subparsers."""
    p = sub.add_parser("evaluate", help="test-set images/s: predict_proba vs model.predict")
    add_json_flag(p)
    add_model_flag(p)
    p.add_argument("--limit", type=int, help="evaluate N test images only")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its report."""
    return report(args, measure, table)
