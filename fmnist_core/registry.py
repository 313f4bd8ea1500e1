"""Models the app and CLI can use: shipped ones in ``models/`` and finished runs in ``runs/``.

Every model is a ``.keras`` file with its metadata beside it (``NAME.json`` for shipped models,
``run.json`` in a run folder). Loading always uses Keras' safe mode and turns any failure into
a ``ModelError`` with a message that says what to do.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import runs
from .classes import class_names

MODELS_DIR = runs.PROJECT_ROOT / "models"
DEFAULT_MODEL = "fashion_cnn_paper"
SHIPPED_ORDER = ("fashion_cnn_paper", "fashion_cnn_best", "fashion_cnn_fast")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")


class ModelError(RuntimeError):
    """A model file is missing, unreadable or not one of ours."""


@dataclass(frozen=True)
class ModelRef:
    """A usable model: where it is, what to call it, and its metadata."""

    key: str  # "shipped:NAME" or "run:RUN_ID" (or "file:PATH" for a file given on the CLI)
    label: str
    path: Path
    meta_path: Path | None

    def meta(self) -> dict[str, Any]:
        """The metadata JSON (empty dict if missing)."""
        return (runs.read_json(self.meta_path, {}) or {}) if self.meta_path else {}


def meta_path_for(model_path: Path) -> Path | None:
    """``X.json`` beside ``X.keras``, else ``run.json`` in the same folder, else None."""
    model_path = Path(model_path)
    for p in (model_path.with_suffix(".json"), model_path.parent / "run.json"):
        if p.is_file():
            return p
    return None


def shipped_models(models_dir: Path | None = None) -> list[ModelRef]:
    """The ``.keras`` files in ``models/``, paper model first."""
    d = Path(models_dir or MODELS_DIR)
    found = sorted(d.glob("*.keras")) if d.is_dir() else []
    order = {n: i for i, n in enumerate(SHIPPED_ORDER)}
    found.sort(key=lambda p: (order.get(p.stem, 99), p.stem))
    return [ModelRef(f"shipped:{p.stem}", f"{p.stem} (shipped)", p, meta_path_for(p)) for p in found]


def run_models(root: Path | None = None) -> list[ModelRef]:
    """Finished or stopped runs that saved a model, newest first."""
    out = []
    for r in runs.list_runs(root):
        if r.has_model and not r.active:
            acc = r.test_accuracy
            label = f"{r.run_id} ({r.preset}, {r.status}" + (f", {acc:.1%})" if acc is not None else ")")
            out.append(ModelRef(f"run:{r.run_id}", label, r.model_path, r.path / "run.json"))
    return out


def available_models(models_dir: Path | None = None, runs_root: Path | None = None) -> list[ModelRef]:
    """Shipped models then finished runs."""
    return shipped_models(models_dir) + run_models(runs_root)


def resolve(spec: str | None, models_dir: Path | None = None, runs_root: Path | None = None) -> ModelRef:
    """Turn a CLI/UI model spec into a ModelRef.

    Accepted: None (the default paper model), a key ``shipped:NAME`` / ``run:ID``, a shipped
    model name, a run id, or a path to a ``.keras`` file.
    """
    models_dir = Path(models_dir or MODELS_DIR)
    if spec is None:
        spec = f"shipped:{DEFAULT_MODEL}"
    kind, _, name = spec.partition(":") if spec.split(":", 1)[0] in ("shipped", "run") else ("", "", spec)
    if kind == "shipped" or (not kind and NAME_RE.match(name) and (models_dir / f"{name}.keras").is_file()):
        if not NAME_RE.match(name):
            raise ModelError(f"invalid model name {name!r}")
        p = models_dir / f"{name}.keras"
        if not p.is_file():
            raise ModelError(
                f"no shipped model {name!r} in {models_dir}; choose one of "
                f"{[m.path.stem for m in shipped_models(models_dir)]}"
            )
        return ModelRef(f"shipped:{name}", f"{name} (shipped)", p, meta_path_for(p))
    if kind == "run" or (not kind and NAME_RE.match(name) and not name.endswith(".keras")):
        try:
            rp = runs.run_path(name, runs_root)
        except runs.RunError as exc:
            raise ModelError(str(exc)) from None
        p = rp / "model.keras"
        if p.is_file():
            return ModelRef(f"run:{name}", name, p, meta_path_for(p))
        if kind == "run":
            raise ModelError(f"run {name!r} has no saved model yet")
    p = Path(name)
    if p.is_dir() and (p / "model.keras").is_file():
        p = p / "model.keras"
    if not p.is_file():
        raise ModelError(f"model {spec!r} not found: give a shipped name, a run id or a .keras path")
    return ModelRef(f"file:{p}", p.name, p, meta_path_for(p))


def model_class_names(ref: ModelRef) -> tuple[str, ...]:
    """Class names stored with the model (Fashion-MNIST names if it says nothing)."""
    meta = ref.meta()
    names = meta.get("class_names")
    return tuple(names) if names else class_names(meta.get("dataset", "fashion"))


def load_model(path: Path):
    """Load a ``.keras`` file in safe mode; any failure becomes a ModelError saying why."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    if not zipfile.is_zipfile(path):
        raise ModelError(f"{path} is not a Keras model (.keras files are zip archives); retrain or re-download it")
    import keras

    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for broken files
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load {path}: {first}") from None
    shape = tuple(model.input_shape[1:]) if hasattr(model, "input_shape") else None
    if shape != (28, 28, 1) or tuple(model.output_shape[1:]) != (10,):
        raise ModelError(f"{path} is not a 28x28x1 -> 10-class model (input {shape}, output {model.output_shape})")
    return model
