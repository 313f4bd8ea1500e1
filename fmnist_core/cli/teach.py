"""``python -m fmnist_core teach DIR_OR_ZIP --name NAME [--only-mine] [--replace] [--json]`` and
``python -m fmnist_core heads [list | delete NAME] [--json]``: teach a photo head from labelled
photos (a folder of class folders or a zip of them) and keep the taught heads.

Errors print one line to stderr and exit 1; skipped files are named one per line (warnings).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

EXIT_ERROR = 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``teach`` and ``heads`` to the CLI's subcommands."""
    t = sub.add_parser("teach", help="teach a photo head from a folder (or zip) of class folders of photos")
    t.add_argument("source", help="a folder of class folders (dress/, pants/, hat/ ...) or a .zip of them")
    t.add_argument("--name", required=True, help="the head's name (letters, digits, '_', '-', '.')")
    t.add_argument("--only-mine", action="store_true", help="teach on these photos only, without the dev photos")
    t.add_argument("--replace", action="store_true", help="replace a head of the same name")
    t.add_argument("--dev-features", help="the dev photos' features (default: shipped beside the backbone)")
    t.add_argument("--json", action="store_true", help="one JSON object: the head's card")
    t.set_defaults(func=run)
    h = sub.add_parser("heads", help="list the taught photo heads, or delete one")
    h.add_argument("action", nargs="?", default="list", choices=["list", "delete"])
    h.add_argument("name", nargs="?", help="the head to delete")
    h.add_argument("--json", action="store_true")
    h.set_defaults(func=run_heads)


def _bar(fraction: float, text: str) -> None:
    """A one-line progress bar on stderr, only on a terminal."""
    if not sys.stderr.isatty():
        return
    done = int(30 * fraction)
    end = "\n" if fraction >= 1 else ""
    print(f"\r[{'#' * done}{'.' * (30 - done)}] {fraction:4.0%} {text[:50]:50s}", end=end, file=sys.stderr, flush=True)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def run(args: argparse.Namespace) -> int:
    """Teach, store, and print what it changed (or one error line)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from pathlib import Path

    from .. import access, head, heads, teach, teach_input
    from ..registry import ModelError

    collected = None
    try:
        heads.check_free(heads.validate_name(args.name), args.replace)  # before TensorFlow is imported
        collected = teach_input.collect(args.source)
        from ..predict import Predictor
        from ..registry import default_photo_model

        predictor = Predictor.from_spec(default_photo_model())
        result = teach.teach(
            collected,
            args.name,
            predictor=predictor,
            only_mine=args.only_mine,
            replace=args.replace,
            progress=_bar,
            dev_features=Path(args.dev_features) if args.dev_features else None,
        )
    except (
        teach_input.TeachError,
        heads.HeadStoreError,
        head.HeadError,
        access.AccessError,
        ModelError,
    ) as exc:
        for name, why in (collected.skipped if collected else [])[:20]:
            print(f"skipped: {name}: {why}", file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    for name, why in result.skipped:
        print(f"skipped: {name}: {why}", file=sys.stderr)
    if result.unknown_folders:
        print(f"skipped folders (no class known): {', '.join(result.unknown_folders)}", file=sys.stderr)
    if args.json:
        print(json.dumps({**result.card(), "name": result.name, "path": str(result.info.path)}, default=str))
        return 0
    _print_result(result)
    return 0


def _print_result(result: Any) -> None:
    n = sum(result.counts.values())
    with_dev = "only these photos" if result.only_mine else f"these photos + {result.dev_photos:,} dev photos"
    print(f"taught head {result.name!r} on {n} photos ({with_dev}) in {result.seconds['total']:.1f} s")
    print(f"accuracy on these photos: before = the CNN alone / the shipped photo head; after = {result.k}-fold CV")
    print(f"  {'class':14s} {'photos':>6s} {'CNN':>6s} {'shipped':>8s} {'after':>6s}")
    for folder, p in result.per_class.items():
        print(
            f"  {folder:14s} {p['photos']:6d} {_pct(p['before_cnn']):>6s} "
            f"{_pct(p['before_head']):>8s} {_pct(p['after']):>6s}"
        )
    o = result.overall
    print(f"  {'all':14s} {n:6d} {_pct(o['before_cnn']):>6s} {_pct(o['before_head']):>8s} {_pct(o['after']):>6s}")
    if result.wrong:
        print(f"still wrong after teaching ({len(result.wrong)}):")
        for w in result.wrong[:30]:
            print(f"  {w['file']}: {w['answer']} ({w['probability']:.0%})")
    print(f"saved in {result.info.path}; use it with: python -m fmnist_core predict PHOTO --head {result.name}")


def run_heads(args: argparse.Namespace) -> int:
    """List the taught heads, or delete one (the command line acts as the teacher)."""
    from .. import heads

    if args.action == "delete":
        if not args.name:
            print("error: give the head to delete: heads delete NAME", file=sys.stderr)
            return EXIT_ERROR
        try:
            heads.delete(args.name)
        except heads.HeadStoreError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_ERROR
        print(f"deleted head {args.name!r}")
        return 0
    found = heads.list_heads()
    if args.json:
        rows = [{"name": h.name, "owner": h.owner, "problem": h.problem, **h.card} for h in found]
        print(json.dumps(rows, default=str))
        return 0
    if not found:
        print(f"no taught heads in {heads.store_root()}")
    for h in found:
        print(h.label + (f"  [{h.problem}]" if h.problem else ""))
    return 0
