"""Augmentation ops on float image batches in [0, 1]: random affine, random erasing, photo look.

Shared by the training pipeline (pipeline.py), the flat-lay views (flatlay.py) and the Train
page's preview (preview.py). TensorFlow and Keras are imported when an op is first built.
"""

from __future__ import annotations

import numpy as np

from .config import TrainConfig


def resample(images, a0, a1, a2, b0, b1, b2, interpolation: str = "BILINEAR", fill_mode: str = "CONSTANT"):
    """Per-image affine resampling: output pixel (x, y) takes input (a0 x + a1 y + a2, b0 x + b1 y + b2).

    Each term is an (N,) tensor; outside the input is ``fill_mode`` (zero for CONSTANT). Used by
    the random affine augmentation and by the flat-lay views (flatlay.py).
    """
    import tensorflow as tf

    zeros = tf.zeros_like(a0)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1),
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation=interpolation,
        fill_mode=fill_mode,
    )
    out.set_shape(images.shape)  # the raw op forgets the static shape later steps need
    return out


def _random_affine_layer():
    """Define the RandomAffine layer class (needs keras, imported lazily)."""
    import keras
    import tensorflow as tf

    class RandomAffine(keras.layers.Layer):
        """Rotation, shift and zoom as ONE affine transform with ONE bilinear resampling.

        This is what the report's ``ImageDataGenerator(rotation_range, width/height_shift_range,
        zoom_range)`` does (zoom sampled independently in x and y, 'nearest' fill). Chaining
        Keras' RandomRotation, RandomTranslation and RandomZoom instead resamples three times and
        visibly blurs 28x28 garments (we measured slower learning with it).
        """

        def __init__(self, rotation_deg: float, shift: float, zoom: float, fill_mode: str = "nearest", **kw):
            super().__init__(**kw)
            self.rotation_deg, self.shift, self.zoom, self.fill_mode = rotation_deg, shift, zoom, fill_mode

        def call(self, images, training=True):
            if not training:
                return images
            n = tf.shape(images)[0]
            h, w = tf.cast(tf.shape(images)[1], tf.float32), tf.cast(tf.shape(images)[2], tf.float32)
            theta = tf.random.uniform([n], -1.0, 1.0) * self.rotation_deg * np.pi / 180.0
            zx = tf.random.uniform([n], 1.0 - self.zoom, 1.0 + self.zoom)
            zy = tf.random.uniform([n], 1.0 - self.zoom, 1.0 + self.zoom)
            tx = tf.random.uniform([n], -1.0, 1.0) * self.shift * w
            ty = tf.random.uniform([n], -1.0, 1.0) * self.shift * h
            cos, sin = tf.cos(theta), tf.sin(theta)
            # Output pixel (x, y) samples input c + A (p - c) + t, with A = R(theta) diag(zx, zy).
            a0, a1, b0, b1 = cos * zx, -sin * zy, sin * zx, cos * zy
            cx, cy = (w - 1) / 2, (h - 1) / 2
            a2 = cx - a0 * cx - a1 * cy + tx
            b2 = cy - b0 * cx - b1 * cy + ty
            pure_shift = self.rotation_deg == 0 and self.zoom == 0
            if pure_shift:
                # Whole-pixel shifts with zero fill (pad-and-crop): no resampling blur at all.
                a2, b2 = tf.round(a2), tf.round(b2)
            return resample(
                images,
                a0,
                a1,
                a2,
                b0,
                b1,
                b2,
                interpolation="NEAREST" if pure_shift else "BILINEAR",
                fill_mode="CONSTANT" if pure_shift else self.fill_mode.upper(),
            )

        def compute_output_shape(self, input_shape):
            return input_shape

    return RandomAffine


def augmenter(config: TrainConfig, seed: int = 0):
    """A Keras Sequential of the random layers ``config`` asks for, or None if it asks for none.

    Rotation, shift and zoom form one affine transform (see RandomAffine); flips are separate.
    Randomness comes from TensorFlow's global seed, set per run by ``keras.utils.set_random_seed``.
    """
    import keras

    layers = []
    if config.hflip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if config.rotation_deg > 0 or config.shift > 0 or config.zoom > 0:
        layers.append(_random_affine_layer()(config.rotation_deg, config.shift, config.zoom, name="random_affine"))
    if not layers:
        return None
    return keras.Sequential(layers, name="augment")


def random_erase(images, prob: float):
    """Random erasing (Zhong et al. 2017): with probability ``prob`` zero one rectangle per image.

    The rectangle covers 2-25% of the image with aspect ratio 0.3-3.3; written with tf ops only
    so it runs inside the tf.data graph (seeded by the global seed of the run).
    """
    import tensorflow as tf

    n = tf.shape(images)[0]
    h, w = images.shape[1], images.shape[2]
    s = tf.random.uniform([n], 0.02, 0.25)
    r = tf.exp(tf.random.uniform([n], np.log(0.3), np.log(3.3)))
    eh = tf.clip_by_value(tf.sqrt(s * r) * h, 1.0, float(h))
    ew = tf.clip_by_value(tf.sqrt(s / r) * w, 1.0, float(w))
    y0 = tf.random.uniform([n]) * (h - eh)
    x0 = tf.random.uniform([n]) * (w - ew)
    ys = tf.range(h, dtype=tf.float32)[None, :, None]
    xs = tf.range(w, dtype=tf.float32)[None, None, :]
    inside = (
        (ys >= y0[:, None, None])
        & (ys < (y0 + eh)[:, None, None])
        & (xs >= x0[:, None, None])
        & (xs < (x0 + ew)[:, None, None])
    )
    apply = tf.random.uniform([n]) < prob
    mask = inside & apply[:, None, None]
    return tf.where(mask[..., None], tf.zeros_like(images), images)


