"""Calibration of the photo reject rule ("none of the ten") behind docs/PHOTOS.md, "Fourth round".

Reuses the 28x28 inputs that ``scripts/photo_ablation.py`` cached for one segmentation method, so
the whole grid costs two model passes::

    python -m scripts.photo_ablation /work/shared/photos/clothing-dev --methods grabcut --models fashion_cnn_photo
    python -m fmnist_core features fashion_cnn_photo      # once: models/fashion_cnn_photo.features.npz
    python -m scripts.reject_calibration /work/shared/photos/clothing-dev [--cache /tmp/photo-ablation]

Prints, for the shipped rule and a grid of (confidence floor, Bag threshold, distance factor):
out-of-scope and in-scope reject rates, strict and lenient accuracy, shoes, and the share of 300
photo-like renderings of real Fashion-MNIST bags that would be turned away. Then an honest check
of the choice: on random halves of the photos (stratified by folder), the point chosen on one
half (most out-of-scope rejected with in scope <= 15% and rendered bags <= 6%) is scored on the other.
"""

from __future__ import annotations

import sys

import numpy as np

from fmnist_core import predict as rule
from scripts.photo_probe import cache_arguments, load_cached, summary  # shared with the other probes

GRID = [(f, b, k) for f in (0.2, 0.25, 0.3) for b in (0.85, 0.9) for k in (0.9, 0.95, 1.0, 1.05, 1.1, 1.2, np.inf)]


def rejected(probs: np.ndarray, dist: np.ndarray, floor: float, bag: float, factor: float) -> np.ndarray:
    """``predict.reject_reason`` vectorised, with its three thresholds as arguments."""
    top, index = probs.max(1), probs.argmax(1)
    far = np.isin(index, rule.DISTANCE_CLASSES) & (dist > factor)
    return (top < floor) | ((index == rule.BAG) & (top < bag)) | far


def measure(folders: np.ndarray, probs: np.ndarray, rej: np.ndarray) -> dict:
    """The ``photos`` command's figures for these answers and rejections."""
    s = summary(folders, probs, rej)
    return {
        "out": s["reject_rate_out_of_scope"],
        "in": s["reject_rate_in_scope"],
        "strict": s["strict_accuracy"],
        "lenient": s["lenient_accuracy"],
        "shoes": s["per_folder"].get("shoes", {}).get("strict_accuracy", float("nan")),
    }


def line(m: dict) -> str:
    return (
        f"out of scope {m['out']:.1%}, in scope {m['in']:.1%}, strict {m['strict']:.1%}, "
        f"lenient {m['lenient']:.1%}, shoes {m['shoes']:.1%}"
    )


def main() -> int:
    ap = cache_arguments(__doc__.splitlines()[0])
    ap.add_argument("--splits", type=int, default=5, help="random halvings for the held-out check")
    args = ap.parse_args()

    from fmnist_core.data import load_dataset
    from fmnist_core.predict import Predictor
    from fmnist_core.preprocess import prepare_photo
    from scripts.photo_like import render_photo

    loaded = load_cached(args)
    if loaded is None:
        return 2
    folders, x = loaded
    predictor = Predictor.from_spec(args.model)
    if predictor.stats is None:
        print(
            f"{args.model} has no feature statistics: run python -m fmnist_core features {args.model}", file=sys.stderr
        )
        return 2
    probs = predictor.probabilities(x)
    dist = predictor.distances(x, probs.argmax(1))
    ds = load_dataset("fashion")
    rng = np.random.default_rng(0)
    bags = np.stack([prepare_photo(render_photo(v, rng)).image for v in ds.x_test[ds.y_test == rule.BAG][:300]])
    bag_probs = predictor.probabilities(bags)
    bag_dist = predictor.distances(bags, bag_probs.argmax(1))

    shipped = (rule.REJECT_CONFIDENCE, rule.REJECT_BAG_CONFIDENCE, rule.REJECT_DISTANCE_FACTOR)
    print(f"{args.model}, {len(folders)} photos, {args.method}")
    print(f"no rejections:            {line(measure(folders, probs, np.zeros(len(x), bool)))}")
    print(f"old rule (0.30, 0.85, -): {line(measure(folders, probs, rejected(probs, dist, 0.30, 0.85, np.inf)))}")
    m = measure(folders, probs, rejected(probs, dist, *shipped))
    print(f"shipped {shipped}: {line(m)}, rendered bags {rejected(bag_probs, bag_dist, *shipped).mean():.1%}")
    print("\nfloor  bag   factor | all photos")
    for g in GRID:
        m = measure(folders, probs, rejected(probs, dist, *g))
        print(
            f"{g[0]:.2f}  {g[1]:.2f}  {g[2]:6.2f} | {line(m)}, rendered bags {rejected(bag_probs, bag_dist, *g).mean():.1%}"
        )

    print("\nheld-out check: chosen on one half, scored on the other")
    split_rng = np.random.default_rng(1)
    for _ in range(args.splits):
        half = np.zeros(len(x), bool)
        for f in np.unique(folders):
            ix = np.flatnonzero(folders == f)
            split_rng.shuffle(ix)
            half[ix[: len(ix) // 2]] = True
        for a, b in ((half, ~half), (~half, half)):
            ok = []
            for g in GRID:
                m = measure(folders[a], probs[a], rejected(probs[a], dist[a], *g))
                if m["in"] <= 0.15 and rejected(bag_probs, bag_dist, *g).mean() <= 0.06:
                    ok.append((m["out"], g))
            _, g = max(ok)
            print(f"chose {g} -> other half: {line(measure(folders[b], probs[b], rejected(probs[b], dist[b], *g)))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
