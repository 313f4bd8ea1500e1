"""How long will a run take on this machine? An estimate from the config and a speed measured here.

The training speed (images/s) comes, in this order, from
(1) a finished run on this machine (same CPU model) whose ``run.json`` recorded ``images_per_s``
    for the same architecture, batch size and precision (the one that saw most images: tiny runs
    are dominated by start-up and understate the speed);
(2) a short measurement on this machine: a few training steps of the config's architecture,
    batch size, precision and augmentation (``measure_speed``), cached per machine in
    ``~/.cache/fmnist-studio/speed.json`` keyed by CPU model, cores, architecture, batch,
    precision and augmentation;
(3) only when measuring is not allowed or not possible now (a run is training), a rough
    figure from the development machine, labelled as such.
The answer says which one it used, so the page and the CLI can show it.

``images_per_s`` in run.json is ``images trained / seconds inside model.fit`` (validation
included), so ``epochs * n_train / images_per_s`` is the fit time directly. A measurement times
training steps only; validation images are then counted at a third of a training image's cost
(a forward pass is about a third of the work of a training step).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import runs
from .config import PRESETS, TrainConfig, preset
from .data import validation_size
from .machine import resolve_precision, same_machine, this_machine

N_TRAIN_IMAGES = 60_000  # Fashion-MNIST (and MNIST) training images
N_TEST_IMAGES = 10_000
STARTUP_S = 8.0  # start the process, import TensorFlow (~3 s), load the data (a measurement adds its graph build)
SAVE_S = 3.0  # save and re-load model.keras
MIN_IMAGES_SEEN = 5_000  # a run that trained fewer images is mostly start-up noise
MEASURE_WARMUP_STEPS = 3  # the first steps build and trace the graph: not timed
MEASURE_STEPS = 12  # timed steps: ~1.5 s at batch 32 and ~6 s at batch 128 on the slow (AMD EPYC) machine
EVAL_COST = 1 / 3  # a validation/test image costs about a third of a training image (forward only)

# Only for (3): measured on the development machine (2 cores, AVX-512 + BF16; it reports itself as
# 'AMD EPYC'), never on the machine at hand; the slow kind (AVX2 only) trains about 5x slower.
ELSEWHERE_SPEED: dict[tuple[str, str], list[tuple[int, float]]] = {
    ("paper_cnn", "float32"): [(32, 1150.0), (128, 1300.0)],
    ("paper_cnn", "mixed_bfloat16"): [(32, 1150.0), (128, 1500.0)],
    ("wide_cnn", "float32"): [(32, 290.0), (128, 330.0)],
    ("wide_cnn", "mixed_bfloat16"): [(32, 290.0), (128, 380.0)],
}


@dataclass(frozen=True)
class Estimate:
    """A run-time estimate and where its speed figure came from."""

    seconds: float
    images_per_s: float
    source: str  # one line for the page, e.g. "measured here: 12 training steps of wide_cnn ..."
    measured: bool  # True if the speed was measured on this machine (a run or a short measurement)
    n_train: int  # training images per epoch (after the limit and the validation split)
    n_val: int
    steps_per_epoch: int


def split_sizes(config: TrainConfig, total: int = N_TRAIN_IMAGES) -> tuple[int, int]:
    """(train, validation) image counts, exactly as ``data.stratified_split`` makes them."""
    n = min(config.limit, total) if config.limit else total
    n_val = validation_size(n, config.val_fraction)
    return n - n_val, n_val


def cache_dir() -> Path:
    """Where per-machine measurements live: $FMNIST_CACHE_DIR, else ~/.cache/fmnist-studio."""
    env = os.environ.get("FMNIST_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fmnist-studio"


def speed_key(config: TrainConfig, machine: str | None = None) -> str:
    """The cache key of a speed measurement: machine, architecture, batch, precision, augmentation."""
    aug = "augment" if config.augment else "no augment"
    return (
        f"{machine or this_machine()} | {config.architecture} | batch {config.batch_size} | "
        f"{resolve_precision(config)} | {aug}"
    )


def cached_speed(config: TrainConfig) -> dict[str, Any] | None:
    """The cached measurement for ``config`` on this machine, or None."""
    data = runs.read_json(cache_dir() / "speed.json", {}) or {}
    entry = data.get(speed_key(config)) if isinstance(data, dict) else None
    return entry if isinstance(entry, dict) and entry.get("images_per_s") else None


def measure_speed(config: TrainConfig, steps: int = MEASURE_STEPS, cache: bool = True) -> dict[str, Any]:
    """Time a few training steps of ``config``'s model, batch, precision and augmentation here.

    Random pixels: a step's work depends on shapes, not on values. Returns (and caches) a dict with
    ``images_per_s`` (timed steps only), ``setup_s`` (build, compile, first steps), ``steps``,
    ``load`` (1-minute load average when it ran) and ``measured_at``.
    """
    import keras
    import numpy as np

    from .model import build
    from .pipeline import train_dataset
    from .train import compile_for_training

    t0 = time.perf_counter()
    precision = resolve_precision(config)
    n = (MEASURE_WARMUP_STEPS + steps) * config.batch_size
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, n).astype(np.int64)
    ds = train_dataset(x, y, config.replace(seed=0), one_hot=config.label_smoothing > 0)
    model = build(config.architecture, dtype=precision)
    compile_for_training(model, config, MEASURE_WARMUP_STEPS + steps)
    stamps: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            stamps.append(time.perf_counter())

    model.fit(ds, epochs=1, verbose=0, callbacks=[Clock()], shuffle=False)  # the dataset shuffles
    timed = stamps[MEASURE_WARMUP_STEPS - 1 :]  # from the end of the last warm-up step
    speed = (len(timed) - 1) * config.batch_size / (timed[-1] - timed[0])
    result = {
        "images_per_s": round(speed, 1),
        "setup_s": round(timed[0] - t0, 1),
        "steps": len(timed) - 1,
        "load": round(os.getloadavg()[0], 2),
        "measured_at": time.time(),
    }
    if cache:
        path = cache_dir() / "speed.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = runs.read_json(path, {}) or {}
        data = data if isinstance(data, dict) else {}
        data[speed_key(config)] = result
        runs.write_json_atomic(path, data)
    return result


def _run_measurements(roots: list[Path]) -> list[dict[str, Any]]:
    """Result JSONs of finished runs that recorded a speed."""
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
    """(images/s, source) from the most informative matching run trained on this machine's kind, or None.

    Shipped models count only if they were trained on the same kind of machine (their JSON says where).
    """
    from .registry import MODELS_DIR

    precision = resolve_precision(config)
    cands = _run_measurements([Path(runs_root or runs.default_runs_root())])
    cands += _shipped_measurements(Path(models_dir or MODELS_DIR))
    best: tuple[int, float, str] | None = None
    for m in cands:
        cfg = m.get("config") or {}
        if (
            m.get("architecture", cfg.get("architecture")) != config.architecture
            or cfg.get("batch_size") != config.batch_size
            or m.get("precision_used") != precision
            or not same_machine(m.get("machine"))
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


def will_measure(config: TrainConfig, runs_root: Path | None = None, remeasure: bool = False) -> bool:
    """True if ``estimate`` will first time a few training steps for ``config`` (say so before it does).

    That is when no finished run here and no cached measurement knows this configuration yet.
    """
    return remeasure or (measured_speed(config, runs_root) is None and cached_speed(config) is None)


def elsewhere_speed(config: TrainConfig) -> float:
    """A speed from the development machine's table (interpolated in log batch size): a last resort."""
    precision = resolve_precision(config)
    table = ELSEWHERE_SPEED.get((config.architecture, precision)) or ELSEWHERE_SPEED[("paper_cnn", "float32")]
    (b0, s0), (b1, s1) = table[0], table[-1]
    b = min(max(config.batch_size, b0), b1)
    speed = s0 + math.log(b / b0) / math.log(b1 / b0) * (s1 - s0)
    if config.batch_size < b0:  # very small batches: per-step overhead dominates
        speed *= config.batch_size / b0
    return speed


