"""Re-evaluate shipped models with plain Keras, independently of fmnist_core.

Reads the 10,000 Fashion-MNIST test images straight from the IDX files, loads each ``.keras``
file with ``keras.models.load_model`` and compares its test accuracy with the one its JSON
claims. Nothing from this project is imported, so a bug in ``fmnist_core`` cannot hide here.

    python scripts/check_models.py                      # every models/*.keras
    python scripts/check_models.py models/fashion_cnn_best.keras --data DIR --json

Exit status 1 if any model differs from its JSON by more than ``--tolerance`` points.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA_DIRS = [
    os.environ.get("FMNIST_DATA_DIR", ""),
    str(ROOT / "data"),
    str(Path.home() / ".keras" / "datasets" / "fashion-mnist"),
    "/usr/share/datasets/fashion-mnist",
]


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip or plain) as a uint8 array of its declared shape."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(name: str, folder: str | None) -> Path:
    for d in [folder] if folder else [d for d in DATA_DIRS if d]:
        for cand in (Path(d) / f"{name}.gz", Path(d) / name):
            if cand.is_file():
                return cand
    sys.exit(f"error: {name}(.gz) not found in {folder or DATA_DIRS}; pass --data DIR")


def check(paths: list[Path], folder: str | None, tolerance: float) -> list[dict]:
    """One row per model: independent accuracy, JSON accuracy, difference in points, ok."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    x = read_idx(find("t10k-images-idx3-ubyte", folder)).astype("float32")[..., None] / 255.0
    y = read_idx(find("t10k-labels-idx1-ubyte", folder))
    rows = []
    for path in paths:
        model = keras.models.load_model(path, compile=False)  # inference only: no optimizer state needed
        acc = float((model.predict(x, batch_size=500, verbose=0).argmax(1) == y).mean())
        claimed = json.loads(path.with_suffix(".json").read_text())["test_accuracy"]
        diff = 100 * (acc - claimed)
        rows.append(
            {
                "model": path.name,
                "independent_accuracy": acc,
                "json_accuracy": claimed,
                "difference_points": round(diff, 3),
                "ok": abs(diff) <= tolerance,
            }
        )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path, help="default: every models/*.keras")
    ap.add_argument("--data", help="folder with the Fashion-MNIST test IDX files")
    ap.add_argument("--tolerance", type=float, default=0.2, help="allowed difference, points (default 0.2)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    paths = args.models or sorted((ROOT / "models").glob("*.keras"))
    rows = check(paths, args.data, args.tolerance)
    if args.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            print(
                f"{r['model']:28s} plain Keras {r['independent_accuracy']:.2%}  JSON {r['json_accuracy']:.2%}  "
                f"difference {r['difference_points']:+.3f} points  {'ok' if r['ok'] else 'MISMATCH'}"
            )
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
