"""``sweep``: queue one run per combination of a grid of settings."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import runs
from ..config import preset
from ..sweep import parse_grid, queue_sweep
from .common import EXIT_USAGE, add_json_flag, add_preset_flags, add_root_flags, emit, one_line, use_ray


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``sweep`` to the CLI's subparsers."""
    p = sub.add_parser("sweep", help="queue one run per combination of a grid of settings")
    add_preset_flags(p, "fast")
    p.add_argument("--grid", action="append", required=True, metavar="NAME=V1,V2", help="e.g. learning_rate=1e-3,3e-3")
    p.add_argument("--owner", help="display name recorded as the runs' owner")
    add_root_flags(p, "run the sweep on this Ray cluster (as FMNIST_RAY_ADDRESS)")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Queue one run per combination of the grid; print the sweep's id and runs."""
    use_ray(args)
    root = Path(args.root) if args.root else runs.default_runs_root()
    try:
        base = preset(args.preset, epochs=args.epochs, limit=args.limit, seed=args.seed)
        grid = parse_grid(args.grid)
        sweep_id, dirs = queue_sweep(base, grid, root, owner=args.owner or "")
    except (ValueError, runs.RunError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        emit({"sweep": sweep_id, "runs": [d.name for d in dirs], "grid": grid})
    else:
        print(f"sweep {sweep_id}: queued {len(dirs)} runs in {root}")
        for d in dirs:
            print(f"  {d.name}")
    return 0
