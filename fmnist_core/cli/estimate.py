"""``estimate``: the run time of a preset on this machine (measured here once, cached)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..estimate import estimate, format_duration, speed_key, will_measure
from .common import EXIT_USAGE, add_config_flags, add_json_flag, config_from_args, emit


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``estimate`` to the CLI's subparsers."""
    p = sub.add_parser("estimate", help="run time of a preset on this machine (measured here once, cached)")
    add_config_flags(p, "a config.json")
    p.add_argument("--runs-dir", help="runs folder whose finished runs count as measurements (default ./runs)")
    p.add_argument("--remeasure", action="store_true", help="measure again even if a cached figure exists")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """How long a run of the config takes on this machine (measures a few training steps once, cached)."""
    try:
        config = config_from_args(args)
    except (ValueError, OSError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    remeasure = getattr(args, "remeasure", False)
    root = Path(args.runs_dir) if getattr(args, "runs_dir", None) else None
    if not args.json and will_measure(config, root, remeasure):
        print(f"measuring a few training steps here: {speed_key(config)} ...", file=sys.stderr)
    est = estimate(config, runs_root=root, remeasure=remeasure)
    out = {
        "preset": config.preset,
        "seconds": round(est.seconds, 1),
        "images_per_s": round(est.images_per_s, 1),
        "measured_here": est.measured,
        "source": est.source,
        "n_train": est.n_train,
        "n_val": est.n_val,
        "epochs": config.epochs,
        "steps_per_epoch": est.steps_per_epoch,
        "key": speed_key(config),
    }
    if args.json:
        emit(out)
    else:
        upto = "up to " if config.patience else ""
        print(
            f"{config.preset}: {upto}about {format_duration(est.seconds)} on this machine "
            f"({est.n_train:,} training + {est.n_val:,} validation images x {config.epochs} epochs)\n"
            f"speed: {est.source}"
        )
    return 0
