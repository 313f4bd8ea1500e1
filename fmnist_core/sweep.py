"""Hyper-parameter sweeps: one queued run per combination of a grid, compared afterwards.

``--grid learning_rate=1e-3,3e-3 --grid dropout=0.2,0.4`` on the ``fast`` preset queues four
runs that share a sweep id (in each status.json); ``sweep_rows`` reads them back for the table
and chart on Evaluate. On a Ray cluster they train in parallel.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
import typing
from pathlib import Path
from typing import Any

from . import runqueue, runs
from .config import TrainConfig

MAX_RUNS = 64  # a typo in a grid must not queue a thousand runs
SWEEPABLE = ("learning_rate", "dropout", "batch_size", "epochs", "limit", "seed", "label_smoothing", "augment")


def _field_type(name: str) -> type:
    hints = typing.get_type_hints(TrainConfig)
    if name not in hints or name not in SWEEPABLE:
        raise ValueError(f"cannot sweep {name!r}; choose from {', '.join(SWEEPABLE)}")
    t = hints[name]
    args = [a for a in typing.get_args(t) if a is not type(None)]
    return args[0] if args else t


def _parse_value(name: str, text: str) -> Any:
    t = _field_type(name)
    text = text.strip()
    if t is bool:
        if text.lower() not in ("true", "false", "1", "0", "on", "off"):
            raise ValueError(f"{name} takes true/false, not {text!r}")
        return text.lower() in ("true", "1", "on")
    try:
        return int(text) if t is int else float(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a number") from None


def parse_grid(specs: list[str]) -> dict[str, list[Any]]:
    """``["learning_rate=1e-3,3e-3", "dropout=0.2,0.4"]`` -> ``{"learning_rate": [...], ...}``."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not values.strip():
            raise ValueError(f"a grid is NAME=V1,V2,...; got {spec!r}")
        if name in grid:
            raise ValueError(f"{name} appears twice in the grid")
        grid[name] = list(dict.fromkeys(_parse_value(name, v) for v in values.split(",") if v.strip()))
    return grid


def expand(base: TrainConfig, grid: dict[str, list[Any]]) -> list[tuple[TrainConfig, dict[str, Any]]]:
    """Every combination as (config, its settings); raises ValueError on an invalid one."""
    names = list(grid)
    combos = list(itertools.product(*(grid[n] for n in names)))
    if len(combos) > MAX_RUNS:
        raise ValueError(f"the grid makes {len(combos)} runs; at most {MAX_RUNS}")
    out = []
    for values in combos:
        settings = dict(zip(names, values, strict=True))
        out.append((base.replace(**settings), settings))
    return out


def queue_sweep(base: TrainConfig, grid: dict[str, list[Any]], root: Path, owner: str = "") -> tuple[str, list[Path]]:
    """Queue one run per combination (all validated first); return (sweep id, run folders)."""
    combos = expand(base, grid)
    sweep_id = time.strftime("%Y%m%d-%H%M%S") + f"-sweep-{base.preset}"
    dirs = []
    for i, (cfg, _) in enumerate(combos, start=1):
        dirs.append(runqueue.launch(cfg, root, run_id=f"{sweep_id}-{i}", owner=owner, sweep=sweep_id))
    return sweep_id, dirs


def sweeps(infos: list[runs.RunInfo]) -> list[str]:
    """Sweep ids present in the runs folder, newest first."""
    return sorted({r.sweep for r in infos if r.sweep}, reverse=True)


def varied_settings(infos: list[runs.RunInfo]) -> list[str]:
    """The config fields that differ between the runs of one sweep."""
    fields = [f.name for f in dataclasses.fields(TrainConfig)]
    return [f for f in fields if len({repr(r.config.get(f)) for r in infos}) > 1]


def sweep_rows(infos: list[runs.RunInfo], sweep_id: str) -> tuple[list[str], list[dict[str, Any]]]:
    """(varied setting names, one row per run of the sweep: settings, status, accuracies)."""
    members = sorted((r for r in infos if r.sweep == sweep_id), key=lambda r: r.run_id)
    varied = varied_settings(members)
    rows = []
    for r in members:
        row: dict[str, Any] = {"run": r.run_id}
        row.update({k: r.config.get(k) for k in varied})
        row.update(
            {
                "status": r.status,
                "test_accuracy": r.test_accuracy,
                "best_val_accuracy": r.best_val_accuracy,
                "owner": r.owner,
            }
        )
        rows.append(row)
    return varied, rows
