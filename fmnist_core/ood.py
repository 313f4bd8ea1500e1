"""Distance to the training distribution in a model's feature space: "none of the ten" for photos.

A photo of a hat, a skirt or shorts gets an answer as confident as a garment does, so confidence
alone hardly separates them (docs/PHOTOS.md, "Fourth round"). Where the model *puts* the photo
separates better: its last hidden layer (``fc``) holds a cloud of points per class for the
Fashion-MNIST training images. The Mahalanobis distance (one covariance shared by the ten classes,
Lee et al. 2018) from a photo's features to the mean of the class the model answers tells how
unlike that class's training images it is. Each class's limit is the 99th percentile of that
distance over its own training images, so the limits come from Fashion-MNIST alone; only the
factor applied to them (``predict.REJECT_DISTANCE_FACTOR``) is calibrated on the dev photos.

"Training images" means the images as the model saw them in training (``training_view``): for
the photo model, one pass of its augmentation (segmented-photo looks, flat-lay views). Fitted on
the plain images instead, the statistics separate hats, skirts and shorts from garments less
well: more in-scope photos are rejected for the same share of out-of-scope ones (figures in
docs/PHOTOS.md, "Fourth round").

The statistics are saved beside the model as ``<name>.features.npz`` (``fit_model_stats``), so
loading them costs milliseconds where fitting them runs the model over 60,000 images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .explain import backbone_of

FEATURE_LAYER = "fc"
QUANTILE = 99.0  # each class's limit: this percentile of its own training images' distances
SUFFIX = ".features.npz"


@dataclass(frozen=True)
class FeatureStats:
    """Class means, the shared precision matrix and each class's distance limit in feature space."""

    means: np.ndarray  # (10, D)
    precision: np.ndarray  # (D, D), the inverse of the shared within-class covariance
    limits: np.ndarray  # (10,), QUANTILE-th percentile of training distances per class

    def distance(self, features: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each feature row to the mean of the given class."""
        d = np.asarray(features, np.float64) - self.means[np.asarray(classes)]
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", d, self.precision, d), 0.0))

    def save(self, path: Path) -> None:
        """Write the statistics as a compressed npz (float32: the limits need no more)."""
        np.savez_compressed(
            path,
            means=self.means.astype(np.float32),
            precision=self.precision.astype(np.float32),
            limits=self.limits.astype(np.float32),
        )

    @classmethod
    def load(cls, path: Path) -> FeatureStats:
        with np.load(path) as z:
            return cls(z["means"].astype(np.float64), z["precision"].astype(np.float64), z["limits"].astype(np.float64))


def stats_path(model_path: Path) -> Path:
    """Where the statistics of the model saved at ``model_path`` live (``x.keras`` -> ``x.features.npz``)."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name.removesuffix(".keras") + SUFFIX)


def has_feature_layer(model) -> bool:
    """True when the model has the ``fc`` layer that the statistics are taken from."""
    return any(layer.name == FEATURE_LAYER for layer in backbone_of(model).layers)


def feature_function(model, scale: float = 1.0 / 255.0):
    """A function from uint8 images (N, 28, 28) to ``fc`` features (N, D), float32.

    For a flip-TTA model the features are the mean over the image and its mirror image, as its
    answer is the mean of the two.
    """
    import keras
    import tensorflow as tf

    backbone = backbone_of(model)
    inner = keras.Model(backbone.inputs, backbone.get_layer(FEATURE_LAYER).output)
    tta = backbone is not model

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)], reduce_retracing=True)
    def fn(x):
        f = tf.cast(inner(x, training=False), tf.float32)
        if tta:
            f = (f + tf.cast(inner(tf.reverse(x, axis=[2]), training=False), tf.float32)) / 2
        return f

    def features(
        images_u8: np.ndarray, batch: int = 1000, progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray:
        x = np.asarray(images_u8, np.float32).reshape(-1, 28, 28, 1) * scale
        if len(x) == 0:
            return np.zeros((0, int(inner.output.shape[-1])), np.float32)
        out = []
        for i in range(0, len(x), batch):
            out.append(np.asarray(fn(x[i : i + batch])))
            if progress:
                progress(min(i + batch, len(x)), len(x))
        return np.concatenate(out)

    return features


def fit(features: np.ndarray, labels: np.ndarray, predicted: np.ndarray, n_classes: int = 10) -> FeatureStats:
    """Statistics from training features: class means and shared covariance by true label; limits
    by the class the model *answers* (that is the class a new input's distance is measured to)."""
    f = np.asarray(features, np.float64)
    labels = np.asarray(labels)
    means = np.stack([f[labels == c].mean(0) for c in range(n_classes)])
    centred = f - means[labels]
    cov = centred.T @ centred / len(f)
    # A small ridge: ReLU features have dead units whose variance is 0.
    precision = np.linalg.inv(cov + 1e-3 * np.eye(cov.shape[0]))
    stats = FeatureStats(means, precision, np.zeros(n_classes))
    d = stats.distance(f, predicted)
    limits = np.array(
        [np.percentile(d[predicted == c], QUANTILE) if np.any(predicted == c) else np.inf for c in range(n_classes)]
    )
    return FeatureStats(means, precision, limits)


def fit_model_stats(
    model,
    x_train_u8: np.ndarray,
    y_train: np.ndarray,
    scale: float = 1.0 / 255.0,
    progress: Callable[[int, int], None] | None = None,
) -> FeatureStats:
    """Run the model over its training images and fit the statistics (a minute or two on these CPUs)."""
    features = feature_function(model, scale)(x_train_u8, progress=progress)
    backbone = backbone_of(model)
    w, b = backbone.get_layer("probs").get_weights()
    # The answer from the (flip-averaged) features: for a flip-TTA model it can differ from the mean
    # of the two softmax outputs on a few borderline images, which moves a 99th percentile by nothing.
    predicted = np.argmax(features @ w + b, axis=1)
    return fit(features, y_train, predicted, n_classes=w.shape[1])


def training_view(x_u8: np.ndarray, y: np.ndarray, config: dict | None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The training images as a model with this run ``config`` saw them: one pass of its
    augmentation (seeded), or the images unchanged if it trained without augmentation."""
    from .config import TrainConfig

    cfg = TrainConfig.from_dict(config or {})
    if not cfg.augment:
        return np.asarray(x_u8), np.asarray(y)
    import keras

    from .pipeline import train_dataset

    # The augmentation draws from TensorFlow's global seed, as in training: set it, so the same
    # seed gives the same statistics.
    keras.utils.set_random_seed(seed)
    xs, ys = [], []
    for xb, yb in train_dataset(x_u8, y, cfg.replace(seed=seed), parallel=False):  # in order: reproducible
        xs.append(np.clip(np.round(np.asarray(xb)[..., 0] * 255), 0, 255).astype(np.uint8))
        ys.append(np.asarray(yb))
    return np.concatenate(xs), np.concatenate(ys)