def _dilate(mask, size: int):
    """Binary dilation of (N, 28, 28, 1) float masks by a size x size square (max pooling)."""
    import tensorflow as tf

    return tf.nn.max_pool2d(mask, size, 1, "SAME")


def _erode(mask, size: int):
    import tensorflow as tf

    return -tf.nn.max_pool2d(-mask, size, 1, "SAME")


def _smooth_noise(n, cells: int):
    """(N, 28, 28, 1) uniform noise in [0, 1] that varies over ``cells`` x ``cells`` blocks, smoothly."""
    import tensorflow as tf

    coarse = tf.random.uniform([n, cells, cells, 1])
    return tf.image.resize(coarse, [28, 28], method="bilinear")


def photo_augment(images, prob: float):
    """Imitate what segmenting a real photo leaves in the 28x28 input, on a share ``prob`` of images.

    Real photos go through segment -> the dataset's steps (see ``preprocess.prepare_photo``), which
    leaves: ragged garment edges (mask errors), a halo or patch of background texture next to the
    garment (bed sheets, wood grain the mask kept), uneven lighting across the garment, other
    contrast and gamma, blur (focus, downscaling), sensor noise; the last step stretches the
    brightest pixel to 1 as the pipeline does. Each effect is drawn per image with its own
    probability and strength, in tf ops only, so it runs in the tf.data graph.
    """
    import tensorflow as tf

    x = images
    n = tf.shape(x)[0]

    def per_image(p):
        return tf.cast(tf.random.uniform([n, 1, 1, 1]) < p, tf.float32)

    def uniform(lo, hi):
        return tf.random.uniform([n, 1, 1, 1], lo, hi)

    fg = tf.cast(x > 0.08, tf.float32)
    # Ragged edges: pixels in a 1-2 px band around the outline drop out in blotches.
    band = _dilate(fg, 3) - _erode(fg, 3)
    drop = band * tf.cast(_smooth_noise(n, 14) < uniform(0.0, 0.5), tf.float32) * per_image(0.5)
    x = x * (1.0 - drop)
    # Halo: background just outside the outline the mask kept, at a random brightness.
    ring = _dilate(fg, 5) - fg
    halo = ring * tf.cast(_smooth_noise(n, 10) < uniform(0.1, 0.6), tf.float32) * uniform(0.1, 0.6)
    x = tf.maximum(x, halo * per_image(0.3))
    # Leftover background texture on one side (a strip of sheet or floor the mask kept).
    ys = tf.linspace(-1.0, 1.0, 28)[None, :, None, None]
    xs = tf.linspace(-1.0, 1.0, 28)[None, None, :, None]
    angle = tf.random.uniform([n, 1, 1, 1], 0.0, 2 * np.pi)
    side = tf.cast(tf.cos(angle) * xs + tf.sin(angle) * ys > uniform(0.3, 0.9), tf.float32)
    texture = 0.6 * _smooth_noise(n, 7) + 0.4 * tf.random.uniform(tf.shape(x))
    x = tf.maximum(x, side * (1.0 - fg) * texture * uniform(0.05, 0.45) * per_image(0.25))
    # Uneven lighting: a linear brightness ramp across the image.
    gx, gy = uniform(-0.7, 0.7), uniform(-0.7, 0.7)
    ramp = tf.clip_by_value(1.0 + gx * xs + gy * ys, 0.25, 1.7)
    x = x * tf.where(per_image(0.5) > 0, ramp, tf.ones_like(ramp))
    # Contrast within the garment (flatter texture) and gamma.
    flat = uniform(0.4, 1.0)
    mean_fg = tf.reduce_sum(x * fg, axis=[1, 2, 3], keepdims=True) / (
        tf.reduce_sum(fg, axis=[1, 2, 3], keepdims=True) + 1
    )
    flattened = fg * (mean_fg + flat * (x - mean_fg)) + (1.0 - fg) * x
    x = tf.where(per_image(0.4) > 0, flattened, x)
    gamma = tf.exp(uniform(-0.6, 0.6) * per_image(0.6))
    x = tf.pow(tf.clip_by_value(x, 0.0, 1.0) + 1e-6, gamma)
    # Blur: a 3x3 Gaussian (sigma ~0.85) blended in at a random strength.
    k1 = np.array([0.25, 0.5, 0.25], np.float32)
    kernel = tf.constant(np.outer(k1, k1)[:, :, None, None])
    blurred = tf.nn.conv2d(x, kernel, 1, "SAME")
    a = uniform(0.3, 1.0) * per_image(0.35)
    x = (1.0 - a) * x + a * blurred
    # Sensor noise, mostly on the garment (the background was set to a flat colour).
    sigma = uniform(0.0, 0.06) * per_image(0.5)
    x = x + tf.random.normal(tf.shape(x)) * sigma * (0.3 + 0.7 * _dilate(fg, 3))
    x = tf.clip_by_value(x, 0.0, 1.0)
    # The pipeline's last step: brightest pixel = 255.
    top = tf.reduce_max(x, axis=[1, 2, 3], keepdims=True)
    x = tf.where(top > 0.05, x / tf.maximum(top, 1e-6), x)
    apply = tf.cast(tf.random.uniform([n, 1, 1, 1]) < prob, tf.bool)
    out = tf.where(apply, x, images)
    out.set_shape(images.shape)
    return out
