"""The report's CNN and our wider variant. Imports nothing from training or I/O.

Models take ``(N, 28, 28, 1)`` float32 images with pixels in [0, 1] (white garment on black,
as in Fashion-MNIST) and return 10 softmax probabilities.

Padding: 'same' for every convolution (the report does not say; 'same' keeps 28 -> 14 -> 7 -> 3
after the three 2x2 pools). Parameter count of ``paper_cnn``: 668,298 (667,146 trainable;
the 1,152 others are BatchNorm moving statistics).
"""

from __future__ import annotations

import numpy as np

INPUT_SHAPE = (28, 28, 1)
INPUT_RANGE = (0.0, 1.0)
N_CLASSES = 10


def _keras():
    import keras

    return keras


def paper_cnn(dtype: str = "float32", name: str = "paper_cnn", dropout: float | None = None):
    """Report section III.D: 3 x [Conv 3x3 + BN + ReLU, MaxPool 2x2, Dropout], Dense 128, softmax.

    ``dropout``: one rate for every Dropout layer instead of the report's 0.2/0.3/0.4/0.5 (sweeps).
    """
    keras = _keras()
    L = keras.layers
    x = inputs = keras.Input(INPUT_SHAPE, name="image")
    for i, (filters, drop) in enumerate([(64, 0.2), (128, 0.3), (256, 0.4)], start=1):
        # The report lists "Conv (ReLU)" then BatchNorm; we keep that order.
        x = L.Conv2D(filters, 3, padding="same", activation="relu", dtype=dtype, name=f"conv{i}")(x)
        x = L.BatchNormalization(dtype=dtype, name=f"bn{i}")(x)
        x = L.MaxPooling2D(2, dtype=dtype, name=f"pool{i}")(x)
        x = L.Dropout(drop if dropout is None else dropout, dtype=dtype, name=f"drop{i}")(x)
    x = L.Flatten(dtype=dtype, name="flatten")(x)
    x = L.Dense(128, activation="relu", dtype=dtype, name="fc")(x)
    x = L.BatchNormalization(dtype=dtype, name="bn_fc")(x)
    x = L.Dropout(0.5 if dropout is None else dropout, dtype=dtype, name="drop_fc")(x)
    # Softmax in float32 even under bfloat16: probabilities need the precision.
    outputs = L.Dense(N_CLASSES, activation="softmax", dtype="float32", name="probs")(x)
    return keras.Model(inputs, outputs, name=name)


def _vgg_cnn(stages, dense: int, rate: float, dtype: str, name: str):
    """VGG-style net: per stage, ``convs`` x [Conv 3x3 (no bias) + BN + ReLU], then MaxPool 2x2;
    then Flatten, Dropout, Dense ``dense`` + ReLU, Dropout, softmax."""
    keras = _keras()
    L = keras.layers
    x = inputs = keras.Input(INPUT_SHAPE, name="image")
    for i, (filters, convs) in enumerate(stages, start=1):
        for j in range(1, convs + 1):
            x = L.Conv2D(filters, 3, padding="same", use_bias=False, dtype=dtype, name=f"conv{i}{j}")(x)
            x = L.BatchNormalization(dtype=dtype, name=f"bn{i}{j}")(x)
            x = L.ReLU(dtype=dtype, name=f"relu{i}{j}")(x)
        x = L.MaxPooling2D(2, dtype=dtype, name=f"pool{i}")(x)
    x = L.Flatten(dtype=dtype, name="flatten")(x)
    x = L.Dropout(rate, dtype=dtype, name="drop")(x)
    x = L.Dense(dense, activation="relu", dtype=dtype, name="fc")(x)
    x = L.Dropout(rate, dtype=dtype, name="drop_fc")(x)
    # Softmax in float32 even under bfloat16: probabilities need the precision.
    outputs = L.Dense(N_CLASSES, activation="softmax", dtype="float32", name="probs")(x)
    return keras.Model(inputs, outputs, name=name)


def wide_cnn(dtype: str = "float32", name: str = "wide_cnn", dropout: float | None = None):
    """Our 'best' net: VGG-style, two 3x3 convs per stage (32, 64, 128), BN, Dense 256.

    About the same FLOPs per image as ``paper_cnn`` (~58 MFLOP forward) but twice the depth.
    ``dropout``: the rate of both Dropout layers instead of 0.3 (sweeps).
    """
    rate = 0.3 if dropout is None else dropout
    return _vgg_cnn([(32, 2), (64, 2), (128, 2)], 256, rate, dtype, name)


def quick_cnn(dtype: str = "float32", name: str = "quick_cnn", dropout: float | None = None):
    """``wide_cnn`` without the second 28x28 convolution: one conv in the first stage.

    That layer is a quarter of wide_cnn's FLOPs and, with only 32 channels at full resolution,
    the slowest per FLOP on these CPUs; the ``fast`` preset trades it for more epochs.
    """
    rate = 0.3 if dropout is None else dropout
    return _vgg_cnn([(32, 1), (64, 2), (128, 2)], 256, rate, dtype, name)


def lean_cnn(dtype: str = "float32", name: str = "lean_cnn", dropout: float | None = None):
    """``quick_cnn`` at half the channels (16, 32, 64) and Dense 128: about a quarter of its FLOPs."""
    rate = 0.3 if dropout is None else dropout
    return _vgg_cnn([(16, 1), (32, 2), (64, 2)], 128, rate, dtype, name)


BUILDERS = {"paper_cnn": paper_cnn, "wide_cnn": wide_cnn, "quick_cnn": quick_cnn, "lean_cnn": lean_cnn}


def build(architecture: str = "paper_cnn", dtype: str = "float32", dropout: float | None = None):
    """An uncompiled model of the named architecture with the given dtype policy (and dropout rate)."""
    try:
        return BUILDERS[architecture](dtype=dtype, dropout=dropout)
    except KeyError:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {sorted(BUILDERS)}") from None


def with_dtype(model, architecture: str, dtype: str):
    """The same weights in a fresh network of the named architecture with another dtype policy.

    Used to export bfloat16-trained weights as float32, and to measure a bfloat16 copy of a
    float32 model (weights are stored in float32 under both policies, so they copy exactly).
    """
    twin = build(architecture, dtype=dtype)
    twin.set_weights(model.get_weights())
    return twin


def with_flip_tta(backbone):
    """Wrap a model so it averages its output on the image and on the mirrored image.

    The mirror is a frozen Dense layer holding the anti-identity matrix (exact in float32), so
    the saved file uses only built-in layers and loads with Keras' safe mode.
    """
    keras = _keras()
    L = keras.layers
    inputs = keras.Input(INPUT_SHAPE, name="image")
    rows = L.Reshape((28, 28), name="rows")(inputs)
    mirror = L.Dense(28, use_bias=False, trainable=False, name="mirror")
    flipped = L.Reshape(INPUT_SHAPE, name="flipped")(mirror(rows))
    mirror.set_weights([np.eye(28, dtype="float32")[::-1]])
    outputs = L.Average(name="tta_mean")([backbone(inputs), backbone(flipped)])
    return keras.Model(inputs, outputs, name=f"{backbone.name}_tta")


def compile_for_eval(model, learning_rate: float = 1e-3) -> None:
    """Compile with the report's loss and metric (sparse labels), as every saved model is."""
    keras = _keras()
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )


def parameter_count(model) -> dict[str, int]:
    """Total and trainable parameter counts."""
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    total = int(sum(np.prod(w.shape) for w in model.weights))
    return {"total": total, "trainable": trainable}
