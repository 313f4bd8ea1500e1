"""Measure a model on a folder tree of labelled real photos, as a user would meet them.

The folder name is the label. The names of the public "clothing dataset (small)" map to the
ten classes as in ``shared/photos/README.md``: a *strict* answer is the class itself, a *lenient*
one also a near class (Shirt for a T-shirt). Hats, skirts and shorts have no class: the right
answer there is "none of the ten" (a rejection). A folder named like a class (``Trouser``,
``sneaker``, ``T-shirt_top``) counts for that class, so a teacher can point it at their own photos.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .classes import class_names

if TYPE_CHECKING:
    from .predict import Predictor

# folder -> (strict classes, also acceptable classes); indices of Fashion-MNIST classes.
FOLDER_CLASSES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "t-shirt": ((0,), (6,)),
    "pants": ((1,), ()),
    "longsleeve": ((2,), (6, 4)),
    "dress": ((3,), ()),
    "outwear": ((4,), (2, 6)),
    "shoes": ((5, 7, 9), ()),
    "shirt": ((6,), (0, 2)),
}
OUT_OF_SCOPE = ("hat", "skirt", "shorts")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def folder_classes(folder: str) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """(strict, lenient-extra) class indices for a folder name; () for out of scope; None if unknown."""
    if folder.lower() in FOLDER_CLASSES:
        return FOLDER_CLASSES[folder.lower()]
    if folder.lower() in OUT_OF_SCOPE:
        return ((), ())
    by_name = {_key(n): i for i, n in enumerate(class_names("fashion"))}
    if _key(folder) in by_name:
        return ((by_name[_key(folder)],), ())
    return None


def labelled_photos(root: Path) -> tuple[list[tuple[Path, str]], list[str]]:
    """Every image under ``root/FOLDER/`` with its folder name (sorted), and folders that were skipped."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    found, skipped = [], []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder_classes(d.name) is None:
            skipped.append(d.name)
            continue
        for f in sorted(d.rglob("*")):
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES:
                found.append((f, d.name))
    return found, skipped


@dataclass
class PhotoResult:
    """One photo's answer: the predicted class, whether it was rejected, and timings."""

    path: Path
    folder: str
    index: int  # predicted class (argmax), -1 if the photo could not be read
    probability: float
    rejected: bool
    reason: str | None
    seconds: float  # load + preprocess + model
    items: int = 1
    error: str | None = None


def summarise(results: list[PhotoResult], names: tuple[str, ...]) -> dict[str, Any]:
    """Strict and lenient accuracy, per folder, the confusion table and the reject rates.

    A rejected in-scope photo counts as wrong (the user got no class); accuracy among the
    accepted ones is given too.
    """
    per: dict[str, dict[str, Any]] = {}
    confusion: dict[str, dict[str, int]] = {}
    columns = [*names, "rejected"]
    for r in results:
        c = confusion.setdefault(r.folder, dict.fromkeys(columns, 0))
        if r.error:
            c.setdefault("unreadable", 0)
            c["unreadable"] += 1
        else:
            c["rejected" if r.rejected else names[r.index]] += 1
        strict, extra = folder_classes(r.folder) or ((), ())
        p = per.setdefault(r.folder, {"photos": 0, "strict": 0, "lenient": 0, "rejected": 0, "in_scope": bool(strict)})
        p["photos"] += 1
        p["rejected"] += int(r.rejected)
        ok = not r.rejected and not r.error
        p["strict"] += int(ok and r.index in strict)
        p["lenient"] += int(ok and (r.index in strict or r.index in extra))
    ins = [r for r in results if (folder_classes(r.folder) or ((), ()))[0]]
    outs = [r for r in results if not (folder_classes(r.folder) or ((), ()))[0]]
    n_in = len(ins)
    strict_n = sum(p["strict"] for p in per.values() if p["in_scope"])
    lenient_n = sum(p["lenient"] for p in per.values() if p["in_scope"])
    accepted_in = [r for r in ins if not r.rejected and not r.error]
    secs = np.array([r.seconds for r in results]) if results else np.zeros(1)
    for p in per.values():
        n = max(p["photos"], 1)
        p.update(strict_accuracy=p["strict"] / n, lenient_accuracy=p["lenient"] / n, reject_rate=p["rejected"] / n)
    return {
        "photos": len(results),
        "in_scope": n_in,
        "out_of_scope": len(outs),
        "strict_accuracy": strict_n / n_in if n_in else None,
        "lenient_accuracy": lenient_n / n_in if n_in else None,
        "strict_accuracy_accepted": (
            sum(r.index in (folder_classes(r.folder) or ((), ()))[0] for r in accepted_in) / len(accepted_in)
            if accepted_in
            else None
        ),
        "reject_rate_in_scope": sum(r.rejected for r in ins) / n_in if n_in else None,
        "reject_rate_out_of_scope": sum(r.rejected for r in outs) / len(outs) if outs else None,
        "unreadable": sum(1 for r in results if r.error),
        "seconds_per_photo": {"p50": float(np.median(secs)), "mean": float(secs.mean())},
        "per_folder": per,
        "confusion": confusion,
        "columns": columns,
    }


def evaluate_photos(
    root: Path,
    model: str | Predictor | None = None,
    method: str | None = None,
    reject: bool = True,
    progress: Callable[[int, int, PhotoResult], None] | None = None,
    head: str | None = "auto",
) -> dict[str, Any]:
    """Run every photo under ``root`` through the app's own path (load, segment, steps, model, reject rule).

    ``model``: a model spec or loaded Predictor (default: the model for photos); ``method``: the segmentation
    (default: ``segment.DEFAULT_METHOD``); ``reject``: apply the "none of the ten" rule; ``head``: the
    photo head for a model given by spec (``Predictor.use_head``: "auto" is the one shipped with it).
    """
    from .predict import Predictor  # noqa: F811 - the runtime import (TensorFlow) is lazy
    from .preprocess import ImageError, load_image
    from .registry import default_photo_model
    from .segment import DEFAULT_METHOD

    predictor = model if isinstance(model, Predictor) else Predictor.from_spec(model or default_photo_model(), head)
    photos, skipped = labelled_photos(root)
    results: list[PhotoResult] = []
    for i, (path, folder) in enumerate(photos):
        t0 = time.perf_counter()
        try:
            img = load_image(path)
            pred = predictor.predict_image(img, method=method or DEFAULT_METHOD)
            seg = pred.prepared.segmentation if pred.prepared else None
            rejected, reason = (pred.rejected, pred.reason) if reject else (False, None)
            res = PhotoResult(
                path, folder, pred.index, pred.probability, rejected, reason, 0.0, seg.n_items if seg else 1
            )
        except ImageError as exc:
            res = PhotoResult(path, folder, -1, 0.0, False, None, 0.0, error=str(exc))
        res.seconds = time.perf_counter() - t0
        results.append(res)
        if progress:
            progress(i + 1, len(photos), res)
    out = summarise(results, predictor.class_names)
    out.update(
        root=str(root),
        model=predictor.ref.key,
        head=predictor.head_name,
        method=method or DEFAULT_METHOD,
        reject_rule=reject,
        skipped_folders=skipped,
    )
    return out
