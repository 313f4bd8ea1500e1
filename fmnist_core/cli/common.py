"""What the command modules share: output, exit codes, messages on one line, flags written once.

Also the one mechanism that keeps TensorFlow's start-up lines (absl, oneDNN, "failed call to
cuInit" on a machine without a GPU) off stderr for every command: ``quiet_tensorflow_imports``,
installed by ``main`` before any command runs, so the first ``import tensorflow`` (or ``keras``)
anywhere loads it quietly. ``$FMNIST_DEBUG`` keeps the lines.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import json
import os
import sys
import types
from pathlib import Path
from typing import Any

from ..config import PRESETS, TrainConfig, preset
from ..machine import import_tensorflow_quietly
from ..segment import DEFAULT_METHOD, METHODS

EXIT_ERROR = 1
EXIT_USAGE = 2
PRESET_HELP = " | ".join(PRESETS)  # paper | fast | best | photo


# ---------------------------------------------------------------- TensorFlow, quietly


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """On the first ``import tensorflow``: import it with fd 2 silenced, then hand that module over."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: the import below takes the ordinary path
        import_tensorflow_quietly()
        return importlib.machinery.ModuleSpec(name, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return sys.modules["tensorflow"]

    def exec_module(self, module: types.ModuleType) -> None:
        """Already executed by ``import_tensorflow_quietly``."""


def quiet_tensorflow_imports() -> None:
    """Make the first TensorFlow import of this process a quiet one (no cost if none happens)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())


# ---------------------------------------------------------------- output


def emit(obj: Any) -> None:
    """One JSON document on stdout (``--json``)."""
    print(json.dumps(obj, indent=None, default=str))


def progress(i: int, n: int, label: str) -> None:
    """A one-line progress bar on stderr (only when it is a terminal)."""
    if not sys.stderr.isatty():
        return
    w = 30
    done = int(w * i / max(n, 1))
    print(f"\r{label} [{'#' * done}{'.' * (w - done)}] {i}/{n}", end="" if i < n else "\n", file=sys.stderr)


def one_line(text: object, limit: int = 300) -> str:
    """Any message as one printable line (file names may hold newlines or control characters)."""
    flat = " ".join(str(text).split())
    flat = "".join(ch if ch.isprintable() else "?" for ch in flat)
    return flat[:limit] or "unknown error"


def number_or_none(x: Any) -> float | None:
    """``x`` if it is a real number (run files may be hand-edited or torn), else None."""
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


# ---------------------------------------------------------------- flags written once


def add_json_flag(p: argparse.ArgumentParser) -> None:
    """``--json``: one JSON document on stdout instead of text."""
    p.add_argument("--json", action="store_true")


def add_preset_flags(p: argparse.ArgumentParser, default: str) -> None:
    """``--preset`` and the overrides every preset takes (train, estimate, sweep)."""
    p.add_argument("--preset", default=default, help=PRESET_HELP)
    p.add_argument("--epochs", type=int)
    p.add_argument("--limit", type=int, help="use only N training images (stratified)")
    p.add_argument("--seed", type=int)


def add_config_flags(p: argparse.ArgumentParser, config_help: str) -> None:
    """The flags ``config_from_args`` reads (train, estimate)."""
    add_preset_flags(p, "paper")
    p.add_argument("--config", help=config_help)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--dataset", choices=["fashion", "mnist"])
    p.add_argument("--no-augment", action="store_true")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig that ``train``/``estimate`` arguments describe (--config or --preset + overrides)."""
    if getattr(args, "config", None):
        return TrainConfig.from_dict(json.loads(Path(args.config).read_text()))
    return preset(
        args.preset,
        epochs=args.epochs,
        limit=args.limit,
        seed=args.seed,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        dataset=args.dataset,
        augment=False if args.no_augment else None,
    )


def add_photo_flags(p: argparse.ArgumentParser) -> None:
    """``--model`` (default: the photo model), ``--segment`` and ``--head`` (predict, photos)."""
    p.add_argument("--model", help="shipped name, run id or .keras path (default: the photo model)")
    p.add_argument(
        "--segment", default=DEFAULT_METHOD, choices=METHODS, help=f"segmentation (default {DEFAULT_METHOD})"
    )
    p.add_argument(
        "--head",
        default="auto",
        help="photo head: auto (the one shipped with the model, default), none (the CNN alone) or a head name",
    )


def photo_model_checked(args: argparse.Namespace) -> Any:
    """The ``ModelRef`` of ``--model`` (default: the photo model), its file and a named ``--head``
    checked before TensorFlow is imported: a wrong name or a damaged file is refused in a fraction
    of a second. Raises ``ModelError`` or ``HeadError`` (predict, photos)."""
    from ..head import load_head, resolve_head
    from ..registry import check_model_file, default_photo_model, resolve

    ref = resolve(args.model or default_photo_model())
    check_model_file(ref.path)
    if args.head not in (None, "auto", "none"):
        load_head(resolve_head(args.head))
    return ref


def add_root_flags(p: argparse.ArgumentParser, ray_help: str) -> None:
    """``--root`` (the runs folder) and ``--ray`` (runs, sweep)."""
    p.add_argument("--root", help="runs folder (default ./runs)")
    p.add_argument("--ray", metavar="ADDRESS", help=ray_help)


def use_ray(args: argparse.Namespace) -> None:
    """``--ray ADDRESS`` is the same as ``FMNIST_RAY_ADDRESS=ADDRESS``."""
    if getattr(args, "ray", None):
        os.environ["FMNIST_RAY_ADDRESS"] = args.ray
