"""The networks of ``photo_finetune_cv``: a shipped CNN copied, partly unfrozen and fine-tuned on photos.

A *base* is a shipped model (``fashion_cnn_photo``, ``fashion_cnn_best``, ``fashion_cnn_paper``,
``fashion_cnn_fast``: any of the architectures in ``fmnist_core.model``), optionally with a tuning
seed (``fashion_cnn_photo@1``): the same recipe tuned again from other random draws, a second copy
whose features a head can read beside the first's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from fmnist_core import head as photo_head

BATCH = 64
# The last conv block of each architecture (what ``block3`` and ``out11`` unfreeze beside the dense layers).
LAST_BLOCK = {"paper_cnn": ("conv3",)}
LAST_BLOCK_DEFAULT = ("conv31", "conv32")  # the VGG-style nets: wide_cnn, quick_cnn, lean_cnn
ELEVEN = ("out11", "dense11")  # variants whose last layer has 11 outputs


@dataclass(frozen=True)
class Variant:
    """One fine-tuning recipe: what learns, learning rate, epochs over the photos, Fashion-MNIST images per photo."""

    layers: str = "block3"  # "block3" | "dense" | "out11" | "dense11" | "none" (the CNN as shipped)
    lr: float = 3e-4
    epochs: int = 6
    mix: float = 1.0  # Fashion-MNIST images per training photo, drawn afresh every epoch

    @property
    def label(self) -> str:
        if self.layers == "none":
            return "shipped CNN + head (photo_head_cv)"
        return f"{self.layers}, lr {self.lr:g}, {self.epochs} ep, mix {self.mix:g}"


def trainable(variant: Variant, architecture: str) -> tuple[str, ...]:
    """The layers ``variant`` trains in a network of ``architecture`` (``probs11`` always trains)."""
    block = LAST_BLOCK.get(architecture, LAST_BLOCK_DEFAULT)
    return {
        "block3": (*block, "fc", "probs"),
        "out11": (*block, "fc", "probs"),
        "dense": ("fc", "probs"),
        "dense11": ("fc",),
    }.get(variant.layers, ())


@dataclass(frozen=True)
class Base:
    """A shipped CNN to tune, and which tuning of it (``tune_seed`` 0 is the first; ``NAME@K`` names another)."""

    name: str
    tune_seed: int = 0

    @classmethod
    def parse(cls, spec: str) -> Base:
        name, _, seed = spec.partition("@")
        return cls(name, int(seed) if seed else 0)

    @property
    def spec(self) -> str:
        return self.name if self.tune_seed == 0 else f"{self.name}@{self.tune_seed}"

    @property
    def tuned_name(self) -> str:
        """The shipped file's name in ``models/feature_models/`` (no '@': model names are plain)."""
        return f"{self.name}_tuned" + (str(self.tune_seed) if self.tune_seed else "")

    def architecture(self) -> str:
        from fmnist_core.registry import resolve

        return str(resolve(self.name).meta()["architecture"])

    def weights(self) -> list[np.ndarray]:
        """The backbone's weights (float32 copies, whatever precision it was trained in)."""
        from fmnist_core.explain import backbone_of
        from fmnist_core.registry import load_model, resolve

        return backbone_of(load_model(resolve(self.name).path)).get_weights()  # inside a flip-TTA wrapper

    def seed(self, fold_seed: int) -> int:
        """The random seed of one fold's tuning: the first tuning keeps the seeds it always had."""
        return fold_seed + 1000 * self.tune_seed


def build(weights: list[np.ndarray], variant: Variant, architecture: str = "wide_cnn"):
    """A float32 network of ``architecture`` with the shipped weights, only ``variant``'s layers trainable;
    ``out11``/``dense11`` replace the last layer by an 11-way one (the ten classes start from the shipped weights)."""
    import keras

    from fmnist_core.model import build as build_model

    net = build_model(architecture)
    net.set_weights(weights)
    if variant.layers in ELEVEN:
        w, b = net.get_layer("probs").get_weights()
        out = keras.layers.Dense(photo_head.N_OUTPUTS, activation="softmax", name="probs11")
        net = keras.Model(net.inputs, out(net.get_layer("drop_fc").output), name=f"{architecture}_11")
        out.set_weights([np.concatenate([w, np.zeros((w.shape[0], 1), w.dtype)], 1), np.append(b, b.mean() - 2.0)])
    learn = trainable(variant, architecture)
    for layer in net.layers:
        layer.trainable = layer.name in learn or layer.name == "probs11"
    return net


