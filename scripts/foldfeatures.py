"""Each fold's tuned features, kept by ``photo_finetune_cv --keep-features``, and heads on several of them.

A fold's file holds, for one shipped CNN tuned on one fold seed's training folds, the features of every
dev photo and photo-like set through that fold's copy and the copy's last layer (the head's prior), so
that heads on one copy's features or on several copies' side by side can be chosen without tuning again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def kept_path(cache: Path, base: str, v: Any, seed: int) -> Path:
    """Where ``--keep-features`` writes the fold features of ``base`` tuned with ``v`` on fold seed ``seed``."""
    return cache / f"foldfeat-{base}-{v.layers}-lr{v.lr:g}-ep{v.epochs}-mix{v.mix:g}-seed{seed}.npz"


def kept_features(cache: Path, base: str, variant: Any, seed: int) -> dict[str, np.ndarray]:
    """The fold features ``run(..., keep=...)`` wrote for ``base``, ``variant`` and fold seed ``seed``."""
    f = kept_path(cache, base, variant, seed)
    if not f.is_file():
        raise SystemExit(f"{f} is missing: run --base {base} --seed {seed} --keep-features with this variant first")
    return dict(np.load(f))


def side_by_side(parts: list[dict[str, np.ndarray]], key: str, fold: int) -> np.ndarray:
    """One set's features of one fold, the tuned networks' side by side (in ``bases`` order)."""
    return np.concatenate([p[f"{key}_f{fold}"] for p in parts], axis=1)


def padded_prior(w: np.ndarray, b: np.ndarray, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """The first network's last layer as the prior of a head on several networks' features: the other
    networks' features get zero weight in it (their own opinions are the head's to weigh)."""
    return np.concatenate([w, np.zeros((n_features - len(w), w.shape[1]))]), b