def _active_run(root: Path) -> bool:
    try:
        return runs.active_run(runs.list_runs(root)) is not None
    except OSError:
        return False


def estimate(
    config: TrainConfig,
    runs_root: Path | None = None,
    models_dir: Path | None = None,
    measure: bool = True,
    remeasure: bool = False,
) -> Estimate:
    """The expected wall time of a run of ``config`` here (all epochs; early stopping may end sooner).

    ``measure``: if no run and no cached measurement knows this machine's speed for the config,
    take a short measurement now (a few seconds, then cached), unless a run is training (it would
    slow both and measure the contention). With ``measure=False`` nothing is trained here;
    ``remeasure=True`` measures now and uses that figure even where a finished run knows one.
    """
    n_train, n_val = split_sizes(config)
    machine = this_machine()
    steps = math.ceil(n_train / config.batch_size)
    if remeasure:  # a fresh measurement now, cached, and used in preference to earlier runs
        measure_speed(config)
    found = None if remeasure else measured_speed(config, runs_root, models_dir)
    setup = 0.0
    if found:  # a real run's speed already includes its validation passes
        speed, where = found
        fit = config.epochs * n_train / speed
        source, measured = f"measured {speed:,.0f} images/s in {where} on this machine ({machine})", True
    else:
        cached = cached_speed(config)
        root = Path(runs_root or runs.default_runs_root())
        if cached is None and measure and not _active_run(root):
            cached = measure_speed(config)
        if cached is not None:
            speed, setup = float(cached["images_per_s"]), float(cached.get("setup_s", 0.0))
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(cached.get("measured_at", 0)))
            source = (
                f"{speed:,.0f} images/s measured on this machine ({machine}) by {cached.get('steps', '?')} "
                f"training steps at {when}, load {cached.get('load', '?')}"
            )
            measured = True
        else:
            speed = elsewhere_speed(config)
            source = (
                f"not yet measured on this machine ({machine}): {speed:,.0f} images/s is a figure from "
                "the development machine (AVX-512 + BF16) and may be 5x off here"
            )
            measured = False
        fit = config.epochs * (n_train + EVAL_COST * n_val) / speed
    finish = EVAL_COST * N_TEST_IMAGES / speed + SAVE_S
    return Estimate(
        seconds=STARTUP_S + setup + fit + finish,
        images_per_s=speed,
        source=source,
        measured=measured,
        n_train=n_train,
        n_val=n_val,
        steps_per_epoch=steps,
    )


