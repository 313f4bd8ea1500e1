"""Models the app and CLI can use: shipped ones in ``models/`` and finished runs in ``runs/``.

Every model is a ``.keras`` file with its metadata beside it (``NAME.json`` for shipped models,
``run.json`` in a run folder). Loading always uses Keras' safe mode and turns any failure into
a ``ModelError`` with a message that says what to do.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import runs
from .classes import class_names

MODELS_DIR = runs.PROJECT_ROOT / "models"
DEFAULT_MODEL = "fashion_cnn_paper"
PHOTO_MODEL = "fashion_cnn_photo"  # trained with photo augmentation: the default for uploads and camera shots
SHIPPED_ORDER = ("fashion_cnn_paper", "fashion_cnn_best", "fashion_cnn_fast", "fashion_cnn_photo")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")  # used with fullmatch (no '/', no NUL, no newline)
MAX_MODEL_BYTES = 512 * 2**20  # uncompressed size of a .keras archive; ours are a few MB (zip bombs stop here)


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


def input_scale(meta: dict[str, Any]) -> float:
    """What a uint8 pixel is multiplied by before the model sees it, from the metadata's ``input_range``.

    [0, 1] (every model this project trains) gives 1/255; a model that takes raw pixels gives 1.
    """
    _, hi = meta.get("input_range", [0, 1])
    return 1.0 / 255.0 if hi == 1 else 1.0


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
    found = [p for p in found if NAME_RE.fullmatch(p.stem) and _inside(p, d)]  # no links out, no odd names
    order = {n: i for i, n in enumerate(SHIPPED_ORDER)}
    found.sort(key=lambda p: (order.get(p.stem, 99), p.stem))
    return [ModelRef(f"shipped:{p.stem}", f"{p.stem} (shipped)", p, meta_path_for(p)) for p in found]


def default_photo_model(models_dir: Path | None = None) -> str:
    """The model spec photos use by default: the shipped photo model, else the default model."""
    d = Path(models_dir or MODELS_DIR)
    name = PHOTO_MODEL if (d / f"{PHOTO_MODEL}.keras").is_file() else DEFAULT_MODEL
    return f"shipped:{name}"


HEAD_SUFFIX = "_head"  # a shipped backbone's photo head: models/<backbone>_head.npz + .json (head.py)
PHOTO_HEAD = PHOTO_MODEL + HEAD_SUFFIX  # the head that goes with the default photo model


def shipped_key(ref: ModelRef) -> str:
    """``shipped:NAME`` for a model in ``models/`` however it was named (a path too), else its key."""
    if ref.path.parent.resolve() == MODELS_DIR.resolve() and ref.path.suffix == ".keras":
        return f"shipped:{ref.path.stem}"
    return ref.key


def shipped_head_name(ref: ModelRef) -> str | None:
    """The name of the photo head shipped beside a shipped backbone, or None if it has none."""
    if not shipped_key(ref).startswith("shipped:"):
        return None
    name = ref.path.stem + HEAD_SUFFIX
    return name if (ref.path.parent / f"{name}.npz").is_file() else None


def run_models(root: Path | None = None) -> list[ModelRef]:
    """Finished or stopped runs that saved a model, newest first."""
    out = []
    for r in runs.list_runs(root):
        if r.has_model and not r.active and _inside(r.model_path, r.path):
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
    if not isinstance(spec, str) or not spec or "\0" in spec:
        raise ModelError(f"invalid model name {spec!r}")
    kind, _, name = spec.partition(":") if spec.split(":", 1)[0] in ("shipped", "run") else ("", "", spec)
    is_name = bool(NAME_RE.fullmatch(name)) and ".." not in name
    if kind == "shipped" or (not kind and is_name and (models_dir / f"{name}.keras").is_file()):
        if not is_name:
            raise ModelError(f"invalid model name {name!r}: use 1-80 letters, digits, '_', '-' or '.'")
        p = models_dir / f"{name}.keras"
        _check_inside(p, models_dir)
        if not p.is_file():
            raise ModelError(
                f"no shipped model {name!r} in {models_dir}; choose one of "
                f"{[m.path.stem for m in shipped_models(models_dir)]}"
            )
        return ModelRef(f"shipped:{name}", f"{name} (shipped)", p, meta_path_for(p))
    if kind == "run" or (not kind and is_name and not name.endswith(".keras")):
        try:
            rp = runs.run_path(name, runs_root)
        except runs.RunError as exc:
            raise ModelError(str(exc)) from None
        p = rp / "model.keras"
        _check_inside(p, rp)
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


def _inside(path: Path, folder: Path) -> bool:
    """True if ``path`` is no symlink and lies inside ``folder``."""
    return not path.is_symlink() and path.resolve().is_relative_to(Path(folder).resolve())


def _check_inside(path: Path, folder: Path) -> None:
    """Refuse a model file that is a symlink or resolves outside ``folder`` (models/ or a run)."""
    if not _inside(path, folder):
        raise ModelError(f"{path.name} in {folder} is a link to somewhere else; refusing to load it")


def check_archive(path: Path) -> None:
    """Cheap checks before Keras opens a ``.keras`` file: a zip with a config and weights, of sane size."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            names = {i.filename for i in infos}
            bad = zf.testzip()  # CRC of every member: catches flipped bytes before Keras sees them
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise ModelError(f"{path} is not a readable .keras archive ({exc}); retrain or re-download it") from None
    if bad is not None:
        raise ModelError(f"{path} is corrupt (member {bad!r} fails its checksum); retrain or re-download it")
    if "config.json" not in names or "model.weights.h5" not in names:
        raise ModelError(f"{path} is not a Keras 3 model (no config.json + model.weights.h5 inside)")
    if sum(i.file_size for i in infos) > MAX_MODEL_BYTES:
        raise ModelError(f"{path} unpacks to more than {MAX_MODEL_BYTES // 2**20} MB; refusing it")
    try:
        with zipfile.ZipFile(path) as zf:
            config = json.loads(zf.read("config.json"))
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{path} has an unreadable config.json ({exc}); retrain or re-download it") from None
    foreign = sorted(_foreign_classes(config))
    if foreign:
        # Keras' safe mode refuses these too; saying which class is clearer than its message.
        raise ModelError(f"{path} asks for code outside Keras ({', '.join(foreign[:3])}); refusing to load it")


