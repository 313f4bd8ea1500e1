"""Why did the model decide? Grad-CAM (Selvaraju et al. 2017) for one 28x28 image.

The heat map is the last convolution's feature maps weighted by the gradient of the chosen
class score, averaged over each map; positive evidence only (ReLU), upsampled to 28x28 and
scaled to [0, 1]. Works for ``paper_cnn``, ``wide_cnn`` and the flip-TTA wrapper from
``model.with_flip_tta`` (its backbone, a nested Model, is explained on the unflipped image).
Overlay helpers colour the map and lay it over the 28x28 input or over the original photo.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .preprocess import Prepared


def backbone_of(model):
    """The model whose layers hold the convolutions: a nested Model (flip-TTA wrapper) or the model."""
    import keras

    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return nested[0] if nested else model


def last_conv_layer(model):
    """The last Conv2D layer (found by type, so any layer names work)."""
    import keras

    for layer in reversed(backbone_of(model).layers):
        if isinstance(layer, keras.layers.Conv2D):
            return layer
    raise ValueError(f"model {model.name!r} has no Conv2D layer to explain")


def grad_cam(model, image_u8: np.ndarray, class_index: int | None = None, scale: float = 1 / 255) -> np.ndarray:
    """A 28x28 float32 heat map in [0, 1]: where the evidence for ``class_index`` lies.

    ``image_u8`` is the prepared (28, 28) uint8 input, scaled by ``scale`` as the model expects.
    ``class_index`` defaults to the predicted class. An all-zero map means no positive evidence.
    """
    import keras
    import tensorflow as tf

    net = backbone_of(model)
    conv = last_conv_layer(net)
    # A second head on the same graph: the conv activations and the probabilities in one pass.
    probe = keras.Model(net.inputs, [conv.output, net.outputs[0]])
    x = tf.constant(np.asarray(image_u8, np.float32).reshape(1, 28, 28, 1) * scale)
    with tf.GradientTape() as tape:
        fmaps, probs = probe(x, training=False)
        index = int(np.argmax(probs[0])) if class_index is None else int(class_index)
        score = probs[:, index]
    grads = tape.gradient(score, fmaps)
    weights = tf.reduce_mean(tf.cast(grads, tf.float32), axis=(1, 2))  # one weight per feature map
    cam = tf.nn.relu(tf.reduce_sum(tf.cast(fmaps, tf.float32) * weights[:, None, None, :], axis=-1))[0]
    cam = tf.image.resize(cam[..., None], (28, 28), method="bilinear")[..., 0].numpy()
    top = float(cam.max())
    return (cam / top).astype(np.float32) if top > 0 else np.zeros((28, 28), np.float32)


# A perceptual dark-blue -> red -> yellow map (like 'inferno'), so the overlay reads in grey print too.
_ANCHORS = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], np.float32)


def colourise(heat: np.ndarray) -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 3) uint8 colours."""
    h = np.clip(np.asarray(heat, np.float32), 0, 1) * (len(_ANCHORS) - 1)
    i = np.minimum(h.astype(int), len(_ANCHORS) - 2)
    f = (h - i)[..., None]
    return (_ANCHORS[i] * (1 - f) + _ANCHORS[i + 1] * f).round().astype(np.uint8)


def overlay(
    base: Image.Image | np.ndarray, heat: np.ndarray, alpha: float = 0.5, size: int | None = None
) -> Image.Image:
    """The heat map, coloured, blended over ``base`` (resized to the base, or both to ``size`` px wide)."""
    img = base if isinstance(base, Image.Image) else Image.fromarray(np.asarray(base, np.uint8))
    img = img.convert("RGB")
    if size:
        img = img.resize((size, max(1, round(size * img.height / img.width))), Image.Resampling.NEAREST)
    heat_img = Image.fromarray((np.clip(heat, 0, 1) * 255).astype(np.uint8), "L")
    heat_big = np.asarray(heat_img.resize(img.size, Image.Resampling.BILINEAR), np.float32) / 255
    colours = colourise(heat_big).astype(np.float32)
    # More opaque where the map is strong, so weak areas keep showing the image underneath.
    a = (alpha * heat_big)[..., None]
    out = np.asarray(img, np.float32) * (1 - a) + colours * a
    return Image.fromarray(out.round().astype(np.uint8), "RGB")


def heat_on_source(heat: np.ndarray, prepared: Prepared) -> np.ndarray:
    """Map a 28x28 heat map back onto the source image's pixels (zeros outside the garment box).

    Undoes the pipeline's geometry: the part of the 28x28 frame that holds the scaled crop is
    resized to the crop box and placed where the crop came from.
    """
    w, h = prepared.source_size
    out = np.zeros((h, w), np.float32)
    if prepared.crop_box is None or prepared.frame_box is None or w < 1 or h < 1:
        return out
    fl, ft, fr, fb = prepared.frame_box
    cl, ct, cr, cb = prepared.crop_box
    part = np.asarray(heat, np.float32)[ft:fb, fl:fr]
    if part.size == 0 or cr <= cl or cb <= ct:
        return out
    part_img = Image.fromarray((np.clip(part, 0, 1) * 255).astype(np.uint8), "L")
    out[ct:cb, cl:cr] = np.asarray(part_img.resize((cr - cl, cb - ct), Image.Resampling.BILINEAR), np.float32) / 255
    return out


def overlay_on_source(heat: np.ndarray, prepared: Prepared, original: Image.Image, alpha: float = 0.5) -> Image.Image:
    """The heat map over the original upload/photo/drawing (what the user gave us)."""
    return overlay(original, heat_on_source(heat, prepared), alpha)
