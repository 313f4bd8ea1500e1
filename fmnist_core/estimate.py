"""How long will a run take on this machine? An estimate from the config and measured throughput.

The speed comes, in this order, from (1) the finished run or shipped model whose ``run.json`` /
``NAME.json`` recorded ``images_per_s`` for the same architecture, batch size and precision
(the one that saw most images: tiny runs are dominated by start-up and understate the speed),
else (2) project defaults measured for the report's CNN with this project's tf.data pipeline on
the 2-core development machine. The answer says which one it used, so the page can show it.

``images_per_s`` in run.json is ``images trained / seconds inside model.fit`` (validation
included), so ``epochs * n_train / images_per_s`` is the fit time directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import runs
from .config import TrainConfig

N_TRAIN_IMAGES = 60_000  # Fashion-MNIST (and MNIST) training images
STARTUP_S = 8.0  # start the process, import TensorFlow (~3 s), load the data, build the graph
FINISH_S = 5.0  # evaluate the 10,000 test images, save and re-load model.keras
MIN_IMAGES_SEEN = 5_000  # a measurement from fewer trained images is mostly start-up noise

# (architecture, precision) -> [(batch size, images/s)], measured here; interpolated in log(batch).
DEFAULT_SPEED: dict[tuple[str, str], list[tuple[int, float]]] = {
    ("paper_cnn", "float32"): [(32, 1150.0), (128, 1300.0)],
    ("paper_cnn", "mixed_bfloat16"): [(32, 1150.0), (128, 1500.0)],
    # Not measured: ~4x the paper CNN's work per image, so a quarter of its speed, as a rough guess.
    ("wide_cnn", "float32"): [(32, 290.0), (128, 330.0)],
    ("wide_cnn", "mixed_bfloat16"): [(32, 290.0), (128, 380.0)],
}
MEASURED_DEFAULTS = {("paper_cnn", "float32"), ("paper_cnn", "mixed_bfloat16")}


@dataclass(frozen=True)
class Estimate:
    """A run-time estimate and where its speed figure came from."""

    seconds: float
    images_per_s: float
    source: str  # one line for the page, e.g. "measured in run 2026...-paper (batch 32)"
    measured: bool  # True if the speed came from a real run on this machine
    n_train: int  # training images per epoch (after the limit and the validation split)
    n_val: int
    steps_per_epoch: int


def split_sizes(config: TrainConfig, total: int = N_TRAIN_IMAGES) -> tuple[int, int]:
    """(train, validation) image counts, exactly as ``data.stratified_split`` makes them."""
    n = min(config.limit, total) if config.limit else total
    n_val = math.ceil(config.val_fraction * n)  # sklearn rounds the test share up
    return n - n_val, n_val


def resolved_precision(config: TrainConfig) -> str:
    """The dtype policy the trainer will use (TensorFlow is not imported)."""
    from .train import resolve_precision  # module level of train.py imports numpy only

    return resolve_precision(config)


def _measurements(roots: list[Path]) -> list[dict[str, Any]]:
    """Result JSONs that recorded a speed: finished runs and shipped models' metadata."""
    out = []
    for root in roots:
        for r in runs.list_runs(root):
            if r.result and r.result.get("images_per_s"):
                out.append({**r.result, "_source": f"run {r.run_id}"})
    return out


def _shipped_measurements(models_dir: Path) -> list[dict[str, Any]]:
    out = []
    if models_dir.is_dir():
        for p in sorted(models_dir.glob("*.json")):
            meta = runs.read_json(p, {}) or {}
            if isinstance(meta, dict) and meta.get("images_per_s"):
                out.append({**meta, "_source": f"shipped model {p.stem}"})
    return out


