"""tf.data input pipelines: uint8 arrays -> float batches in [0, 1], augmented for training.

Augmentation (the ops of augment.py and flatlay.py) runs inside a parallel ``map`` on whole
batches, so it overlaps with the training step instead of running inside the model on the
step's thread.
"""

from __future__ import annotations

import numpy as np

from .augment import augmenter, photo_augment, random_erase
from .config import TrainConfig
from .flatlay import flat_lay_views


def to_float(images_u8):
    """uint8 (N, 28, 28) or (N, 28, 28, 1) -> float32 (N, 28, 28, 1) in [0, 1]."""
    import tensorflow as tf

    x = tf.cast(images_u8, tf.float32) / 255.0
    if x.shape.rank == 3:
        x = x[..., None]
    return x


def train_dataset(
    x: np.ndarray,
    y: np.ndarray,
    config: TrainConfig,
    one_hot: bool = False,
    parallel: bool = True,
    prefetch: bool = True,
):
    """Shuffled, batched, augmented training batches, prefetched.

    ``parallel`` and ``prefetch`` exist for the benchmark's ablation (``bench train --ablation``);
    training always uses both.
    """
    import tensorflow as tf

    aug = augmenter(config, seed=config.seed) if config.augment else None
    erase = config.augment and config.erase_prob > 0
    photo = config.augment and config.photo_prob > 0
    flatlay = config.augment and (config.sleeve_prob > 0 or config.shoe_prob > 0)

    def prep(xb, yb):
        xb = to_float(xb)
        if aug is not None:
            xb = aug(xb, training=True)
        if flatlay:
            xb = flat_lay_views(xb, yb, config.sleeve_prob, config.shoe_prob)
        if photo:
            xb = photo_augment(xb, config.photo_prob)
        if erase:
            xb = random_erase(xb, config.erase_prob)
        if one_hot:
            yb = tf.one_hot(tf.cast(yb, tf.int32), 10)
        return xb, yb

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.shuffle(len(x), seed=config.seed, reshuffle_each_iteration=True)
    ds = ds.batch(config.batch_size).map(prep, num_parallel_calls=tf.data.AUTOTUNE if parallel else None)
    return ds.prefetch(tf.data.AUTOTUNE) if prefetch else ds


def eval_dataset(x: np.ndarray, y: np.ndarray | None, batch_size: int = 512, one_hot: bool = False):
    """Batched, unaugmented images (and labels) in [0, 1] for validation, test or prediction."""
    import tensorflow as tf

    def prep_xy(xb, yb):
        return to_float(xb), (tf.one_hot(tf.cast(yb, tf.int32), 10) if one_hot else yb)

    if y is None:
        ds = tf.data.Dataset.from_tensor_slices(x).batch(batch_size).map(to_float)
    else:
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).map(prep_xy)
    return ds.prefetch(tf.data.AUTOTUNE)