def augment(x_u8: np.ndarray, fm: bool, seed: int) -> np.ndarray:
    """Random flip, rotation 10 deg, shift 8%, zoom 10% (one resampling, ``augment.RandomAffine``) and a
    brightness curve (gamma 0.7-1.4, brightest back to 1); Fashion-MNIST images also get the photo look
    (``augment.photo_augment`` on half of them) as the photo CNN's own training did."""
    import tensorflow as tf

    from fmnist_core import augment as aug
    from fmnist_core.config import TrainConfig

    tf.random.set_seed(seed)
    x = tf.constant(np.asarray(x_u8, np.float32)[..., None] / 255.0)
    layers = aug.augmenter(replace(TrainConfig(), rotation_deg=10.0, shift=0.08, zoom=0.1, hflip=True), seed)
    x = layers(x, training=True)
    if fm:
        x = aug.photo_augment(x, 0.5)
    gamma = tf.exp(tf.random.uniform([tf.shape(x)[0], 1, 1, 1], -0.35, 0.35))
    x = tf.pow(tf.clip_by_value(x, 0.0, 1.0) + 1e-6, gamma)
    top = tf.reduce_max(x, axis=[1, 2, 3], keepdims=True)
    return (x / tf.maximum(top, 1e-6)).numpy()


def fine_tune(
    weights, variant: Variant, x: np.ndarray, y: np.ndarray, pool: tuple, seed: int, architecture: str = "wide_cnn"
):
    """The tuned network: ``variant.epochs`` passes over the photos (x, y: labels 0-10; "none" photos
    teach only the 11-way variants), each with ``mix`` x as many fresh Fashion-MNIST images, cosine-decayed Adam."""
    import keras

    net = build(weights, variant, architecture)
    if variant.layers == "none":
        return net
    if variant.layers not in ELEVEN:
        x, y = x[y != photo_head.NONE], y[y != photo_head.NONE]
    n_fm = int(round(variant.mix * len(x)))
    steps = variant.epochs * -(-(len(x) + n_fm) // BATCH)
    net.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(variant.lr, steps)),
        loss="sparse_categorical_crossentropy",
    )
    rng = np.random.default_rng(seed)
    for epoch in range(variant.epochs):
        pick = rng.choice(len(pool[0]), n_fm, replace=False)
        xe = np.concatenate(
            [augment(x, False, seed * 1000 + epoch), augment(pool[0][pick], True, seed * 1000 + 500 + epoch)]
        )
        ye = np.concatenate([y, pool[1][pick]])
        net.fit(xe, ye, batch_size=BATCH, epochs=1, shuffle=True, verbose=0)
    return net


def features(net, sets_x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``fc`` features of each named uint8 image set through ``net`` (``head.head_features``)."""
    return {k: photo_head.head_features(net, v) for k, v in sets_x.items()}


def last_layer(net) -> tuple[np.ndarray, np.ndarray]:
    """The ten-class part of the network's last layer: the head's prior (``head.with_prior``)."""
    from fmnist_core.explain import backbone_of

    inner = backbone_of(net)
    layer = inner.get_layer("probs11" if "probs11" in [la.name for la in inner.layers] else "probs")
    w, b = layer.get_weights()
    return np.asarray(w[:, :10], np.float64), np.asarray(b[:10], np.float64)


def keras_clear() -> None:
    """A fresh Keras session between two fine-tunings (names and memory of the last one go)."""
    import keras

    keras.backend.clear_session()


def ten_class(tuned, weights: list[np.ndarray], architecture: str = "wide_cnn"):
    """The tuned network as a plain 10-class network of ``architecture`` (what ``registry.load_model``
    accepts): every layer's tuned weights, and for an 11-way variant its last layer's ten class columns
    (the "none" column is the head's business)."""
    from fmnist_core.model import build as build_model

    net = build_model(architecture)
    net.set_weights(weights)
    for layer in net.layers:
        if layer.weights and layer.name != "probs":
            layer.set_weights(tuned.get_layer(layer.name).get_weights())
    w, b = last_layer(tuned)
    net.get_layer("probs").set_weights([w.astype(np.float32), b.astype(np.float32)])
    return net
