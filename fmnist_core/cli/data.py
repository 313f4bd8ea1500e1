"""``data``: find, verify (and download) the dataset."""

from __future__ import annotations

import argparse
import sys

from ..data import DataError, class_counts, download, load_dataset
from .common import EXIT_ERROR, add_json_flag, emit


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``data`` to the CLI's subparsers."""
    p = sub.add_parser("data", help="find, verify (and download) the dataset")
    p.add_argument("--check", action="store_true", help="verify checksums and count images (the default)")
    p.add_argument("--download", action="store_true", help="download into ./data/ if not found")
    p.add_argument("--dataset", default="fashion", choices=["fashion", "mnist"])
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check (or download) the dataset and count its images per class."""
    try:
        if args.download:
            download(args.dataset, quiet=args.json)
        ds = load_dataset(args.dataset)
    except DataError as exc:
        if args.json:
            emit({"ok": False, "dataset": args.dataset, "error": str(exc)})
        else:
            print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    out = {
        "ok": all(c.ok for c in ds.checks),
        "dataset": ds.name,
        "folder": str(ds.folder),
        "files": [{"name": c.name, "path": c.path, "md5": c.md5, "ok": c.ok, "matched": c.matched} for c in ds.checks],
        "train": {"images": int(len(ds.x_train)), "per_class": class_counts(ds.y_train)},
        "test": {"images": int(len(ds.x_test)), "per_class": class_counts(ds.y_test)},
        "class_names": list(ds.class_names),
    }
    if args.json:
        emit(out)
    else:
        print(f"{ds.name} data found in {ds.folder}")
        for c in ds.checks:
            how = {"gz": "matches the .gz checksum", "raw": "uncompressed bytes match"}.get(c.matched, "MISMATCH")
            print(f"  {'ok ' if c.ok else 'BAD'} {c.name:26s} md5 {c.md5} ({how})")
        print(f"  train: {out['train']['images']:,} images, test: {out['test']['images']:,} images")
        print("  per class (train / test):")
        for name, a, b in zip(ds.class_names, out["train"]["per_class"], out["test"]["per_class"], strict=True):
            print(f"    {name:12s} {a:6,d} / {b:5,d}")
    return 0 if out["ok"] else EXIT_ERROR