PRESET_SUMMARY = {
    "paper": "The report's recipe: batch 32, Adam 0.001, up to 20 epochs with early stopping, "
    "rotation 10° / shift 10% / zoom 10%.",
    "fast": "A short classroom run: a small VGG-style net, batch 128, 6 epochs, one-cycle learning rate, "
    "label smoothing, no augmentation.",
    "best": "Our best recipe: a VGG-style net, flips, shifts and random erasing, label smoothing, 40 epochs.",
    "photo": "For real photos: the best recipe plus augmentation that imitates a segmented phone photo "
    "(ragged edges, leftover background, uneven light, blur, noise) and the views photos show "
    "(sleeves spread out, shoes in pairs from above), 16 epochs.",
}


def preset_description(name: str, runs_root: Path | None = None, measure: bool = False) -> str:
    """What the named preset does and how long it takes on this machine (for the Train page and CLI).

    The time is only given when it is known for this machine (a run here or a measurement, see
    ``estimate``); ``measure=True`` measures if needed. Never a figure from another machine.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    cfg = preset(name)
    text = PRESET_SUMMARY.get(name, "")
    est = estimate(cfg, runs_root=runs_root, measure=measure)
    if est.measured:
        when = "Up to about" if cfg.patience else "About"  # early stopping may end it sooner
        return f"{text} {when} {format_duration(est.seconds)} on this machine."
    return f"{text} Its run time on this machine is measured when it is picked."


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
