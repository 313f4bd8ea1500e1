"""Fashion-MNIST images turned into the views phone photos show: garments lying flat, shoes from above.

The dataset's tops are product shots with the sleeves hanging down, and its shoes are single side
views pointing left. Photos of clothes on a bed or floor show the sleeves spread out, and shoes as
a pair seen from above (docs/PHOTOS.md, "What the photos look like to the model"). These tf ops
imitate those views on the dataset's own images for the ``photo`` preset (``TrainConfig.sleeve_prob``
and ``shoe_prob``);
no photo is trained on. Images are float (N, 28, 28, 1) in [0, 1]; everything runs in the tf.data graph.
"""

from __future__ import annotations

import math

from .augment import resample

SLEEVED = (2, 4, 6)  # Pullover, Coat, Shirt: the classes with long sleeves
SHOES = (5, 7, 9)  # Sandal, Sneaker, Ankle boot
_ON = 0.08  # a pixel above this is part of the item (as in augment.photo_augment)
_C = 13.5  # the image centre, in pixels


def _tf():
    import tensorflow as tf

    return tf


def _bbox(images):
    """Per image, the first and last column and row holding the item: (left, right, top, bottom)."""
    tf = _tf()
    on = images > _ON
    idx = tf.range(28, dtype=tf.float32)[None, :]
    cols = tf.reduce_any(on, axis=[1, 3])
    rows = tf.reduce_any(on, axis=[2, 3])
    left = tf.reduce_min(tf.where(cols, idx, 28.0), 1)
    right = tf.reduce_max(tf.where(cols, idx, -1.0), 1)
    top = tf.reduce_min(tf.where(rows, idx, 28.0), 1)
    bottom = tf.reduce_max(tf.where(rows, idx, -1.0), 1)
    return left, right, top, bottom


def _rotate_about(images, px, py, angle):
    """Turn ``images`` by ``angle`` radians about the point (px, py)."""
    tf = _tf()
    cos, sin = tf.cos(angle), tf.sin(angle)
    a0, a1, b0, b1 = cos, sin, -sin, cos
    return resample(images, a0, a1, px - a0 * px - a1 * py, b0, b1, py - b0 * px - b1 * py)


def _place(images, angle, sx, sy, tx, ty):
    """Scale by (sx, sy) and turn by ``angle`` about the centre, then move by (tx, ty)."""
    tf = _tf()
    cos, sin = tf.cos(angle), tf.sin(angle)
    a0, a1, b0, b1 = cos / sx, sin / sx, -sin / sy, cos / sy
    px, py = _C + tx, _C + ty
    return resample(images, a0, a1, _C - a0 * px - a1 * py, b0, b1, _C - b0 * px - b1 * py)


def _blend(images, changed, apply):
    """``changed`` where ``apply`` (N,) is 1, ``images`` where it is 0."""
    tf = _tf()
    a = tf.reshape(tf.cast(apply, tf.float32), [-1, 1, 1, 1])
    out = a * changed + (1 - a) * images
    out.set_shape(images.shape)
    return out


def _refit(images):
    """Scale each item so its longest edge is 28 px again, centred (the dataset's framing)."""
    left, right, top, bottom = _bbox(images)
    tf = _tf()
    side = tf.maximum(tf.maximum(right - left + 1, bottom - top + 1), 1.0)
    s = 28.0 / side
    cx, cy = (left + right) / 2, (top + bottom) / 2
    zero = 0 * s
    return resample(images, 1 / s, zero, cx - _C / s, zero, 1 / s, cy - _C / s)