def _foreign_classes(node: Any) -> set[str]:
    """'module.Class' of every serialized object in a Keras config that is not Keras' own, and Lambdas."""
    found: set[str] = set()
    if isinstance(node, dict):
        module, cls = node.get("module"), node.get("class_name")
        if isinstance(cls, str) and "config" in node:
            if cls == "Lambda" or (isinstance(module, str) and module.split(".")[0] != "keras"):
                found.add(f"{module}.{cls}" if module else cls)
            elif module is None and node.get("registered_name") not in (None, cls):
                found.add(str(node.get("registered_name")))  # a custom registered object
        for value in node.values():
            found |= _foreign_classes(value)
    elif isinstance(node, list):
        for value in node:
            found |= _foreign_classes(value)
    return found


def model_class_names(ref: ModelRef) -> tuple[str, ...]:
    """Class names stored with the model (Fashion-MNIST names if it says nothing)."""
    meta = ref.meta()
    names = meta.get("class_names")
    return tuple(names) if names else class_names(meta.get("dataset", "fashion"))


def check_model_file(path: Path) -> None:
    """Every check of a ``.keras`` file that needs no TensorFlow (ModelError saying why).

    Callers that would import TensorFlow only to load the model run it first, so a damaged or
    foreign file is refused in a fraction of a second rather than after TensorFlow's start-up.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {path} {'is not a file' if path.exists() else 'does not exist'}")
    if not zipfile.is_zipfile(path):
        raise ModelError(
            f"{path} is not a .keras model or is truncated (it is no zip archive); retrain or re-download it"
        )
    check_archive(path)


def load_model(path: Path):
    """Load a ``.keras`` file in safe mode; any failure becomes a ModelError saying why."""
    path = Path(path)
    check_model_file(path)
    import keras

    try:
        # safe_mode=True: a config that asks for a Lambda (pickled Python code) is refused.
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for broken or foreign files
        first = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ModelError(f"cannot load {path}: {first}") from None
    try:
        shape, out = tuple(model.input_shape[1:]), tuple(model.output_shape[1:])
    except (AttributeError, TypeError, ValueError, IndexError):
        shape, out = None, None
    if shape != (28, 28, 1) or out != (10,):
        raise ModelError(f"{path} is not a 28x28x1 -> 10-class model (input {shape}, output {out})")
    return model
