"""Choose the photo head of issue 22 by cross-validation inside clothing-dev (prepare step first)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fmnist_core.photos import labelled_photos  # noqa: E402
from fmnist_core.preprocess import ImageError, load_image, prepare_any  # noqa: E402


def prepare_all(root: Path, cache: Path) -> dict[str, np.ndarray]:
    """Every photo under ``root`` through the product's photo pipeline (``predict``'s
    ``prepare_any`` with its defaults), cached as one npz in ``cache`` so reruns are instant."""
    photos, _ = labelled_photos(root)
    f = cache / f"prepared-{len(photos)}.npz"
    if f.is_file():
        return dict(np.load(f))
    images, segmented, ok, secs = [], [], [], []
    t_start = time.perf_counter()
    for i, (path, _) in enumerate(photos):
        t0 = time.perf_counter()
        try:
            prep = prepare_any(load_image(path))
            images.append(prep.image)
            segmented.append(prep.segmentation is not None)
            ok.append(True)
        except ImageError:
            images.append(np.zeros((28, 28), np.uint8))
            segmented.append(False)
            ok.append(False)
        secs.append(time.perf_counter() - t0)
        if (i + 1) % 100 == 0 or i + 1 == len(photos):
            left = (time.perf_counter() - t_start) / (i + 1) * (len(photos) - i - 1)
            print(f"  prepared {i + 1}/{len(photos)} (p50 {np.median(secs) * 1000:.0f} ms, ~{left:.0f} s left)",
                  file=sys.stderr, flush=True)
    out = {
        "images": np.stack(images),
        "folders": np.array([folder for _, folder in photos]),
        "names": np.array([p.name for p, _ in photos]),
        "segmented": np.array(segmented),
        "ok": np.array(ok),
        "seconds": np.array(secs),
    }
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".{f.name}.tmp.npz"
    np.savez(tmp, **out)
    tmp.replace(f)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/photo-head-cv"))
    args = ap.parse_args()
    prepare_all(args.root, args.cache)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
