"""The ablation behind docs/PHOTOS.md: each segmentation method x each model on a photo folder tree.

Prepares every photo once per segmentation method (cached in ``--cache``), then classifies the
cached 28x28 inputs with each model, so N methods x M models cost N preprocessing passes:

    python -m scripts.photo_ablation /work/shared/photos/clothing-dev --methods none grabcut border hybrid \
        --models fashion_cnn_paper fashion_cnn_best fashion_cnn_photo [--per-folder 60] [--json]

Prints strict / lenient accuracy (no reject rule), shoes, and the p50 preprocessing time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from fmnist_core.photos import PhotoResult, labelled_photos, summarise
from fmnist_core.preprocess import load_image, prepare_photo


def prepare_all(photos: list[tuple[Path, str]], method: str, cache: Path) -> dict[str, np.ndarray]:
    """28x28 inputs, items found, mask coverage and seconds per photo for one method (cached)."""
    f = cache / f"{method}-{len(photos)}.npz"
    if f.is_file():
        return dict(np.load(f))
    images, items, cover, secs = [], [], [], []
    for i, (path, _) in enumerate(photos):
        t0 = time.perf_counter()
        prep = prepare_photo(load_image(path), method=method)
        secs.append(time.perf_counter() - t0)
        images.append(prep.image)
        seg = prep.segmentation
        items.append(seg.n_items if seg else 1)
        cover.append(seg.coverage if seg else 1.0)
        if (i + 1) % 200 == 0:
            print(f"  {method}: {i + 1}/{len(photos)}", file=sys.stderr)
    out = {"images": np.stack(images), "items": np.array(items), "coverage": np.array(cover), "seconds": np.array(secs)}
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(f, **out)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--methods", nargs="+", default=["none", "grabcut", "border", "hybrid"])
    ap.add_argument("--models", nargs="+", default=["fashion_cnn_paper", "fashion_cnn_best"])
    ap.add_argument("--per-folder", type=int, default=0, help="use only the first N photos of each folder")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/photo-ablation"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from fmnist_core.predict import Predictor

    photos, _ = labelled_photos(args.root)
    if args.per_folder:
        kept: dict[str, int] = {}
        photos = [
            p for p in photos if kept.setdefault(p[1], 0) < args.per_folder and not kept.update({p[1]: kept[p[1]] + 1})
        ]
    prepared = {m: prepare_all(photos, m, args.cache) for m in args.methods}
    rows = []
    for name in args.models:
        predictor = Predictor.from_spec(name)
        for m, prep in prepared.items():
            probs = predictor.probabilities(prep["images"])
            np.save(args.cache / f"probs-{m}-{len(photos)}-{Path(name).stem}.npy", probs)  # for calibration
            res = [
                PhotoResult(p, folder, int(pr.argmax()), float(pr.max()), False, None, float(s))
                for (p, folder), pr, s in zip(photos, probs, prep["seconds"], strict=True)
            ]
            summ = summarise(res, predictor.class_names)
            rows.append(
                {
                    "model": name,
                    "method": m,
                    "strict": summ["strict_accuracy"],
                    "lenient": summ["lenient_accuracy"],
                    "shoes": summ["per_folder"].get("shoes", {}).get("strict_accuracy"),
                    "p50_ms": 1000 * float(np.median(prep["seconds"])),
                    "photos": len(photos),
                }
            )
            r = rows[-1]
            print(
                f"{name:20s} {m:8s} strict {r['strict']:.1%} lenient {r['lenient']:.1%} "
                f"shoes {r['shoes'] or 0:.1%} p50 {r['p50_ms']:.0f} ms ({len(photos)} photos)",
                flush=True,
            )
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
