"""``features``: fit the feature-space statistics of a model's training images (photo reject rule)."""

from __future__ import annotations

import argparse
import sys
import time

from .common import EXIT_ERROR, add_json_flag, emit, progress


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``features`` to the CLI's subparsers."""
    p = sub.add_parser(
        "features", help="fit the feature-space statistics of a model's training images (photo reject rule)"
    )
    p.add_argument("model", nargs="?", help="shipped name, run id or .keras path (default: the photo model)")
    p.add_argument("--seed", type=int, default=3, help="seed of the augmentation pass (default 3)")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Fit and save the feature-space statistics the photo reject rule uses."""
    import numpy as np

    from .. import ood
    from ..data import DataError, load_dataset
    from ..registry import ModelError, default_photo_model, input_scale, load_model, resolve

    try:
        ref = resolve(args.model or default_photo_model())
        model = load_model(ref.path)
        ds = load_dataset(ref.meta().get("dataset", "fashion"))
    except (ModelError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if not ood.has_feature_layer(model):
        print(f"error: {ref.path} has no {ood.FEATURE_LAYER!r} layer to take statistics from", file=sys.stderr)
        return EXIT_ERROR
    t0 = time.time()
    if not args.json:
        print(f"{ref.label}: its {len(ds.x_train):,} training images, as augmented in training ...", flush=True)
    # The images as the model saw them in training (for the photo model: its photo augmentation).
    x, y = ood.training_view(ds.x_train, ds.y_train, ref.meta().get("config"), seed=args.seed)
    stats = ood.fit_model_stats(
        model,
        x,
        y,
        scale=input_scale(ref.meta()),
        progress=None if args.json else lambda i, n: progress(i, n, "features"),
    )
    out_path = ood.stats_path(ref.path)
    try:
        stats.save(out_path)
    except OSError as exc:
        print(f"error: cannot write {out_path}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    out = {
        "model": str(ref.path),
        "statistics": str(out_path),
        "limits": [round(float(v), 3) for v in stats.limits],
        "seconds": round(time.time() - t0, 1),
    }
    if args.json:
        emit(out)
    else:
        print(
            f"wrote {out_path} in {out['seconds']} s; 99th-percentile distance per class: {np.round(stats.limits, 1)}"
        )
    return 0