def spread_sleeves(images, apply):
    """Tops as they lie on a bed: the sleeves swung 15-45 degrees outward about the shoulders.

    The item is first shrunk to 0.8 so the spread sleeves stay in frame; the outer 22% of its
    width on each side, below the shoulder line (12% down), is taken as a sleeve and turned about
    the shoulder; then the whole is refitted to 28 px. ``apply``: (N,) 0/1, which images to change.
    """
    tf = _tf()
    n = tf.shape(images)[0]
    zeros, k = tf.zeros([n]), 0.8
    small = _place(images, zeros, k, k, zeros, zeros)
    left, right, top, bottom = _bbox(small)
    width = tf.maximum(right - left + 1, 1.0)
    height = tf.maximum(bottom - top + 1, 1.0)
    sleeve = 0.22 * width
    shoulder = top + 0.12 * height
    xs = tf.range(28, dtype=tf.float32)[None, None, :, None]
    ys = tf.range(28, dtype=tf.float32)[None, :, None, None]

    def per_image(v):
        return tf.reshape(v, [n, 1, 1, 1])

    below = tf.cast(ys > per_image(shoulder), tf.float32)
    left_sleeve = tf.cast(xs < per_image(left + sleeve), tf.float32) * below
    right_sleeve = tf.cast(xs > per_image(right - sleeve), tf.float32) * below
    torso = small * (1 - left_sleeve) * (1 - right_sleeve)
    angle = tf.random.uniform([n], 0.25, 0.8)
    swung_left = _rotate_about(small * left_sleeve, left + sleeve, shoulder, angle)
    swung_right = _rotate_about(small * right_sleeve, right - sleeve, shoulder, -angle)
    return _blend(images, _refit(tf.maximum(torso, tf.maximum(swung_left, swung_right))), apply)


def pair_shoes(images, apply):
    """Shoes as phone photos show them, one of three views per image.

    - 55%: a pair from above: the shoe and its mirror image, each a quarter turn (toe up or down,
      splayed up to 17 degrees), narrowed to 75-100% (a shoe is narrower from above than tall from
      the side), side by side with a small gap;
    - 25%: a pair from the side: two copies pointing the same way, one behind and above the other;
    - 20%: one shoe turned by up to 90 degrees either way.
    Then refitted to 28 px. ``apply``: (N,) 0/1, which images to change.
    """
    tf = _tf()
    n = tf.shape(images)[0]

    def per_image(v):
        return tf.reshape(v, [n, 1, 1, 1])

    def uniform(lo, hi):
        return tf.random.uniform([n], lo, hi)

    left, right, top, bottom = _bbox(images)
    height = tf.maximum(bottom - top + 1, 1.0)
    width = tf.maximum(right - left + 1, 1.0)
    mode = tf.random.uniform([n])
    above, side = mode < 0.55, (mode >= 0.55) & (mode < 0.8)
    single = tf.logical_not(above | side)
    s = 0.6 * tf.ones([n])
    toe = tf.where(tf.random.uniform([n]) < 0.5, 1.0, -1.0)
    quarter = math.pi / 2
    angle1 = tf.where(above, toe * quarter + uniform(-0.3, 0.3), tf.where(side, uniform(-0.4, 0.4), uniform(-1.6, 1.6)))
    angle2 = tf.where(above, toe * quarter + uniform(-0.3, 0.3), angle1 + uniform(-0.15, 0.15))
    sy = tf.where(above, s * uniform(0.75, 1.0), s)
    gap = tf.where(above, 0.5 * height * sy * uniform(1.1, 1.6), 0.5 * width * s * uniform(0.15, 0.4))
    dy = tf.where(above, uniform(-2.0, 2.0), -height * s * uniform(0.1, 0.35))
    gap = tf.where(single, 0.0, gap)
    dy = tf.where(single, 0.0, dy)
    second = tf.where(per_image(tf.cast(above, tf.float32)) > 0, tf.reverse(images, axis=[2]), images)
    first = _place(images, angle1, s, sy, -gap, -dy / 2)
    other = _place(second, angle2, s, sy, gap, dy / 2) * (1 - per_image(tf.cast(single, tf.float32)))
    return _blend(images, _refit(tf.maximum(first, other)), apply)


def flat_lay_views(images, labels, sleeve_prob: float, shoe_prob: float):
    """Spread the sleeves of a share ``sleeve_prob`` of the sleeved tops; show a share ``shoe_prob``
    of the shoes as photos do (``pair_shoes``). Other classes pass unchanged."""
    tf = _tf()
    label = tf.cast(labels, tf.int32)
    if label.shape.rank == 2:  # one-hot labels
        label = tf.argmax(label, axis=1, output_type=tf.int32)

    def pick(classes, prob):
        member = tf.reduce_any(tf.equal(label[:, None], tf.constant(classes)[None, :]), axis=1)
        return tf.cast(member, tf.float32) * tf.cast(tf.random.uniform(tf.shape(member)) < prob, tf.float32)

    out = spread_sleeves(images, pick(SLEEVED, sleeve_prob)) if sleeve_prob > 0 else images
    return pair_shoes(out, pick(SHOES, shoe_prob)) if shoe_prob > 0 else out
