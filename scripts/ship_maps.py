"""Compute the Inside page's test-set map positions of shipped models and ship them beside each.

    python -m scripts.ship_maps                                  # every models/*.keras
    python -m scripts.ship_maps models/fashion_cnn_fast.keras    # one model

Writes ``models/NAME.map.npz`` (t-SNE positions of the 10,000 test images, keyed by the model
file's SHA-256; about 75 KB). The page and ``inside`` then run only the model's pass over the test
images on a first open, not the minute of t-SNE. Run it again whenever a shipped model changes:
positions of another file are ignored (the map is computed as before).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path, help="default: every models/*.keras")
    args = ap.parse_args()
    from fmnist_core.machine import import_tensorflow_quietly

    import_tensorflow_quietly()
    from fmnist_core import inside
    from fmnist_core.data import load_dataset
    from fmnist_core.registry import input_scale, load_model, resolve

    ds = load_dataset("fashion")
    for path in args.models or sorted((ROOT / "models").glob("*.keras")):
        ref = resolve(str(path))
        t0 = time.perf_counter()
        # Never from the cache or an older shipped file: these positions are what ships.
        tm = inside.compute_map(load_model(ref.path), ds.x_test, scale=input_scale(ref.meta()))
        out = inside.save_shipped_xy(tm, ref.path)
        print(f"{out}: {len(tm.xy):,} positions ({tm.method}) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