def measured_speed(
    config: TrainConfig, runs_root: Path | None = None, models_dir: Path | None = None
) -> tuple[float, str] | None:
    """(images/s, source) from the most informative matching measurement, or None."""
    from .registry import MODELS_DIR

    precision = resolved_precision(config)
    cands = _measurements([Path(runs_root or runs.default_runs_root())])
    cands += _shipped_measurements(Path(models_dir or MODELS_DIR))
    best: tuple[int, float, str] | None = None
    for m in cands:
        cfg = m.get("config") or {}
        if (
            m.get("architecture", cfg.get("architecture")) != config.architecture
            or cfg.get("batch_size") != config.batch_size
            or m.get("precision_used") != precision
        ):
            continue
        seen = int(m.get("n_train") or 0) * int(m.get("epochs_completed") or 0)
        if seen < MIN_IMAGES_SEEN:
            continue
        # Prefer the same augmentation setting (it costs CPU on 2 cores), then most images seen.
        rank = (cfg.get("augment") == config.augment) * 10**9 + seen
        if best is None or rank > best[0]:
            best = (rank, float(m["images_per_s"]), m["_source"])
    return None if best is None else (best[1], best[2])


def default_speed(config: TrainConfig) -> tuple[float, str]:
    """(images/s, source) from the built-in table, interpolated in log(batch size)."""
    precision = resolved_precision(config)
    table = DEFAULT_SPEED.get((config.architecture, precision)) or DEFAULT_SPEED[("paper_cnn", "float32")]
    (b0, s0), (b1, s1) = table[0], table[-1]
    b = min(max(config.batch_size, b0), b1)
    t = math.log(b / b0) / math.log(b1 / b0)
    speed = s0 + t * (s1 - s0)
    if config.batch_size < b0:  # very small batches: per-step overhead dominates
        speed *= config.batch_size / b0
    kind = "project default" if (config.architecture, precision) in MEASURED_DEFAULTS else "rough guess"
    return speed, f"{kind} for {config.architecture}, batch {config.batch_size}, {precision}"


def estimate(config: TrainConfig, runs_root: Path | None = None, models_dir: Path | None = None) -> Estimate:
    """The expected wall time of a run of ``config`` (all epochs; early stopping may end sooner)."""
    n_train, n_val = split_sizes(config)
    found = measured_speed(config, runs_root, models_dir)
    speed, source = found if found else default_speed(config)
    fit = config.epochs * n_train / speed
    return Estimate(
        seconds=STARTUP_S + fit + FINISH_S,
        images_per_s=speed,
        source=(f"measured {speed:,.0f} images/s in {source}" if found else f"{speed:,.0f} images/s, {source}"),
        measured=found is not None,
        n_train=n_train,
        n_val=n_val,
        steps_per_epoch=math.ceil(n_train / config.batch_size),
    )


def config_problems(config: TrainConfig) -> list[str]:
    """Problems a valid TrainConfig can still have for a sensible run (shown before Start)."""
    n_train, n_val = split_sizes(config)
    p = []
    if config.batch_size > n_train:
        p.append(
            f"the batch size ({config.batch_size}) is larger than the {n_train} training images: "
            "use more images or a smaller batch"
        )
    if n_val < 10:
        p.append(f"only {n_val} validation images: use at least 100 training images")
    return p


MIN_STEPS_FOR_BN = 300


def config_advice(config: TrainConfig) -> list[str]:
    """Warnings that do not block a run but explain a result a class may find surprising."""
    n_train, _ = split_sizes(config)
    steps = config.epochs * math.ceil(n_train / config.batch_size)
    advice = []
    if steps < MIN_STEPS_FOR_BN:
        # Measured: 320 images x 2 epochs left validation at chance while training accuracy rose.
        advice.append(
            f"Only {steps} training steps: BatchNorm's running averages (momentum 0.99) need a few hundred "
            "steps to settle, so validation and test accuracy may stay near chance (10%) even while training "
            "accuracy rises. Use more images or epochs, or a smaller batch, for a meaningful model."
        )
    return advice


def format_duration(seconds: float | None) -> str:
    """'45 s', '3 min 20 s', '1 h 05 min' (or '-' when unknown)."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "-"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        m, s = divmod(s, 60)
        return f"{m} min {s:02d} s" if m < 10 else f"{m} min"
    h, rem = divmod(s, 3600)
    return f"{h} h {rem // 60:02d} min"
