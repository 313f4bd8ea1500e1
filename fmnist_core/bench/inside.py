"""``python -m fmnist_core bench inside [--model M] [--json]``: the Inside page's speed targets.

- layer views of a new input (every block's maps, the dense layer, the outputs, and the input's
  place on the map): target <= 300 ms after the input is ready;
- the test-set map's first open (model pass over the test images + t-SNE, into an empty cache
  folder) and a later open (read from that folder): targets <= 90 s and <= 3 s on the slow CPU kind.
  A shipped model ships its map's positions (``scripts/ship_maps.py``): its first open is then the
  model pass only (``map_positions`` says which); ``--map-images`` below 10,000 always computes.

Results and the CPU they were measured on: docs/INSIDE.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

from ..machine import cpu_isa, cpu_model, cpuinfo_field


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``bench inside`` subcommand."""
    p = sub.add_parser("inside", help="time the Inside page: layer views of a new input, the map's first/later open")
    p.add_argument("--model", help="shipped name, run id or .keras path (default: the paper model)")
    p.add_argument("--views", type=int, default=50, help="timed layer views (default 50)")
    p.add_argument("--map-images", type=int, default=10_000, help="test images on the map (default all 10,000)")
    p.add_argument("--json", action="store_true", help="one JSON object on the last line")
    p.set_defaults(func=run)


def cpu_summary() -> str:
    """'model name (family F model M), ISA, N cores': the CPU a figure was measured on."""
    return (
        f"{cpu_model()} (family {cpuinfo_field('cpu family') or '?'} model {cpuinfo_field('model') or '?'}), "
        f"{cpu_isa()}, {os.cpu_count()} cores"
    )


def run(args: argparse.Namespace) -> int:
    """Measure and print the table (or JSON)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from ..data import load_dataset
    from ..registry import load_model, resolve

    ref = resolve(args.model)
    ds = load_dataset("fashion")
    x = ds.x_test[: args.map_images]
    out: dict = {"model": ref.label, "cpu": cpu_summary(), "load_average": os.getloadavg()[0]}

    saved_cache = os.environ.get("FMNIST_CACHE_DIR")
    try:
        with tempfile.TemporaryDirectory(prefix="bench inside-") as cache:
            os.environ["FMNIST_CACHE_DIR"] = cache  # an empty cache: the first open computes everything
            _measure(ref, load_model, ds=ds, x=x, views=args.views, out=out)
    finally:
        if saved_cache is None:
            os.environ.pop("FMNIST_CACHE_DIR", None)
        else:
            os.environ["FMNIST_CACHE_DIR"] = saved_cache
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key:20s} {value}")
    return 0


def _measure(ref, load_model, ds, x, views: int, out: dict) -> None:
    """Fill ``out`` with the map's first/later open and the layer-view times (in the current cache folder)."""
    from .. import inside
    from ..evaluate import file_fingerprint

    phases: dict[str, float] = {}
    marks = [time.perf_counter()]

    def progress(fraction: float, _text: str) -> None:
        if fraction >= 0.4 and "forward_pass_s" not in phases:
            phases["forward_pass_s"] = time.perf_counter() - marks[0]
            marks[0] = time.perf_counter()

    t0 = time.perf_counter()
    model = load_model(ref.path)
    out["model_load_s"] = round(time.perf_counter() - t0, 2)
    marks[0] = time.perf_counter()
    tm = inside.load_or_compute_map(ref.path, x, lambda: model, progress=progress)
    out["map_first_open_s"] = round(time.perf_counter() - t0, 2)  # model load included
    out["map_forward_pass_s"] = round(phases.get("forward_pass_s", 0.0), 2)
    out["map_embed_s"] = round(time.perf_counter() - marks[0], 2)
    # Outside the timed open: which positions it used (reading them hashes the model file again).
    shipped = inside.load_shipped_xy(ref.path, len(x)) is not None
    out["map_positions"] = "shipped with the model" if shipped else f"computed ({inside.MAP_METHOD})"
    t1 = time.perf_counter()
    again = inside.load_or_compute_map(ref.path, x, lambda: None)
    out["map_later_open_s"] = round(time.perf_counter() - t1, 3)
    out["map_points"] = len(again.xy)
    out["map_file_mb"] = round(inside.map_path(file_fingerprint(ref.path)).stat().st_size / 2**20, 1)

    probe = inside.Inside(model)
    for i in range(3):  # warm-up: tracing and oneDNN kernel choice happen on the first calls
        tm.place(probe.view(ds.x_test[i]).features)
    times = []
    for i in range(views):
        image = ds.x_train[i]  # not a test image: a new input, as a drawing or photo would be
        t = time.perf_counter()
        tm.place(probe.view(image).features)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    out["view_ms_p50"] = round(statistics.median(times), 1)
    out["view_ms_p95"] = round(times[int(0.95 * (len(times) - 1))], 1)
    out["view_ms_max"] = round(times[-1], 1)
