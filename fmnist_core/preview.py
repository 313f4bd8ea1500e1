"""Augmentation preview: what the network is shown, with the current settings.

The random versions come from the very layers training uses (``augment.augmenter`` and
``augment.random_erase``), so the preview cannot drift from the real pipeline. TensorFlow is
imported only when ``augment_preview`` is called.
"""

from __future__ import annotations

import numpy as np

from .config import TrainConfig


def example_indices(y: np.ndarray, n: int = 4, seed: int = 0) -> np.ndarray:
    """``n`` image indices of ``n`` different classes (random classes and images for ``seed``)."""
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    picked = rng.choice(classes, size=min(n, len(classes)), replace=False)
    return np.array([rng.choice(np.flatnonzero(y == c)) for c in picked], dtype=int)


def augment_preview(images: np.ndarray, config: TrainConfig, versions: int = 5, seed: int = 0) -> np.ndarray:
    """uint8 (k, 1 + versions, 28, 28): each image, then ``versions`` random augmentations of it.

    With augmentation off (or no random layer asked for) the versions equal the original:
    that is exactly what training would show. Seeds TensorFlow's global generator with ``seed``.
    """
    images = np.asarray(images, dtype=np.uint8)
    if images.ndim != 3:
        raise ValueError(f"images must be (k, 28, 28) uint8, got shape {images.shape}")
    k = len(images)
    base = np.repeat(images[:, None], versions, axis=1)  # (k, versions, 28, 28)
    if config.augment and versions > 0:
        import tensorflow as tf

        from .augment import augmenter, random_erase

        # The affine and erasing layers draw from TensorFlow's global generator (as in training);
        # seeding it here makes a preview reproducible: same seed, same pictures.
        tf.random.set_seed(seed)
        x = base.reshape(k * versions, *images.shape[1:], 1).astype("float32") / 255.0
        aug = augmenter(config, seed=seed)
        if aug is not None:
            x = aug(x, training=True)
        if config.erase_prob > 0:
            x = random_erase(x, config.erase_prob)
        x = np.asarray(x, dtype="float32").reshape(base.shape)
        base = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    return np.concatenate([images[:, None], base], axis=1)


def mosaic(grid: np.ndarray, scale: int = 4, gap: int = 4, first_gap: int = 12, background: int = 255) -> np.ndarray:
    """One uint8 image of a (rows, cols, h, w) grid, pixels enlarged ``scale`` times (no blur).

    The first column (the originals) is set apart by a wider gap.
    """
    rows, cols, h, w = grid.shape
    big = grid.repeat(scale, axis=2).repeat(scale, axis=3)
    H, W = h * scale, w * scale
    gaps = [0] + [first_gap if c == 1 else gap for c in range(1, cols)]
    xs = np.cumsum([g + (W if c else 0) for c, g in enumerate(gaps)])
    out = np.full((rows * H + (rows - 1) * gap, xs[-1] + W), background, dtype=np.uint8)
    for r in range(rows):
        y = r * (H + gap)
        for c in range(cols):
            out[y : y + H, xs[c] : xs[c] + W] = big[r, c]
    return out
