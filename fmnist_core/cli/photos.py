"""``photos``: accuracy on a folder tree of labelled real photos (folder = label)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..machine import native_stderr_silenced
from .common import EXIT_ERROR, add_json_flag, add_photo_flags, emit, one_line, photo_model_checked


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``photos`` to the CLI's subparsers."""
    p = sub.add_parser("photos", help="accuracy on a folder tree of labelled real photos (folder = label)")
    p.add_argument("dir", type=Path)
    add_photo_flags(p)
    p.add_argument("--no-reject", action="store_true", help="never answer 'none of the ten'")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Strict / lenient accuracy, per folder, confusion table and reject rates on labelled photos."""
    from ..head import HeadError
    from ..photos import evaluate_photos
    from ..registry import ModelError

    def progress(i: int, n: int, _res: Any) -> None:
        if i == n or i % 25 == 0:
            print(f"{i}/{n} photos", file=sys.stderr, flush=True)

    try:
        ref = photo_model_checked(args)  # before TensorFlow is imported
        with native_stderr_silenced(not os.environ.get("FMNIST_DEBUG")):
            from ..predict import Predictor

            predictor = Predictor(ref, args.head)
        out = evaluate_photos(args.dir, predictor, args.segment, not args.no_reject, progress)
    except (FileNotFoundError, ModelError, HeadError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    if not out["photos"]:
        print(f"error: no photos in labelled folders under {args.dir}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        emit(out)
        return 0

    def percent(x: float | None) -> str:
        return "-" if x is None else f"{x:.1%}"

    print(
        f"{out['photos']} photos ({out['in_scope']} in scope, {out['out_of_scope']} out of scope), model {out['model']}"
        f", head {out['head'] or 'none'}"
    )
    print(f"  strict accuracy {percent(out['strict_accuracy'])}, lenient {percent(out['lenient_accuracy'])}")
    print(
        f"  rejected as none of the ten: in scope {percent(out['reject_rate_in_scope'])}, "
        f"out of scope {percent(out['reject_rate_out_of_scope'])}"
    )
    print(f"  time per photo: p50 {out['seconds_per_photo']['p50'] * 1000:.0f} ms")
    print("  folder        photos  strict lenient rejected")
    for name, p in out["per_folder"].items():
        strict = percent(p["strict_accuracy"]) if p["in_scope"] else "-"
        lenient = percent(p["lenient_accuracy"]) if p["in_scope"] else "-"
        print(f"  {name:12s} {p['photos']:7d} {strict:>7s} {lenient:>7s} {percent(p['reject_rate']):>8s}")
    cols = out["columns"]
    short = [c.split("/")[0][:7] for c in cols]
    print("  confusion (folder x answer):")
    print("  " + " " * 12 + "".join(f"{c:>8s}" for c in short))
    for name, row in out["confusion"].items():
        print(f"  {name:12s}" + "".join(f"{row.get(c, 0):8d}" for c in cols))
    if out["skipped_folders"]:
        print(f"  skipped folders (no class known): {', '.join(out['skipped_folders'])}")
    return 0
