"""Probes behind docs/PHOTOS.md: what happens if the prepared 28x28 photo inputs are changed at test time.

Reuses the 28x28 inputs that ``scripts/photo_ablation.py`` cached for one segmentation method, so
every probe costs only model calls (seconds for all of clothing-dev)::

    python -m scripts.photo_ablation /work/shared/photos/clothing-dev --methods grabcut --models fashion_cnn_photo
    python -m scripts.photo_probe /work/shared/photos/clothing-dev --model fashion_cnn_photo [--cache /tmp/photo-ablation]

Prints strict / lenient accuracy on the in-scope photos (no reject rule) and per folder for:
gamma, blur, flattening the texture inside the garment, narrowing the garment (and averaging
over narrowings: a test-time augmentation), and turning the item a quarter turn for shoes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from fmnist_core import preprocess
from fmnist_core.photos import PhotoResult, labelled_photos, summarise

SHOES = (5, 7, 9)


def summary(folders: np.ndarray, probs: np.ndarray, rejected: np.ndarray | None = None) -> dict:
    """``photos.summarise`` (what ``python -m fmnist_core photos`` reports) of these answers."""
    from fmnist_core.classes import class_names

    no = np.zeros(len(probs), bool) if rejected is None else rejected
    results = [
        PhotoResult(Path(), str(f), int(p.argmax()), float(p.max()), bool(r), None, 0.0)
        for f, p, r in zip(folders, probs, no, strict=True)
    ]
    return summarise(results, class_names("fashion"))


def score(folders: np.ndarray, probs: np.ndarray) -> str:
    """Strict and lenient accuracy over in-scope photos (no rejections), and strict accuracy per folder."""
    s = summary(folders, probs)
    per = " ".join(f"{k} {v['strict_accuracy']:.0%}" for k, v in sorted(s["per_folder"].items()) if v["in_scope"])
    return f"strict {s['strict_accuracy']:.1%} lenient {s['lenient_accuracy']:.1%} | {per}"


def each(images: np.ndarray, op: Callable[[Image.Image], Image.Image]) -> np.ndarray:
    """Apply a PIL operation to every 28x28 image."""
    return np.stack([np.asarray(op(Image.fromarray(x)), np.uint8) for x in images])


def narrow(factor: float) -> Callable[[Image.Image], Image.Image]:
    """Squeeze the image to ``factor`` of its width, centred (Fashion-MNIST's tops are 28 tall, 21 wide)."""

    def op(img: Image.Image) -> Image.Image:
        return preprocess.narrow(img, (0, 0, 28, 28), factor)[0]  # the pipeline's flat-lay step

    return op


def refit(a: np.ndarray) -> np.ndarray:
    """Trim to the garment and fit its longest edge to 28 again, centred (as the pipeline does)."""
    m = a > 32
    if not m.any():
        return a
    ys, xs = np.where(m.any(1))[0], np.where(m.any(0))[0]
    crop = Image.fromarray(np.ascontiguousarray(a[ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1]))
    k = 28 / max(crop.size)
    crop = crop.resize((max(1, round(crop.size[0] * k)), max(1, round(crop.size[1] * k))), Image.Resampling.BILINEAR)
    out = Image.new("L", (28, 28), 0)
    out.paste(crop, ((28 - crop.size[0]) // 2, (28 - crop.size[1]) // 2))
    return np.asarray(out)


def extent(images: np.ndarray) -> tuple[float, float, float]:
    """Mean garment height and width (px, pixels > 32) and mean share of the 28x28 the garment covers."""
    on = images > 32
    return float(on.any(2).sum(1).mean()), float(on.any(1).sum(1).mean()), float(on.mean())


def print_extents(folders: np.ndarray, x: np.ndarray) -> None:
    """Garment size in the prepared photos per folder, and in the Fashion-MNIST test set per class."""
    from fmnist_core.classes import class_names
    from fmnist_core.data import load_dataset

    for f in sorted(set(folders)):
        h, w, cover = extent(x[folders == f])
        print(f"photos {f:<12} height {h:4.1f} width {w:4.1f} covers {cover:.0%}")
    ds = load_dataset("fashion")
    for c, name in enumerate(class_names("fashion")):
        h, w, cover = extent(ds.x_test[ds.y_test == c])
        print(f"dataset {name:<11} height {h:4.1f} width {w:4.1f} covers {cover:.0%}")


def print_reject_tradeoff(folders: np.ndarray, base: np.ndarray, predictor) -> None:
    """The reject rule's thresholds against out-of-scope, in-scope and real (rendered) bags."""
    from fmnist_core.data import load_dataset
    from fmnist_core.preprocess import prepare_photo
    from scripts.photo_like import render_photo

    ds = load_dataset("fashion")
    rng = np.random.default_rng(0)
    bags = np.stack([prepare_photo(render_photo(x, rng)).image for x in ds.x_test[ds.y_test == 8][:300]])
    bag_probs = predictor.probabilities(bags)

    def rejected(p: np.ndarray, low: float, bag: float) -> np.ndarray:
        return (p.max(1) < low) | ((p.argmax(1) == 8) & (p.max(1) < bag))

    for low in (0.25, 0.3):
        for bag in (0.85, 0.9, 0.95):
            s = summary(folders, base, rejected(base, low, bag))
            print(
                f"reject < {low} or Bag < {bag}: out of scope {s['reject_rate_out_of_scope']:.1%}, "
                f"in scope {s['reject_rate_in_scope']:.1%}, strict {s['strict_accuracy']:.1%}, "
                f"rendered bags {rejected(bag_probs, low, bag).mean():.1%}"
            )


def cache_arguments(description: str) -> argparse.ArgumentParser:
    """A parser with the arguments of every script that works on the cached inputs: the photos'
    root, the model, the segmentation method and the cache folder of ``photo_ablation.py``."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("root", type=Path)
    ap.add_argument("--model", default="fashion_cnn_photo")
    ap.add_argument("--method", default="grabcut")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/photo-ablation"))
    return ap


def load_cached(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray] | None:
    """Each photo's folder and its cached 28x28 input, in ``labelled_photos`` order; None, after
    saying how to make the cache, if ``photo_ablation.py`` has not cached this method yet."""
    photos, _ = labelled_photos(args.root)
    cached = args.cache / f"{args.method}-{len(photos)}.npz"
    if not cached.is_file():
        print(f"{cached} is missing: run scripts/photo_ablation.py with --methods {args.method} first", file=sys.stderr)
        return None
    return np.array([f for _, f in photos]), np.load(cached)["images"]


def main() -> int:
    ap = cache_arguments(__doc__.splitlines()[0])
    ap.add_argument("--extent", action="store_true", help="also print garment height and width per folder / class")
    ap.add_argument("--reject", action="store_true", help="also print the reject rule's trade-off")
    ap.add_argument("--ensemble", nargs="*", default=[], help="models whose probabilities are added, one by one")
    args = ap.parse_args()

    from fmnist_core.predict import Predictor

    loaded = load_cached(args)
    if loaded is None:
        return 2
    folders, x = loaded
    if args.extent:
        print_extents(folders, x)
    predictor = Predictor.from_spec(args.model)

    def probs(images: np.ndarray) -> np.ndarray:
        return predictor.probabilities(images)

    base = probs(x)
    print(f"{args.model}, {len(folders)} photos, {args.method}")
    print(f"as prepared             {score(folders, base)}")
    xf = x.astype(np.float32) / 255
    for g in (0.6, 1.6):
        print(f"gamma {g:<17} {score(folders, probs((xf**g * 255).round().astype(np.uint8)))}")
    for r in (0.5, 1.2):
        print(f"blur {r:<18} {score(folders, probs(each(x, lambda i, r=r: i.filter(ImageFilter.GaussianBlur(r)))))}")
    fg = x > 32
    mean = np.array([v[m].mean() if m.any() else 0.0 for v, m in zip(x.astype(np.float32), fg, strict=True)])
    for a in (0.5, 0.25):
        flat = np.where(fg, mean[:, None, None] + a * (x - mean[:, None, None]), x).clip(0, 255).astype(np.uint8)
        print(f"texture x{a:<14} {score(folders, probs(flat))}")
    narrowed = {f: probs(each(x, narrow(f))) for f in (0.9, 0.8)}
    for f, p in narrowed.items():
        print(f"narrow to {f:<13} {score(folders, p)}")
    print(f"mean of 1, 0.9, 0.8     {score(folders, base + narrowed[0.9] + narrowed[0.8])}")
    # Shoes from above point up; the dataset's point sideways. Take a quarter turn's answer when
    # the upright one is unsure (< 0.5) and the turned one is a shoe with >= 0.5.
    turned = base.copy()
    for k in (1, -1):
        q = probs(np.stack([refit(np.rot90(v, k)) for v in x]))
        swap = (base.max(1) < 0.5) & np.isin(q.argmax(1), SHOES) & (q.max(1) >= 0.5) & ~np.isin(base.argmax(1), SHOES)
        turned[swap] = q[swap]
    print(f"quarter turn for shoes  {score(folders, turned)}")
    # A pair split in two: the left half of every shoe photo's input, upright and turned clockwise.
    shoes = x[folders == "shoes"]
    for name, images in (
        ("as prepared", shoes),
        ("left half", np.stack([refit(v[:, :14]) for v in shoes])),
        ("left half, turned", np.stack([refit(np.rot90(v[:, :14], -1)) for v in shoes])),
    ):
        called = np.isin(probs(images).argmax(1), SHOES).mean()
        print(f"shoes, {name:<17} called a shoe {called:.1%} ({len(shoes)} photos)")
    total, names = base.copy(), [args.model]
    for other in args.ensemble:
        total += Predictor.from_spec(other).probabilities(x)
        names.append(other)
        print(f"mean of {' + '.join(names)}: {score(folders, total)}")
    if args.reject:
        print_reject_tradeoff(folders, base, predictor)
    return 0


if __name__ == "__main__":
    sys.exit(main())
