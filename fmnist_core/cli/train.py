"""``train``: train a model into a run directory (what the app's trainer processes run)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .. import runqueue, runs
from ..data import DataError
from ..train import train
from . import estimate
from .common import EXIT_ERROR, EXIT_USAGE, add_config_flags, add_json_flag, config_from_args, emit


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train`` to the CLI's subparsers."""
    p = sub.add_parser("train", help="train a model into a run directory")
    add_config_flags(p, "a config.json to train (used by the app)")
    p.add_argument("--run-dir", help="output folder (default runs/<timestamp>-<preset>)")
    p.add_argument("--quiet", action="store_true")
    add_json_flag(p)
    p.add_argument("--estimate-only", action="store_true", help="print the run time on this machine, do not train")
    # estimate.run reads these when --estimate-only hands over to it
    p.set_defaults(func=run, runs_dir=None, remeasure=False)


def run(args: argparse.Namespace) -> int:
    """Train a config into a run folder (``--estimate-only``: say how long it would take)."""
    if args.estimate_only:
        return estimate.run(args)
    try:
        config = config_from_args(args)
    except (ValueError, OSError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    run_dir = Path(args.run_dir) if args.run_dir else runs.default_runs_root() / runs.new_run_id(config)
    if (run_dir / "run.json").exists() and not args.config:
        print(f"error: {run_dir} already holds a finished run; choose a new --run-dir", file=sys.stderr)
        return EXIT_USAGE
    verbose = 0 if (args.quiet or args.json) else (1 if sys.stdout.isatty() else 2)
    if not args.quiet and not args.json:
        print(f"training preset {config.preset!r} into {run_dir}", file=sys.stderr)
    try:
        result = train(config, run_dir, verbose=verbose, install_signals=True)
    except runs.RunBusyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the status file has the traceback
        msg = str(exc) if isinstance(exc, DataError) else f"{type(exc).__name__}: {exc}"
        print(f"error: training failed: {msg}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        _dispatch_on_exit(run_dir)
    summary = {
        "run_dir": str(run_dir),
        "status": result["status"],
        "epochs_completed": result["epochs_completed"],
        "test_accuracy": result["test_accuracy"],
        "test_loss": result["test_loss"],
        "train_seconds": result["train_seconds"],
    }
    if args.json:
        emit(summary)
    elif not args.quiet:
        print(
            f"{result['status']}: {result['epochs_completed']} epochs, test accuracy "
            f"{result['test_accuracy']:.2%}, test loss {result['test_loss']:.4f}, "
            f"{result['train_seconds']:.0f} s training -> {run_dir / 'model.keras'}"
        )
    return 0


def _dispatch_on_exit(run_dir: Path) -> None:
    """A trainer started from the queue starts the next queued run when it ends (no daemon needed)."""
    if os.environ.get("FMNIST_DISPATCH_ON_EXIT") != "1":
        return
    try:
        runqueue.dispatch(run_dir.resolve().parent)
    except Exception as exc:  # noqa: BLE001 - the next page poll or CLI call will dispatch instead
        print(f"warning: could not start the next queued run: {exc}", file=sys.stderr)
